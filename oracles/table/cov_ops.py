"""cov(x, correction, fweights, aweights) and corrcoef(x): a V x N input holds V variables of N observations each
(a vector is one variable); the result is V x V, squeezed to 0-d for one variable.

torch composes them of differentiable ops (aten/src/ATen/native/Correlation.cpp), and autograd runs each op's
backward, which the model replays in that order (sums and matrix products accumulated in opmath, float for bfloat16
and float16, and rounded once: tensor_formulas.fused_sum):
- cov: w = fweights * aweights (either, or none); W = w.sum() (N without weights); avg = (x * w).sum(1) / W;
  norm = W - correction * (w * aweights).sum() / W with aweights and a correction, else W - correction;
  D = x - avg; cov = (D @ (D * w)ᵀ) / norm. The weights are constants of the entry (integer frequencies and
  float weights exact in every dtype), not differentiated.
- corrcoef: c = cov(x) (correction 1); 0-d: c / c; else s = sqrt(diagonal(c)), r = (c / s[:, None]) / s[None, :],
  clipped to [-1, 1]. |r| <= 1 holds exactly (Cauchy-Schwarz), so the clip is no part of the function; where the
  rounded r may lie on either side of ±1, torch's clamp passes or stops the gradient, and the model holds both.
  The variables' variances must be positive: corrcoef's inputs are drawn with no constant row
  (strategies/matrices.py, "nonconstant_rows").
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

NAMES = ["cov", "corrcoef"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)
FWEIGHTS = (2, 1, 3)  # the first N of them for N observations
AWEIGHTS = (0.5, 1.0, 0.25)
# corrcoef's backward is followed through each choice of clamp's undecided masks: 2^6 passes at most
MAX_UNDECIDED_CLAMPS = 6


def _variables(x: np.ndarray) -> np.ndarray:
    """The input as variables x observations (a vector is one variable)."""
    return x.reshape(1, -1) if x.ndim == 1 else x


def _out_shape(shapes, p) -> tuple[int, ...]:
    shape = shapes[0]
    return () if len(shape) == 1 or shape[0] == 1 else (shape[0], shape[0])


def _weights(p, n: int) -> tuple[tuple | None, tuple | None]:
    return (FWEIGHTS[:n] if p.get("fweights") else None), (AWEIGHTS[:n] if p.get("aweights") else None)


# ------------------------------------------------------------------ SymPy
def _sym_weights(p, n):
    fweights, aweights = _weights(p, n)
    if fweights is None and aweights is None:
        return None, None
    w = [sympy.Integer(f if fweights else 1) * (sympy.Rational(a) if aweights else 1)
         for f, a in zip(fweights or (1,) * n, aweights or (1,) * n)]
    return w, aweights


def _sym_cov_matrix(x, p):
    """The V x V covariance of the variables x (an array of SymPy expressions)."""
    v, n = x.shape
    w, aweights = _sym_weights(p, n)
    weights = w or [sympy.Integer(1)] * n
    total = sympy.Add(*weights)
    correction = p["correction"]
    if aweights is not None and correction:
        norm = total - correction * sympy.Add(*(wk * sympy.Rational(a) for wk, a in zip(weights, aweights))) / total
    else:
        norm = total - correction
    means = [sympy.Add(*(wk * x[i, k] for k, wk in enumerate(weights))) / total for i in range(v)]
    out = np.empty((v, v), dtype=object)
    for i in range(v):
        for j in range(v):
            out[i, j] = sympy.Add(*((x[i, k] - means[i]) * (x[j, k] - means[j]) * wk
                                    for k, wk in enumerate(weights))) / norm
    return out


def _squeezed(out: np.ndarray, shapes) -> np.ndarray:
    return out.reshape(()) if out.shape == (1, 1) else out


def _sym_cov(arrays, p):
    return _squeezed(_sym_cov_matrix(_variables(arrays[0]), p), None)


def _sym_corrcoef(arrays, p):
    c = _sym_cov_matrix(_variables(arrays[0]), _params(correction=1))
    if c.shape == (1, 1):
        return np.array(sympy.Integer(1), dtype=object)  # c / c where c != 0
    roots = [sympy.sqrt(c[i, i]) for i in range(len(c))]
    out = np.empty(c.shape, dtype=object)
    for i, j in np.ndindex(*c.shape):
        out[i, j] = sympy.Integer(1) if i == j else c[i, j] / (roots[i] * roots[j])
    return out


# ------------------------------------------------------------------ cov in the rounding model
class _Cov:
    """torch's cov of the variables `x` in the model: the forward's intermediates, kept for the backward."""

    def __init__(self, F: RoundingModel, x: np.ndarray, p):
        self.F, self.x = F, x
        v, n = x.shape
        fweights, aweights = _weights(p, n)
        if fweights is not None and aweights is not None:
            self.w = [F.mul(arb(f), arb(a)) for f, a in zip(fweights, aweights)]  # long * float: rounded
        elif fweights is not None or aweights is not None:
            self.w = [arb(c) for c in (fweights or aweights)]
        else:
            self.w = None
        self.total = arb(n) if self.w is None else formula.fused_sum(F, self.w)
        correction = arb(p["correction"])
        if aweights is not None and p["correction"]:
            squares = formula.fused_sum(F, [formula.mul(F, wk, arb(a)) for wk, a in zip(self.w, aweights)])
            self.norm = F.sub(self.total, F.div(F.mul(correction, squares), self.total))
        else:
            self.norm = F.sub(self.total, correction)
        if not self.norm > 0:
            raise Singular("cov's degrees of freedom may be <= 0 within the rounding model")
        weighted = x if self.w is None else np.array([[F.mul(x[i, k], self.w[k]) for k in range(n)]
                                                      for i in range(v)], dtype=object)
        self.mean = [F.div(formula.fused_sum(F, list(weighted[i])), self.total) for i in range(v)]
        self.d = np.array([[F.sub(x[i, k], self.mean[i]) for k in range(n)] for i in range(v)], dtype=object)
        self.e = self.d if self.w is None else np.array([[formula.mul(F, self.d[i, k], self.w[k]) for k in range(n)]
                                                         for i in range(v)], dtype=object)
        self.out = np.array([[F.div(_dot(F, self.d[i], self.e[j]), self.norm) for j in range(v)] for i in range(v)],
                            dtype=object)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """x's gradient for the V x V output gradient `grad`, op by op as autograd runs cov's graph."""
        F, d, e = self.F, self.d, self.e
        v, n = d.shape
        gc = np.array([[F.div(grad[i, j], self.norm) for j in range(v)] for i in range(v)], dtype=object)
        # mm(D, Eᵀ): D gets gc @ E, Eᵀ gets Dᵀ @ gc (E gets its transpose)
        gd = np.array([[_dot(F, gc[i, :], e[:, k]) for k in range(n)] for i in range(v)], dtype=object)
        ge = np.array([[_dot(F, d[:, k], gc[:, j]) for k in range(n)] for j in range(v)], dtype=object)
        if self.w is not None:
            ge = np.array([[formula.mul(F, ge[j, k], self.w[k]) for k in range(n)] for j in range(v)], dtype=object)
        gd = np.array([[formula.sum_any(F, [gd[i, k], ge[i, k]]) for k in range(n)] for i in range(v)], dtype=object)
        # D = x - mean[:, None]; mean = S / W; S = (x * w).sum(1)
        gs = [F.div(-formula.fused_sum(F, list(gd[i])), self.total) for i in range(v)]
        gx = np.empty((v, n), dtype=object)
        for i in range(v):
            for k in range(n):
                through_mean = gs[i] if self.w is None else formula.mul(F, gs[i], self.w[k])
                gx[i, k] = formula.sum_any(F, [gd[i, k], through_mean])
        return gx


def _dot(F: RoundingModel, a, b) -> arb:
    """One entry of a matrix product: accumulated in opmath (float for bfloat16 and float16), rounded once."""
    return formula.fused_sum(F, [formula.mul(F.opmath, u, w) for u, w in zip(a, b)])


def _cov_forward(F, arrays, p):
    return _squeezed(_Cov(F, _variables(arrays[0]), p).out, None)


def _cov_backward(F, arrays, out, grad, p):
    x = arrays[0]
    model = _Cov(F, _variables(x), p)
    return (model.backward(np.asarray(grad, dtype=object).reshape(model.out.shape)).reshape(x.shape),)


# ------------------------------------------------------------------ corrcoef in the rounding model
class _Corrcoef:
    def __init__(self, F: RoundingModel, x: np.ndarray):
        self.F = F
        self.cov = _Cov(F, x, _params(correction=1))
        c = self.cov.out
        self.scalar = c.shape == (1, 1)
        if not all(c[i, i] > 0 for i in range(len(c))):
            raise Singular("a variance may be 0 within the rounding model")
        if self.scalar:
            self.out = np.array([[arb(1)]], dtype=object)  # c / c of one float c > 0 is exactly 1
            return
        self.s = [F.round(c[i, i].sqrt()) for i in range(len(c))]
        v = len(c)
        self.c1 = np.array([[F.div(c[i, j], self.s[i]) for j in range(v)] for i in range(v)], dtype=object)
        self.c2 = np.array([[F.div(self.c1[i, j], self.s[j]) for j in range(v)] for i in range(v)], dtype=object)
        self.out = np.array([[_clip(self.c2[i, j]) for j in range(v)] for i in range(v)], dtype=object)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        F, c = self.F, self.cov.out
        v = len(c)
        if self.scalar:  # c / c: grad / c from the numerator, -grad * ((c / c) / c) from the denominator
            g = grad[0, 0]
            numerator = F.div(g, c[0, 0])
            denominator = -formula.mul(F, g, F.div(arb(1), c[0, 0]))
            return self.cov.backward(np.array([[formula.sum_any(F, [numerator, denominator])]], dtype=object))
        # clamp's backward passes grad where -1 <= c2 <= 1, else 0; where the model cannot tell (the diagonal, 1
        # up to rounding, and perfectly correlated variables), each choice is followed through and the results
        # joined: one ball for both would lose the cancellation between the diagonal's two paths
        undecided = [(i, j) for i, j in np.ndindex(v, v) if _clamp_passes(self.c2[i, j]) is None]
        if len(undecided) > MAX_UNDECIDED_CLAMPS:
            raise Singular("too many correlations may be clipped at ±1 within the rounding model")
        joined = None
        for passes in itertools.product((True, False), repeat=len(undecided)):
            chosen = dict(zip(undecided, passes))
            g2 = np.array([[grad[i, j] if chosen.get((i, j), _clamp_passes(self.c2[i, j])) else formula.ZERO
                            for j in range(v)] for i in range(v)], dtype=object)
            gx = self._through(g2)
            joined = gx if joined is None else np.vectorize(arb.union, otypes=[object])(joined, gx)
        return joined

    def _through(self, g2: np.ndarray) -> np.ndarray:
        """x's gradient for the gradient `g2` of the unclipped correlations."""
        F, c = self.F, self.cov.out
        v = len(c)
        # c2 = c1 / s[None, :]
        g1 = np.array([[formula.div(F, g2[i, j], self.s[j]) for j in range(v)] for i in range(v)], dtype=object)
        gs_columns = [formula.fused_sum(F, [-formula.mul(F, g2[i, j], F.div(self.c2[i, j], self.s[j]))
                                            for i in range(v)]) for j in range(v)]
        # c1 = c / s[:, None]
        gc = np.array([[formula.div(F, g1[i, j], self.s[i]) for j in range(v)] for i in range(v)], dtype=object)
        gs_rows = [formula.fused_sum(F, [-formula.mul(F, g1[i, j], F.div(self.c1[i, j], self.s[i]))
                                         for j in range(v)]) for i in range(v)]
        for i in range(v):  # s = sqrt(diagonal(c)): grad / (2 * result), into the diagonal
            gs = formula.sum_any(F, [gs_rows[i], gs_columns[i]])
            gc[i, i] = formula.sum_any(F, [gc[i, i], formula.div(F, gs, 2 * self.s[i])])
        return self.cov.backward(gc)


