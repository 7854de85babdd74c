"""ctc_loss of log-probabilities made by log_softmax, `torch.nn.functional.ctc_loss(x0.log_softmax(-1), targets,
input_lengths, target_lengths)`, as OpInfo's nn.functional.ctc_loss checks it (its gradcheck wrapper projects the
input onto the log-simplex the same way).

torch's backward of ctc_loss is not the derivative of the loss with respect to its log_probs: it returns
exp(log_probs) - posterior, where the derivative is -posterior (finding ctc-loss-gradient-assumes-log-softmax). The
two differ by exp(log_probs), which log_softmax's backward takes out (each time step's exp(log_probs) sums to 1), so
the gradient of the composite with respect to x0 is the derivative.

SymPy side, independent of torch's log-space recursion: per sample, the probability of the target is Graves'
forward recursion in probability space over the extended target l' (blanks around and between the labels), on
y = softmax(x0) of each time step: α_t(s) = y_t(l'_s) (α_{t-1}(s) + α_{t-1}(s-1) + [l'_s ≠ l'_{s-2}] α_{t-1}(s-2)),
p = α_{T-1}(|l'| - 1) + α_{T-1}(|l'| - 2), the loss -log p; reduced: 'none', 'sum', or 'mean' (each loss divided by
its target length, at least 1, then the mean over the batch).

Model: aten/src/ATen/native/LossCTC.cpp's CPU kernels in the input's dtype (float32 or float64): log_alpha in log
space, each step log(exp(a1 - m) + exp(a2 - m) + exp(a3 - m)) + m + log_prob with m the largest (an unreachable
state -inf); log_beta the same backwards, with the products alpha·beta of each time step collected per class by the
same log-add; then grad = (exp(lp) - exp(collected + nll - lp)) · grad_out for t < input_length, 0 after; then
log_softmax's backward.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import Indices, _params
from oracles.table.tensor_formulas import ZERO, _exp, _log, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

NAMES = ["ctc_loss"]  # the entries this module adds to TENSOR_OPS (their forwards round)
REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ the parameters of one sample
def _extended(p, b: int) -> list[int]:
    """l' of sample b: blank, l_0, blank, l_1, ..., blank."""
    labels = list(p["targets"].values[b][:p["target_lengths"].values[b]])
    out = [p["blank"]]
    for label in labels:
        out += [label, p["blank"]]
    return out


def _predecessors(extended: list[int], s: int) -> list[int]:
    """The states a path may be in one step before state s: s, s - 1, and s - 2 unless l'_s = l'_{s-2}."""
    out = [s]
    if s > 0:
        out.append(s - 1)
    if s > 1 and extended[s - 2] != extended[s]:
        out.append(s - 2)
    return out


def _reduce(losses: list, p, total, divide):
    """'none': one loss per sample; 'sum'; 'mean': each loss divided by its target length (at least 1), then the
    mean of those."""
    reduction = p["reduction"]
    out = np.empty((len(losses),) if reduction == "none" else (), dtype=object)
    if reduction == "none":
        for b, loss in enumerate(losses):
            out[b] = loss
        return out
    if reduction == "sum":
        out[()] = total(losses)
        return out
    lengths = [max(n, 1) for n in p["target_lengths"].values]
    out[()] = divide(total([divide(loss, n) for loss, n in zip(losses, lengths)]), len(losses))
    return out


# ------------------------------------------------------------------ SymPy: probability space
def _sym(arrays, p):
    x = arrays[0]
    losses = []
    for b in range(x.shape[1]):
        extended = _extended(p, b)
        steps = p["input_lengths"].values[b]
        y = [formula.sym_softmax(list(x[t, b]), None) for t in range(steps)]
        alpha = [sympy.Integer(0)] * len(extended)
        alpha[0] = y[0][extended[0]]
        if len(extended) > 1:
            alpha[1] = y[0][extended[1]]
        for t in range(1, steps):
            alpha = [y[t][extended[s]] * sympy.Add(*(alpha[k] for k in _predecessors(extended, s)))
                     for s in range(len(extended))]
        losses.append(-sympy.log(alpha[-1] + (alpha[-2] if len(extended) > 1 else 0)))
    return _reduce(losses, p, lambda v: sympy.Add(*v), lambda a, n: a / n)


