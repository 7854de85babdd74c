"""The exact oracle, in layers (each imports only the ones listed before it):

numerics  dtypes, the rounding model, exact evaluation in arb
table     the op tables: one entry per op (elementwise and tensor ops), its conventions and domain
core      expression IR, renderings, the first-order pipeline, verdicts, failure messages, pinned points
tensor    tensor programs against exact per-element Jacobians
higher    jets, nested grads, forward mode, torch.func, VJPs
faults    planted errors for the suite's self-tests
reports   the run report and the registry of findings

Nothing here imports `strategies` (data flows strategy -> oracle); the commands that use both live in
the `gradoracle` package."""
