"""Discrete Fourier transforms of real tensors, one entry each, as contractions (oracles.table.contractions):
each output element is a sum of the input's elements times twiddle factors e^{∓2πijk/n} and a normalization.

A complex result is spelled through torch.view_as_real (its last dim holds the real and imaginary parts), so
every part of it is checked; a real input is the complex input with imaginary part 0. The maps follow the
definitions of torch.fft's documentation (c2c transforms along each dim; r2c keeps the first n//2 + 1
frequencies of the last dim; c2r transforms the other dims, then extends the last one Hermitian-symmetrically:
the imaginary parts of its first and, for even n, middle frequency do not count; hfft is irfft of the
conjugate with the dual normalization, ihfft the conjugate of rfft with it). A twiddle factor other than 1 is
a constant torch computes (`Computed`: within `K_TWIDDLE` roundings of 1, also where it is 0), a
normalization 1/n or 1/sqrt(n) too (one rounding).
"""

from __future__ import annotations

import numpy as np
import sympy
import torch

from oracles.table.contraction_ops import _contraction
from oracles.table.contractions import Computed, Terms
from oracles.table.shape_ops import _params, _spelling, _with

# cos and sin of 2πjk/n as the FFT library has them: computed in its working precision or tabulated, then
# rounded; two roundings of magnitude 1 enclose either
K_TWIDDLE = 2
NORMS = ("backward", "ortho", "forward")
DUAL = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _twiddle(jk: int, n: int, sign: int):
    """(cos, sin) of sign·2π·jk/n: exactly (1, 0) for jk = 0 (the library multiplies by nothing there)."""
    if jk == 0:
        return 1, 0
    angle = sympy.Rational(2 * jk, n) * sympy.pi
    return Computed(sympy.cos(angle), K_TWIDDLE), Computed(sign * sympy.sin(angle), K_TWIDDLE)


def _scale(norm: str, n: int, inverse: bool):
    """The normalization of a transform of n points: 1/n on the side `norm` names, 1/sqrt(n) both ways for
    "ortho"."""
    if norm == "ortho":
        return Computed(1 / sympy.sqrt(n), 1, 1)
    if (norm == "backward") == inverse and n > 1:
        return Computed(sympy.Rational(1, n), 1, 1)
    return 1