# ------------------------------------------------------------------ the model: torch's log-space kernels
def _log_add(F, values: list) -> arb | None:
    """log(Σ exp(v - m)) + m over the reachable values (None: -inf, an unreachable state), m the largest, as the
    kernel computes it: exp(m - m) = 1 exactly where the largest is decided, else m is their hull."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    top = max(range(len(present)), key=lambda i: present[i].upper())
    decided = all(k == top or present[top].lower() >= v.upper() for k, v in enumerate(present))
    m = present[top] if decided else formula.hull_maximum(present)
    terms = [arb(1) if decided and k == top else _exp(F, F.sub(v, m)) for k, v in enumerate(present)]
    return F.add(_log(F, F.sum(terms)), m)


def _plus(F, a: arb | None, b: arb | None) -> arb | None:
    return None if a is None or b is None else F.add(a, b)


class _Sample:
    """One sample's log_alpha, log_beta and negative log-likelihood in the rounding model; `lp` its log_probs
    (time steps x classes, balls)."""

    def __init__(self, F, lp: list[list[arb]], extended: list[int], steps: int):
        self.F, self.lp, self.extended, self.steps = F, lp, extended, steps
        last = len(extended)
        alpha = [[None] * last for _ in range(steps)]
        alpha[0][0] = lp[0][extended[0]]
        if last > 1:
            alpha[0][1] = lp[0][extended[1]]
        for t in range(1, steps):
            for s in range(last):
                shifted = _log_add(F, [alpha[t - 1][k] for k in _predecessors(extended, s)])
                alpha[t][s] = _plus(F, shifted, lp[t][extended[s]])
        self.alpha = alpha
        ends = [alpha[steps - 1][last - 1]] + ([alpha[steps - 1][last - 2]] if last > 1 else [])
        likelihood = _log_add(F, ends)
        if likelihood is None:
            raise ValueError("no alignment of the target fits the input length")  # the options exclude it
        self.nll = -likelihood

    def collected(self) -> list[dict[int, arb]]:
        """Per time step, per class: log Σ alpha·beta over the states of that class, in the kernel's order (the
        last step's two end states, then each earlier step from the last state down)."""
        F, lp, extended, steps = self.F, self.lp, self.extended, self.steps
        last = len(extended)
        beta = [[None] * last for _ in range(steps)]
        out: list[dict[int, arb]] = [{} for _ in range(steps)]
        for s in [last - 1] + ([last - 2] if last > 1 else []):
            beta[steps - 1][s] = lp[steps - 1][extended[s]]
            value = _plus(F, self.alpha[steps - 1][s], beta[steps - 1][s])
            if value is not None:
                out[steps - 1][extended[s]] = value
        for t in range(steps - 2, -1, -1):
            for s in range(last - 1, -1, -1):
                successors = [s] + ([s + 1] if s < last - 1 else [])
                if s < last - 2 and extended[s + 2] != extended[s]:
                    successors.append(s + 2)
                beta[t][s] = _plus(F, _log_add(F, [beta[t + 1][k] for k in successors]), lp[t][extended[s]])
                value = _plus(F, self.alpha[t][s], beta[t][s])
                if value is None:
                    continue
                c = extended[s]
                out[t][c] = value if c not in out[t] else _log_add(F, [out[t][c], value])
        return out


def _log_probs(F, x: np.ndarray, b: int) -> list[list[arb]]:
    return [formula.log_softmax_forward(F, list(x[t, b]), None) for t in range(x.shape[0])]


def _samples(F, x: np.ndarray, p) -> list[_Sample]:
    return [_Sample(F, _log_probs(F, x, b), _extended(p, b), p["input_lengths"].values[b]) for b in range(x.shape[1])]


def _forward(F, arrays, p):
    return _reduce([s.nll for s in _samples(F, arrays[0], p)], p, lambda v: sum_any(F, v),
                   lambda a, n: F.div(a, arb(n)))


def _grad_out(F, grad, p, batch: int) -> list[arb]:
    """The gradient reaching each sample's loss: the upstream's own ('none'), the scalar's ('sum'), or the mean's
    backward (/ batch) then the division's (/ target length, at least 1)."""
    if p["reduction"] == "none":
        return [grad[b] for b in range(batch)]
    if p["reduction"] == "sum":
        return [grad[()]] * batch
    share = F.div(grad[()], arb(batch))
    return [F.div(share, arb(max(n, 1))) for n in p["target_lengths"].values]