def _clip(value: arb) -> arb:
    """clamp(value, -1, 1) for every value in the ball."""
    low, high = min(max(value.lower(), arb(-1)), arb(1)), max(min(value.upper(), arb(1)), arb(-1))
    return arb((low + high) / 2, (high - low) / 2)


def _clamp_passes(value: arb) -> bool | None:
    """Whether clamp(-1, 1)'s backward passes the gradient at `value` (None: the model cannot tell)."""
    if value.lower() > -1 and value.upper() < 1:
        return True
    if value > 1 or value < -1:
        return False
    return None


def _corrcoef_forward(F, arrays, p):
    return _squeezed(_Corrcoef(F, _variables(arrays[0])).out, None)


def _corrcoef_backward(F, arrays, out, grad, p):
    x = arrays[0]
    model = _Corrcoef(F, _variables(x))
    return (model.backward(np.asarray(grad, dtype=object).reshape(model.out.shape)).reshape(x.shape),)


# ------------------------------------------------------------------ parameters and spellings
def _degrees_of_freedom(p, n: int) -> float:
    fweights, aweights = _weights(p, n)
    w = [(f if fweights else 1) * (a if aweights else 1) for f, a in zip(fweights or (1,) * n, aweights or (1,) * n)]
    total = sum(w)
    if aweights is not None and p["correction"]:
        return total - p["correction"] * sum(wk * a for wk, a in zip(w, aweights)) / total
    return total - p["correction"]