def _nothing(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = Terms()
    return out


def _resized(a: np.ndarray, n: int) -> np.ndarray:
    """`a` (transformed dim first) cut or zero-padded to n, as torch.fft's n= and s= do."""
    if a.shape[0] >= n:
        return a[:n]
    return np.concatenate([a, _nothing((n - a.shape[0],) + a.shape[1:])])


def _c2c(pair, dim: int, n: int, inverse: bool, norm: str):
    """The complex transform along `dim` of (real parts, imaginary parts)."""
    re, im = (_resized(np.moveaxis(a, dim, 0), n) for a in pair)
    sign = 1 if inverse else -1
    scale = _scale(norm, n, inverse)
    out_re, out_im = _nothing(re.shape), _nothing(re.shape)
    for k in range(n):
        for j in range(n):
            c, s = _twiddle(j * k, n, sign)
            out_re[k] = out_re[k] + (c * re[j] - s * im[j]) * scale
            out_im[k] = out_im[k] + (c * im[j] + s * re[j]) * scale
    return np.moveaxis(out_re, 0, dim), np.moveaxis(out_im, 0, dim)


def _c2r(pair, dim: int, n: int, norm: str):
    """The real inverse transform along `dim` of a half spectrum (n//2 + 1 frequencies): frequency k < n/2 and
    its mirror n - k both count, Re(Y_k e^{2πikt/n}) twice; the first and (even n) the middle once."""
    half = n // 2 + 1
    re, im = (_resized(np.moveaxis(a, dim, 0), half) for a in pair)
    scale = _scale(norm, n, True)
    out = _nothing((n,) + re.shape[1:])
    for t in range(n):
        for k in range(half):
            c, s = _twiddle(k * t, n, 1)
            twice = 1 if k == 0 or 2 * k == n else 2
            out[t] = out[t] + (c * re[k] - s * im[k]) * (twice * scale if twice * scale != 1 else 1)
    return np.moveaxis(out, 0, dim)


def _real(x: np.ndarray):
    return x, _nothing(x.shape)


def _as_real(pair) -> np.ndarray:
    return np.stack(pair, axis=-1)


def _dims(x: np.ndarray, p) -> list[int]:
    dims = p["dim"]
    if dims is None:
        return list(range(x.ndim))
    return [d % x.ndim for d in ((dims,) if isinstance(dims, int) else dims)]


def _sizes(x: np.ndarray, p, dims, last_real: bool) -> list[int]:
    """The transform's lengths: `n`/`s` where given, else the input's (for a c2r transform's last dim, the
    length 2(m - 1) its m frequencies make)."""
    given = p.get("n") if p.get("n") is not None else p.get("s")
    if given is not None:
        return [given] if isinstance(given, int) else list(given)
    sizes = [x.shape[d] for d in dims]
    if last_real:
        sizes[-1] = 2 * (sizes[-1] - 1)
    return sizes


def _fft(inverse: bool, onesided: bool = False):
    """c2c transforms of a real input along each dim; `onesided` keeps the first n//2 + 1 frequencies of the
    last (rfft; ihfft, the inverse transform's, equal to the conjugate of rfft with the dual normalization)."""

    def transform(arrays, p):
        x = arrays[0]
        dims = _dims(x, p)
        sizes = _sizes(x, p, dims, last_real=False)
        pair = _real(x)
        for d, n in zip(dims, sizes):
            pair = _c2c(pair, d, n, inverse, p["norm"])
        if onesided:
            last = dims[-1]
            pair = tuple(np.moveaxis(np.moveaxis(a, last, 0)[:sizes[-1] // 2 + 1], 0, last) for a in pair)
        return _as_real(pair)

    return transform


def _irfft(dual: bool):
    """c2c inverse transforms along all dims but the last, then c2r along the last; `dual`: hfft, irfft of
    the conjugate (the same for a real input) with the dual normalization."""

    def transform(arrays, p):
        x = arrays[0]
        dims = _dims(x, p)
        sizes = _sizes(x, p, dims, last_real=True)
        norm = DUAL[p["norm"]] if dual else p["norm"]
        pair = _real(x)
        for d, n in zip(dims[:-1], sizes[:-1]):
            pair = _c2c(pair, d, n, True, norm)
        return _c2r(pair, dims[-1], sizes[-1], norm)

    return transform


# ------------------------------------------------------------------ parameters and spellings
def _norm_options(base: dict):
    return [_params(**base, norm=norm) for norm in NORMS]


def _one_dim_options(c2r: bool):
    def options(shapes):
        shape = shapes[0]
        out = []
        for dim in [-1] + list(range(len(shape) - 1)):
            m = shape[dim]
            lengths = [None, m + 1] + ([m - 1] if m > 1 else [])
            for n in lengths:
                if c2r and n is None and m < 2:
                    continue
                out += _norm_options({"n": n, "dim": dim})
        return out

    return options


def _many_dims_options(rank: int | None, c2r: bool):
    """2-D transforms over the last two dims (`rank` 2), n-D ones over all (`rank` None); s=None or the sizes
    one longer."""

    def options(shapes):
        shape = shapes[0]
        if rank is not None and len(shape) < rank:
            return []
        dims = list(range(len(shape)))[-rank:] if rank else list(range(len(shape)))
        dim = None if rank is None else (-2, -1)
        sizes = [None, tuple(shape[d] + 1 for d in dims)]
        if c2r and shape[dims[-1]] < 2:  # one frequency: the default length 2(m - 1) would be 0
            sizes = [tuple(shape[d] for d in dims)]
        return [p for s in sizes for p in _norm_options({"s": s, "dim": dim})]

    return options


# A complex result of a real input may be a lazily conjugated view (ifft's, ihfft's), which view_as_real
# refuses: resolved first.
def _wrapped(text: str, complex_out: bool) -> str:
    return f"torch.view_as_real({text}.resolve_conj())" if complex_out else text


def _as_real_tensor(y: torch.Tensor, complex_out: bool) -> torch.Tensor:
    return torch.view_as_real(y.resolve_conj()) if complex_out else y


def _runner(function, complex_out: bool, one_dim: bool):
    def run(x, norm, dim, **size):
        kw = {"n": size["n"]} if one_dim else {"s": size["s"]}
        y = function(x, dim=dim, norm=norm, **kw) if dim is not None else function(x, norm=norm, **kw)
        return _as_real_tensor(y, complex_out)

    return run


_FAMILIES = (  # name, complex output, map
    ("fft", True, lambda: _fft(False)), ("ifft", True, lambda: _fft(True)),
    ("rfft", True, lambda: _fft(False, onesided=True)), ("ihfft", True, lambda: _fft(True, onesided=True)),
    ("irfft", False, lambda: _irfft(False)), ("hfft", False, lambda: _irfft(True)),
)

for _base, _complex, _map in _FAMILIES:
    _c2r_family = _base in ("irfft", "hfft")
    for _suffix, _rank in (("", 0), ("2", 2), ("n", None)):
        _name = _base + _suffix
        _function = getattr(torch.fft, _name)
        _one = _suffix == ""
        _size = "n" if _one else "s"
        _text = f"torch.fft.{_name}({{0}}, {_size}={{{_size}}}, dim={{dim}}, norm={{norm}})"
        _plain = f"torch.fft.{_name}({{0}})"
        _spellings = [
            _spelling(_wrapped(_text, _complex), _runner(_function, _complex, _one)),
            _spelling(_wrapped(_plain, _complex), lambda x, _f=_function, _c=_complex, **p: _as_real_tensor(_f(x), _c),
                      _with(**{_size: None, "dim": -1 if _one else (None if _rank is None else (-2, -1)),
                               "norm": "backward"})),
        ]
        _options = _one_dim_options(_c2r_family) if _one else _many_dims_options(_rank, _c2r_family)
        _contraction(_name, _map(), _spellings, _options, [f"fft.{_name}"], arity=1, ranks=(1, 2),
                     cpu_dtypes=("float64", "float32"))