def _backward(F, arrays, out, grad, p):
    x = arrays[0]
    result = np.empty(x.shape, dtype=object)
    for b, (sample, gr) in enumerate(zip(_samples(F, x, p), _grad_out(F, grad, p, x.shape[1]))):
        collected = sample.collected()
        for t in range(x.shape[0]):
            lp = sample.lp[t]
            if t >= sample.steps:  # past the input length: no gradient
                d_lp = [ZERO] * len(lp)
            else:
                d_lp = []
                for c, value in enumerate(lp):
                    posterior = ZERO if c not in collected[t] else _exp(
                        F, F.sub(F.add(collected[t][c], sample.nll), value))
                    d_lp.append(F.mul(F.sub(_exp(F, value), posterior), gr))
            for c, g in enumerate(formula.log_softmax_backward(F, list(x[t, b]), lp, d_lp, None)):
                result[t, b, c] = g
    return (result,)


# ------------------------------------------------------------------ parameters and spellings
def _feasible(labels: tuple[int, ...], steps: int) -> bool:
    """A path of `steps` time steps emits the labels: one step each, and a blank between equal neighbours."""
    return steps >= len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))


def _target_sets(classes: int, blank: int) -> list[tuple[int, ...]]:
    """Targets of up to two labels (none of them the blank): one label, two different, the same twice, none."""
    labels = [c for c in range(classes) if c != blank]
    sets = [(labels[0],)] if labels else []
    if len(labels) > 1:
        sets.append((labels[-1], labels[0]))
    if labels:
        sets.append((labels[0], labels[0]))
    sets.append(())
    return sets


def _options(shapes):
    """torch's defaults (blank 0, 'mean') first; each target kind once (under 'sum'); the other reductions and the last
    class as the blank on the first kind: a few sets, as each costs SymPy a Jacobian."""
    steps, batch, classes = shapes[0]
    chosen = [(0, 0, "mean"), (0, 0, "none")] + [(0, k, "sum") for k in range(len(_target_sets(classes, 0)))]
    if classes - 1 != 0:
        chosen.append((classes - 1, 0, "mean"))
    out = []
    for blank, k, reduction in chosen:
        labels = _target_sets(classes, blank)[k]
        # every sample the same target, the last one also shorter in time where a path still fits
        lengths = [steps] * batch
        if batch > 1 and k == 0 and _feasible(labels, steps - 1):
            lengths[-1] = steps - 1
        if not all(_feasible(labels, n) for n in lengths):
            continue
        width = max(len(labels), 1)  # the padded targets' columns (a label past a sample's length is ignored)
        padded = tuple((labels + (labels[:1] or (1,)) * width)[:width] for _ in range(batch))
        out.append(_params(targets=Indices(padded), input_lengths=Indices(tuple(lengths)),
                           target_lengths=Indices((len(labels),) * batch), blank=blank, reduction=reduction))
    return out


def _shapes(shape: tuple[int, ...]):
    """(time steps, batch, classes) of 2-3, 1-2 and 2-3: the drawn sides shifted into what the SymPy side keeps small
    (every alignment of a target in a few steps) and a blank plus at least one label."""
    return [((min(shape[0] + 1, 3), min(shape[1], 2), min(shape[2] + 1, 3)),)]


def _call(args, p):
    device = args[0].device
    return torch.nn.functional.ctc_loss(args[0].log_softmax(-1), p["targets"].tensor(device),
                                        p["input_lengths"].tensor(device), p["target_lengths"].tensor(device),
                                        blank=p["blank"], reduction=p["reduction"])


def _render(texts, p) -> str:
    return (f"torch.nn.functional.ctc_loss({texts[0]}.log_softmax(-1), {p['targets']!r}, {p['input_lengths']!r}, "
            f"{p['target_lengths']!r}, blank={p['blank']}, reduction={p['reduction']!r})")


TENSOR_OPS["ctc_loss"] = TensorOp(
    "ctc_loss", 1, (TSpelling(_render, _call),), _sym, _forward, _backward, OptionSpace(functools.cache(_options)),
    lambda shapes, p: (shapes[0][1],) if p["reduction"] == "none" else (), ("nn.functional.ctc_loss",), ranks=(3,),
    operand_shapes=_shapes, cpu_dtypes=("float64", "float32"))