def _cov_options(shapes):
    shape = shapes[0]
    if len(shape) not in (1, 2):
        return ()
    candidates = [_params(correction=1, fweights=False, aweights=False),
                  _params(correction=0, fweights=False, aweights=False),
                  _params(correction=1, fweights=True, aweights=False),
                  _params(correction=1, fweights=False, aweights=True),
                  _params(correction=1, fweights=True, aweights=True),
                  _params(correction=0, fweights=True, aweights=True),
                  _params(correction=2, fweights=False, aweights=False)]
    # weights of a single observation: torch's cov raises on an input that requires grad ("a view of a leaf
    # Variable that requires grad is being used in an in-place operation"), so N = 1 is drawn without weights
    return tuple(p for p in candidates if _degrees_of_freedom(p, shape[-1]) > 0
                 and (shape[-1] > 1 or not (p["fweights"] or p["aweights"])))


def _render_cov(texts, p) -> str:
    x = texts[0]
    n = f"{x}.shape[-1]"
    fweights = f", fweights=torch.tensor({list(FWEIGHTS)}[:{n}], device={x}.device)" if p["fweights"] else ""
    aweights = f", aweights={x}.new_tensor({list(AWEIGHTS)}[:{n}])" if p["aweights"] else ""
    return f"torch.cov({x}, correction={p['correction']}{fweights}{aweights})"


