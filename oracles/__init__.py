"""The exact oracle: op table, expression IR and its renderings, SymPy derivatives evaluated in arb,
the per-dtype rounding model, verdicts and failure reports. Data flows one way:
strategy -> expr (IR) -> torch program + SymPy -> expected gradients -> verdicts -> report."""
