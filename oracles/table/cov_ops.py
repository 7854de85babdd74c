"""cov(x, correction, fweights, aweights) and corrcoef(x): a V x N input holds V variables of N observations each
(a vector is one variable); the result is V x V, squeezed to 0-d for one variable.

torch composes them of differentiable ops (aten/src/ATen/native/Correlation.cpp), and autograd runs each op's
backward, which the model replays in that order (sums and matrix products accumulated in opmath, float for bfloat16
and float16, and rounded once: tensor_formulas.fused_sum):
- cov: w = fweights * aweights (either, or none); W = w.sum() (N without weights); avg = (x * w).sum(1) / W;
  norm = W - correction * (w * aweights).sum() / W with aweights and a correction, else W - correction;
  D = x - avg; cov = (D @ (D * w)ᵀ) / norm. The entry cov takes the weights as constants (integer frequencies and
  float weights exact in every dtype); cov_aweights takes aweights as a second input, differentiated through every
  use (w, W and the norm), drawn positive (strategies/matrices.py, "positive_weights").
- corrcoef: c = cov(x) (correction 1); 0-d: c / c; else s = sqrt(diagonal(c)), r = (c / s[:, None]) / s[None, :],
  clipped to [-1, 1]. |r| <= 1 holds exactly (Cauchy-Schwarz), so the clip is no part of the function; where the
  rounded r may lie on either side of ±1, torch's clamp passes or stops the gradient, and the model holds both.
  The variables' variances must be positive: corrcoef's inputs are drawn with no constant row
  (strategies/matrices.py, "nonconstant_rows"); where a program hands it one, its correlations are 0/0,
  undefined (the SymPy form says so: `_one_where_varying`), and torch's NaN there is no verdict.
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

NAMES = ["cov", "corrcoef"]  # entries of TENSOR_OPS whose forwards round (no index maps), on any values
# the entry whose second input must be positive (its forward is checked on such weights in tests/test_cov_ops.py)
WEIGHTED = ["cov_aweights"]
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
def _sym_cov_matrix(x, correction: int, fweights, aweights):
    """The V x V covariance of the variables x (an array of SymPy expressions); `aweights` SymPy expressions or
    None, `fweights` integers or None."""
    v, n = x.shape
    weights = [sympy.Integer(f) * a for f, a in zip(fweights or (1,) * n, aweights or (sympy.Integer(1),) * n)]
    total = sympy.Add(*weights)
    if aweights is not None and correction:
        norm = total - correction * sympy.Add(*(wk * a for wk, a in zip(weights, aweights))) / total
    else:
        norm = total - correction
    means = [sympy.Add(*(wk * x[i, k] for k, wk in enumerate(weights))) / total for i in range(v)]
    out = np.empty((v, v), dtype=object)
    for i in range(v):
        for j in range(v):
            out[i, j] = sympy.Add(*((x[i, k] - means[i]) * (x[j, k] - means[j]) * wk
                                    for k, wk in enumerate(weights))) / norm
    return out


def _sym_constant_weights(x, p):
    fweights, aweights = _weights(p, x.shape[-1])
    return _sym_cov_matrix(x, p["correction"], fweights,
                           None if aweights is None else [sympy.Rational(a) for a in aweights])


def _squeezed(out: np.ndarray, shapes) -> np.ndarray:
    return out.reshape(()) if out.shape == (1, 1) else out


def _sym_cov(arrays, p):
    return _squeezed(_sym_constant_weights(_variables(arrays[0]), p), None)


def _sym_corrcoef(arrays, p):
    c = _sym_cov_matrix(_variables(arrays[0]), 1, None, None)
    if c.shape == (1, 1):
        return np.array(_one_where_varying(c[0, 0]), dtype=object)
    roots = [sympy.sqrt(c[i, i]) for i in range(len(c))]
    out = np.empty(c.shape, dtype=object)
    for i, j in np.ndindex(*c.shape):
        out[i, j] = _one_where_varying(c[i, i]) if i == j else c[i, j] / (roots[i] * roots[j])
    return out


def _one_where_varying(variance):
    """A variable's correlation with itself, c / c: 1 where its variance is positive, and 0/0 (undefined: torch
    and numpy give NaN) for a constant variable, which a program can hand corrcoef (gather(x, [[0, 0]]))."""
    return sympy.Piecewise((sympy.Integer(1), variance > 0))


# ------------------------------------------------------------------ cov in the rounding model
class _Cov:
    """torch's cov of the variables `x` in the model: the forward's intermediates, kept for the backward.
    `fweights`: integer constants or None; `aweights`: balls (constants of the entry, or an input) or None."""

    def __init__(self, F: RoundingModel, x: np.ndarray, correction: int, fweights, aweights):
        self.F, self.x, self.fweights, self.aweights, self.correction = F, x, fweights, aweights, correction
        v, n = x.shape
        if fweights is not None and aweights is not None:
            self.w = [F.mul(arb(f), a) for f, a in zip(fweights, aweights)]  # long * float: rounded
        elif aweights is not None:
            self.w = list(aweights)
        elif fweights is not None:
            self.w = [arb(f) for f in fweights]
        else:
            self.w = None
        # W: a long sum (exact) without aweights
        self.total = formula.fused_sum(F, self.w) if aweights is not None else arb(sum(fweights or (1,) * n))
        if aweights is not None and correction:
            self.squares = formula.fused_sum(F, [formula.mul(F, wk, a) for wk, a in zip(self.w, aweights)])
            self.scaled = F.mul(arb(correction), self.squares)
            self.norm = F.sub(self.total, F.div(self.scaled, self.total))
        else:
            self.norm = F.sub(self.total, arb(correction))
        if not self.norm > 0:
            raise Singular("cov's degrees of freedom may be <= 0 within the rounding model")
        weighted = x if self.w is None else np.array([[F.mul(x[i, k], self.w[k]) for k in range(n)]
                                                      for i in range(v)], dtype=object)
        self.sums = [formula.fused_sum(F, list(weighted[i])) for i in range(v)]
        self.mean = [F.div(total, self.total) for total in self.sums]
        self.d = np.array([[F.sub(x[i, k], self.mean[i]) for k in range(n)] for i in range(v)], dtype=object)
        self.e = self.d if self.w is None else np.array([[formula.mul(F, self.d[i, k], self.w[k]) for k in range(n)]
                                                         for i in range(v)], dtype=object)
        self.out = np.array([[F.div(_dot(F, self.d[i], self.e[j]), self.norm) for j in range(v)] for i in range(v)],
                            dtype=object)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """x's gradient for the V x V output gradient `grad`, op by op as autograd runs cov's graph."""
        return self._backward(grad)[0]

    def _backward(self, grad: np.ndarray):
        """x's gradient and the parts every use of w and W gets (for aweights' gradient)."""
        F, d, e = self.F, self.d, self.e
        v, n = d.shape
        gc = np.array([[F.div(grad[i, j], self.norm) for j in range(v)] for i in range(v)], dtype=object)
        # mm(D, Eᵀ): D gets gc @ E, Eᵀ gets Dᵀ @ gc (E gets its transpose)
        gd = np.array([[_dot(F, gc[i, :], e[:, k]) for k in range(n)] for i in range(v)], dtype=object)
        ge = np.array([[_dot(F, d[:, k], gc[:, j]) for k in range(n)] for j in range(v)], dtype=object)
        w_parts: list[list[arb]] = [[] for _ in range(n)]
        if self.w is not None:  # E = D * w: D gets gE * w, w gets (gE * D) summed over the variables
            for k in range(n):
                w_parts[k].append(formula.fused_sum(F, [formula.mul(F, ge[j, k], d[j, k]) for j in range(v)]))
            ge = np.array([[formula.mul(F, ge[j, k], self.w[k]) for k in range(n)] for j in range(v)], dtype=object)
        gd = np.array([[formula.sum_any(F, [gd[i, k], ge[i, k]]) for k in range(n)] for i in range(v)], dtype=object)
        # D = x - mean[:, None]; mean = S / W; S = (x * w).sum(1)
        g_mean = [-formula.fused_sum(F, list(gd[i])) for i in range(v)]
        gs = [formula.div(F, g, self.total) for g in g_mean]
        total_parts = [-formula.fused_sum(F, [formula.mul(F, g, F.div(m, self.total)) for g, m in zip(g_mean,
                                                                                                     self.mean)])]
        gx = np.empty((v, n), dtype=object)
        for i in range(v):
            for k in range(n):
                through_mean = gs[i] if self.w is None else formula.mul(F, gs[i], self.w[k])
                gx[i, k] = formula.sum_any(F, [gd[i, k], through_mean])
        if self.w is not None:
            for k in range(n):
                w_parts[k].append(formula.fused_sum(F, [formula.mul(F, gs[i], self.x[i, k]) for i in range(v)]))
        return gx, gc, w_parts, total_parts

    def weights_backward(self, grad: np.ndarray) -> tuple[np.ndarray, list[arb]]:
        """x's and aweights' gradients (aweights an input): every use of w, W and the norm, as autograd adds them."""
        F, a = self.F, self.aweights
        n = len(a)
        gx, gc, w_parts, total_parts = self._backward(grad)
        # out = c / norm: the norm gets -sum(grad * ((c / norm) / norm))
        g_norm = -formula.fused_sum(F, [formula.mul(F, grad[index], F.div(self.out[index], self.norm))
                                        for index in np.ndindex(*grad.shape)])
        total_parts.append(g_norm)
        a_parts: list[list[arb]] = [[] for _ in range(n)]
        if self.correction:  # norm = W - (correction * T) / W, T = (w * aweights).sum()
            g_ratio = -g_norm
            total_parts.append(-formula.mul(F, g_ratio, F.div(F.div(self.scaled, self.total), self.total)))
            g_squares = formula.mul(F, formula.div(F, g_ratio, self.total), arb(self.correction))
            for k in range(n):
                w_parts[k].append(formula.mul(F, g_squares, a[k]))
                a_parts[k].append(formula.mul(F, g_squares, self.w[k]))
        g_total = formula.sum_any(F, total_parts)
        ga = []
        for k in range(n):  # W = w.sum(); w = fweights * aweights
            gw = formula.sum_any(F, w_parts[k] + [g_total])
            a_parts[k].append(gw if self.fweights is None else formula.mul(F, gw, arb(self.fweights[k])))
            ga.append(formula.sum_any(F, a_parts[k]))
        return gx, ga


def _dot(F: RoundingModel, a, b) -> arb:
    """One entry of a matrix product: accumulated in opmath (float for bfloat16 and float16), rounded once."""
    return formula.fused_sum(F, [formula.mul(F.opmath, u, w) for u, w in zip(a, b)])


def _constant_weights(F, x, p) -> _Cov:
    fweights, aweights = _weights(p, x.shape[-1])
    return _Cov(F, x, p["correction"], fweights, None if aweights is None else [arb(a) for a in aweights])


def _cov_forward(F, arrays, p):
    return _squeezed(_constant_weights(F, _variables(arrays[0]), p).out, None)


def _cov_backward(F, arrays, out, grad, p):
    x = arrays[0]
    model = _constant_weights(F, _variables(x), p)
    return (model.backward(np.asarray(grad, dtype=object).reshape(model.out.shape)).reshape(x.shape),)


# ------------------------------------------------------------------ corrcoef in the rounding model
class _Corrcoef:
    def __init__(self, F: RoundingModel, x: np.ndarray):
        self.F = F
        self.cov = _Cov(F, x, 1, None, None)
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
    # Variable that requires grad is being used in an in-place operation"), so N = 1 is drawn without weights;
    # and there are weights for N up to len(FWEIGHTS) only (a program's earlier op may hand cov more observations,
    # repeat_interleave twice two)
    weighable = 1 < shape[-1] <= min(len(FWEIGHTS), len(AWEIGHTS))
    return tuple(p for p in candidates if _degrees_of_freedom(p, shape[-1]) > 0
                 and (weighable or not (p["fweights"] or p["aweights"])))


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
    _out_shape, ("corrcoef",), matrix_domains=("nonconstant_rows",), backward_divides=True)


# ------------------------------------------------------------------ cov with aweights an input
def _sym_cov_aweights(arrays, p):
    x, a = arrays
    return _squeezed(_sym_cov_matrix(_variables(x), p["correction"], FWEIGHTS[:len(a)] if p["fweights"] else None,
                                     list(a)), None)


def _with_aweights(F, arrays, p) -> _Cov:
    x, a = arrays
    return _Cov(F, _variables(x), p["correction"], FWEIGHTS[:len(a)] if p["fweights"] else None, list(a))


def _cov_aweights_forward(F, arrays, p):
    return _squeezed(_with_aweights(F, arrays, p).out, None)


def _cov_aweights_backward(F, arrays, out, grad, p):
    model = _with_aweights(F, arrays, p)
    gx, ga = model.weights_backward(np.asarray(grad, dtype=object).reshape(model.out.shape))
    return gx.reshape(arrays[0].shape), np.array(ga, dtype=object)


def _aweights_options(shapes):
    """Two observations or more: with one, the degrees of freedom W - W·a/W are 0 for any correction."""
    if len(shapes[0]) not in (1, 2) or shapes[0][-1] < 2:
        return ()
    fweights = (False, True) if shapes[0][-1] <= len(FWEIGHTS) else (False,)  # weights for that many observations
    return tuple(_params(correction=c, fweights=f) for c in (1, 0) for f in fweights)


def _render_aweights(texts, p) -> str:
    x = texts[0]
    fweights = (f", fweights=torch.tensor({list(FWEIGHTS)}[:{x}.shape[-1]], device={x}.device)"
                if p["fweights"] else "")
    return f"torch.cov({x}, correction={p['correction']}{fweights}, aweights={texts[1]})"


def _cov_aweights(x, a, correction, fweights):
    return torch.cov(x, correction=correction, aweights=a,
                     fweights=torch.tensor(FWEIGHTS[:a.shape[0]], device=x.device) if fweights else None)


_AWEIGHTS_DEFAULTS = _with(correction=1, fweights=False)
TENSOR_OPS["cov_aweights"] = TensorOp(
    "cov_aweights", 2,
    (_spelling("torch.cov({0}, aweights={1})", lambda x, a, **_: torch.cov(x, aweights=a), _AWEIGHTS_DEFAULTS),
     _spelling("{0}.cov(aweights={1})", lambda x, a, **_: x.cov(aweights=a), _AWEIGHTS_DEFAULTS),
     TSpelling(_render_aweights, _spelling("", _cov_aweights).call)),
    _sym_cov_aweights, _cov_aweights_forward, _cov_aweights_backward,
    OptionSpace(functools.cache(_aweights_options)), _out_shape, ("cov",),
    operand_shapes=lambda shape: [(shape, shape[-1:])], matrix_domains=("", "positive_weights"))