def _cov(x, correction, fweights, aweights):
    n = x.shape[-1]
    return torch.cov(x, correction=correction,
                     fweights=torch.tensor(FWEIGHTS[:n], device=x.device) if fweights else None,
                     aweights=x.new_tensor(AWEIGHTS[:n]) if aweights else None)


def _corrcoef_options(shapes):
    """Two observations or more (one has no variance); three variables of two observations are left out: their
    nine correlations are all ±1, and clamp's backward at each may go either way (2^9 choices to follow)."""
    shape = shapes[0]
    if len(shape) not in (1, 2) or shape[-1] < 2 or (len(shape) == 2 and shape[0] > 2 and shape[-1] == 2):
        return ()
    return (_params(),)


_DEFAULTS = _with(correction=1, fweights=False, aweights=False)
TENSOR_OPS["cov"] = TensorOp(
    "cov", 1,
    (_spelling("torch.cov({0})", lambda x, **_: torch.cov(x), _DEFAULTS),
     _spelling("{0}.cov()", lambda x, **_: x.cov(), _DEFAULTS),
     TSpelling(_render_cov, _spelling("", _cov).call)),
    _sym_cov, _cov_forward, _cov_backward, OptionSpace(functools.cache(_cov_options)), _out_shape, ("cov",))

TENSOR_OPS["corrcoef"] = TensorOp(
    "corrcoef", 1,
    (_spelling("torch.corrcoef({0})", lambda x: torch.corrcoef(x)),
     _spelling("{0}.corrcoef()", lambda x: x.corrcoef())),
    _sym_corrcoef, _corrcoef_forward, _corrcoef_backward, OptionSpace(functools.cache(_corrcoef_options)),
    _out_shape, ("corrcoef",), matrix_domains=("nonconstant_rows",))
