"""torch.stft of a real signal, as a contraction (oracles.table.contractions): each output element is a sum of the
signal's elements times a window value, a twiddle factor and a normalization, so the exact Jacobian is the windowed
DFT matrix.

The map follows torch.stft's documentation and its composite: with `center`, the signal is padded by n_fft // 2 on
both sides (torch.nn.functional.pad, `pad_mode`); frame t is the n_fft elements from t * hop_length; the window of
win_length elements (ones where none is given) sits in the middle of the n_fft (zeros around it) and multiplies
each frame; each windowed frame goes through the real-to-complex FFT of n_fft points (only the first n_fft // 2 + 1
frequencies where `onesided`), scaled by 1/sqrt(n_fft) where `normalized`. The result, (frequencies, frames) per
signal, is spelled through torch.view_as_real, as the fft entries are (oracles.table.fft_ops, whose transform and
twiddle model this reuses).

A window value w is given to torch as a tensor of the signal's dtype (the values here are exact in it); torch
rounds each product x * w before the FFT: the window enters the products as a constant of no error of its own
(`Computed(w, 0)`), and multiplying it into a twiddle factor adds the one rounding the product x * w makes.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch

from oracles.table.contraction_ops import _contraction
from oracles.table.contractions import Computed, Terms
from oracles.table.fft_ops import _as_real, _c2c, _nothing
from oracles.table.shape_ops import _padded, _params, _spelling

N_FFTS = (2, 3, 4)  # a frame of one point is the signal itself
WINDOW_VALUES = (0.75, 1.0, 0.5, 0.25)  # exact in every dtype, and unequal, so a misplaced window shows
EXTRA = 2  # the signal is drawn 2 longer than the strategy's side: frames of 4 points fit a signal of 3 to 5


def _pad_fits(mode: str, pad: int, n: int) -> bool:
    return mode == "constant" or (pad < n if mode == "reflect" else pad <= n)


def _window(n_fft: int, win_length: int | None, window: tuple[float, ...] | None) -> list:
    """The n_fft factors each frame is multiplied by: the window (ones where none is given) centred, zeros around
    it; exact 1s and 0s multiply exactly, a given value within the rounding of the product (module docstring)."""
    length = win_length or n_fft
    left = (n_fft - length) // 2
    inside = [1] * length if window is None else [Computed(sympy.Rational(w), 0) for w in window]
    return [0] * left + inside + [0] * (n_fft - left - length)


def _stft_map(arrays, p):
    x = arrays[0]
    n_fft, hop = p["n_fft"], p["hop_length"] or p["n_fft"] // 4
    if p["center"]:
        x = _padded(x, (n_fft // 2, n_fft // 2), p["pad_mode"], Terms())
    frames = np.stack([x[..., t:t + n_fft] for t in range(0, x.shape[-1] - n_fft + 1, hop)], axis=-2)
    window = _window(n_fft, p["win_length"], p["window"])
    windowed = np.empty(frames.shape, dtype=object)
    for index in np.ndindex(*frames.shape):
        windowed[index] = frames[index] * window[index[-1]]
    re, im = _c2c((windowed, _nothing(windowed.shape)), windowed.ndim - 1, n_fft, False,
                  "ortho" if p["normalized"] else "backward")
    if p["onesided"] is not False:
        re, im = re[..., :n_fft // 2 + 1], im[..., :n_fft // 2 + 1]
    return _as_real((np.swapaxes(re, -1, -2), np.swapaxes(im, -1, -2)))  # (..., frequencies, frames, 2)


# ------------------------------------------------------------------ parameters and spellings
BASE = {"hop_length": None, "win_length": None, "window": None, "center": True, "pad_mode": "reflect",
        "normalized": False, "onesided": None}


def _variants(n_fft: int) -> list[dict]:
    """A few parameter sets that together change every parameter from torch's default: no window (ones) and a
    window given (ones, or unequal values), each with a shorter win_length too (torch pads the window, or the ones
    it makes, with zeros); torch's defaults themselves where hop_length n_fft // 4 is at least 1."""
    ones = (1.0,) * n_fft
    shorter = n_fft - 1
    sets = [{"hop_length": 1},
            {"window": ones, "hop_length": 2, "pad_mode": "constant"},
            {"window": WINDOW_VALUES[:n_fft], "hop_length": 1, "center": False, "normalized": True, "onesided": False},
            {"window": WINDOW_VALUES[:n_fft], "hop_length": 1, "pad_mode": "replicate", "normalized": True},
            {"window": WINDOW_VALUES[:shorter], "win_length": shorter, "hop_length": 1, "pad_mode": "circular",
             "onesided": False},
            {"win_length": shorter, "hop_length": 2}]
    return ([dict(BASE)] if n_fft >= 4 else []) + [BASE | s for s in sets]


def _options(shapes):
    length = shapes[0][-1]
    out = []
    for n_fft in N_FFTS:
        for v in _variants(n_fft):
            padded = length + (2 * (n_fft // 2) if v["center"] else 0)
            if v["center"] and not _pad_fits(v["pad_mode"], n_fft // 2, length) or padded < n_fft:
                continue
            out.append(_params(n_fft=n_fft, **v))
    return out


def _longer(shape: tuple[int, ...]):
    return [(shape[:-1] + (shape[-1] + EXTRA,),)]


def _keywords(x, p) -> dict:
    window = {} if p["window"] is None else {"window": x.new_tensor(p["window"])}
    return {"hop_length": p["hop_length"], "win_length": p["win_length"], "center": p["center"],
            "pad_mode": p["pad_mode"], "normalized": p["normalized"], "onesided": p["onesided"]} | window


_KEYWORDS = ("hop_length={hop_length}, win_length={win_length}, center={center}, pad_mode={pad_mode}, "
             "normalized={normalized}, onesided={onesided}, return_complex=True")


def _windowed(given: bool):
    return lambda shapes, p: (p["window"] is not None) == given


def _at_defaults(shapes, p) -> bool:
    return all(p[k] == v for k, v in BASE.items()) and p["n_fft"] >= 4


def _full_spellings(function: str, call):
    """Every parameter named, the window (a tensor of the signal's dtype) where one is given."""
    return [
        _spelling(f"torch.view_as_real({function}, {_KEYWORDS}))",
                  lambda x, n_fft, **p: torch.view_as_real(call(x, n_fft, return_complex=True, **_keywords(x, p))),
                  _windowed(False)),
        _spelling(f"torch.view_as_real({function}, window={{0}}.new_tensor({{window}}), {_KEYWORDS}))",
                  lambda x, n_fft, **p: torch.view_as_real(call(x, n_fft, return_complex=True, **_keywords(x, p))),
                  _windowed(True)),
    ]


_SPELLINGS = _full_spellings("torch.stft({0}, {n_fft}", torch.stft) + _full_spellings(
    "{0}.stft({n_fft}", torch.Tensor.stft) + [
    _spelling("torch.view_as_real(torch.stft({0}, {n_fft}, return_complex=True))",
              lambda x, n_fft, **p: torch.view_as_real(torch.stft(x, n_fft, return_complex=True)), _at_defaults),
]

_contraction("stft", _stft_map, _SPELLINGS, _options, ["stft"], arity=1, ranks=(1, 2), operand_shapes=_longer,
             cpu_dtypes=("float64", "float32"))
