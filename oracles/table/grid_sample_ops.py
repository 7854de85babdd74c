"""grid_sample (grid_sampler_2d, grid_sampler_3d): the input read at the grid's points, bilinear or nearest, with
zeros, border or reflection padding, align_corners either way; both the input and the grid are differentiated.

Mathematics (SymPy): each grid coordinate g of a spatial dim of size n maps to the pixel coordinate
x = (g + 1)(n - 1)/2 (align_corners) or ((g + 1) n - 1)/2, which border padding clips to [0, n - 1] and
reflection padding reflects about the edges (0 and n - 1, or -1/2 and n - 1/2, then clips, as torch does).
Bilinear: Σ over the pixels p of input[p] Π_d hat(x_d - p_d), hat(t) = max(0, 1 - |t|), which is the weighted sum
of the 2^d corners around x (zeros padding: corners outside the input are left out, the sum runs over the input
only); an edge pixel's hat saturates at 1 beyond the edge instead of being clipped, so that a clipped coordinate
meets no kink where the weight is flat. Nearest: the pixel each of whose coordinates is x rounded (nearbyint), 0
outside under zeros padding, written max(0, 1 - 2 (round(x) - p_d)^2) so that its derivative is decided off the
jumps. Reflection is written as one fold at each edge (|g| <= 3).
Kinks and jumps lie where a pixel coordinate is an integer (bilinear), half an integer (nearest) or at a
padding edge; the strategies draw grids off them by construction (strategies/matrices.py: "grid").

torch (aten/src/ATen/native/GridSampler.cpp, cpu/GridSamplerKernel.cpp) computes the pixel coordinate with a
few operations that are exact for the drawn grids (multiples of 1/8, sides up to 3) and are modelled as correctly
rounded ones; the reflection with fabs, fmod and floor; the corner weights as products of 1 - λ and λ per dim;
the output as their weighted sum. Backward: the input's gradient scatters weight · grad to the corners; the grid's
is, per dim, the sum over channels and corners of grad · input · ±(the other dims' factors), times the
unnormalization's scale and the padding's multiplier (0 where clipped, ±1 where reflected). torch's 2-D kernel
forms it as differences of corner values ((ne - nw) s + (se - sw) n), the 3-D one term by term: the model sums
the terms, each a product rounded, and allows a few roundings more than their count. The kernels compute
bfloat16 and float16 in their own type or in float (measured: a bfloat16 pixel coordinate rounds in bfloat16):
the hull of both (`either_precision`).
"""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import Singular
from oracles.numerics.sympy_functions import RoundHalfEven
from oracles.table.loss_ops import correctly_rounded
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_formulas import ZERO, is_exact_zero, product
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

NAMES = ["grid_sample_2d", "grid_sample_3d"]  # the entries this module adds to TENSOR_OPS (their forwards round)
MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection")
MODE_CODE = {"bilinear": 0, "nearest": 1}  # torch.grid_sampler_2d/3d's integer codes
PADDING_CODE = {"zeros": 0, "border": 1, "reflection": 2}
# roundings a sum of products may take beyond one per addition: the 2-D kernel's differences of corner values
# before the products, and the products' own
EXTRA_ROUNDINGS = 4


# ------------------------------------------------------------------ SymPy: each pixel's weight
# Max, Min and Abs built without SymPy's evaluation, which queries its assumptions system at every node (two
# seconds of a property test's three, measured); the functions are the same
def _abs(x):
    return sympy.Abs(x, evaluate=False)


def _max(*args):
    return sympy.Max(*args, evaluate=False)


def _min(*args):
    return sympy.Min(*args, evaluate=False)


def _raw(g, n: int, align: bool):
    """The pixel coordinate before padding, an affine function of g."""
    return (g + 1) * sympy.Rational(n - 1, 2) if align else ((g + 1) * n - 1) / 2


def _reflected(x, n: int, align: bool):
    """torch's reflect_coordinates about 0 and n - 1 (align_corners) or -1/2 and n - 1/2, before the clip; one
    reflection at each edge, which holds for |g| <= 3 (the drawn grids: |g| < 2)."""
    if align:
        return sympy.Integer(0) if n == 1 else (n - 1) - _abs((n - 1) - _abs(x))
    half = sympy.Rational(1, 2)
    return n - _abs(n - _abs(x + half)) - half


def _hat(t):
    return _max(0, 1 - _abs(t))


def _saturated_hat(x, c: int, n: int):
    """hat(clip(x, 0, n - 1) - c) written without the clip: an edge pixel's weight saturates at 1 beyond the edge
    (min(1, max(0, ...))), so that a clipped coordinate has no kink of the hat where the weight is flat."""
    if n == 1:
        return sympy.Integer(1)
    if c == 0:
        return _min(1, _max(0, 1 - x))
    if c == n - 1:
        return _min(1, _max(0, x - (n - 2)))
    return _hat(x - c)


def _sym_weight(c: int, g, n: int, p):
    """Pixel c's weight along a dim of size n at grid coordinate g: bilinear, the hat of the padded coordinate;
    nearest, 1 where the padded coordinate rounds to c."""
    align, padding = p["align_corners"], p["padding_mode"]
    if n == 1 and (align or padding != "zeros"):  # the coordinate is 0 (or clipped to it) whatever g
        return sympy.Integer(1)
    x = _raw(g, n, align)
    if padding == "reflection":
        x = _reflected(x, n, align)
    if p["mode"] == "bilinear":
        return _hat(x - c) if padding == "zeros" else _saturated_hat(x, c, n)
    if padding != "zeros":
        x = _min(_max(x, 0), n - 1)
    # 1 at the nearest pixel (nearbyint: torch's round), 0 at the others, with no tie in the max at any integer
    # distance, so that the exact derivative (0 off the jumps at half-integers) is decided everywhere else
    return _max(0, 1 - 2 * (RoundHalfEven(x) - c) ** 2)


def _sym(arrays, p):
    image, grid = arrays
    dims = grid.shape[-1]
    sizes = image.shape[2:][::-1]  # the grid's coordinate d runs along the input's dim -1 - d
    out = np.empty(image.shape[:2] + grid.shape[1:-1], dtype=object)
    for b, *where in np.ndindex(*grid.shape[:-1]):
        weights = [[_sym_weight(c, grid[(b, *where, d)], sizes[d], p) for c in range(sizes[d])] for d in range(dims)]
        for channel in range(image.shape[1]):
            terms = []
            for pixel in itertools.product(*(range(n) for n in image.shape[2:])):
                coords = pixel[::-1]
                factors = [weights[d][coords[d]] for d in range(dims)]
                terms.append(image[(b, channel, *pixel)] * sympy.Mul(*factors))
            out[(b, channel, *where)] = sympy.Add(*terms)
    return out


# ------------------------------------------------------------------ torch's pixel coordinate, in balls
def _source(G, g: arb, n: int, p) -> tuple[arb, int]:
    """(the padded pixel coordinate, d x / d g's sign from the padding: 1, -1, or 0 where clipped)."""
    one_more = correctly_rounded(G, g + 1)
    if p["align_corners"]:
        x = correctly_rounded(G, one_more * (n - 1) / 2)
    else:
        x = correctly_rounded(G, correctly_rounded(G, one_more * arb(n) / 2) - arb(0.5))
    sign = 1
    if p["padding_mode"] == "reflection":
        x, sign = _reflect(G, x, n, p["align_corners"])
    if p["padding_mode"] in ("border", "reflection"):
        x, clipped = _clip(x, n)
        sign = 0 if clipped else sign
    return x, sign


def _decided_floor(x: arb) -> int:
    """floor(x), where no value of the ball is an integer but an exact one (else the point is a kink)."""
    below = int(x.mid().floor().unique_fmpz())
    if x.is_exact() or (x > below and x < below + 1):
        return below
    raise Singular("a pixel coordinate may be an integer within the rounding model")


def _reflect(G, x: arb, n: int, align: bool) -> tuple[arb, int]:
    """reflect_coordinates: about 0 and n - 1 (align_corners) or -1/2 and n - 1/2."""
    low, span = (arb(0), n - 1) if align else (arb(-0.5), n)
    if span == 0:
        return ZERO, 0
    shifted = correctly_rounded(G, x - low)
    sign = G.sign(shifted) if not is_exact_zero(shifted) else 1
    magnitude = abs(shifted)
    flips = _decided_floor(magnitude / span)
    extra = magnitude - flips * span  # fmod: exact
    if flips % 2 == 0:
        return correctly_rounded(G, extra + low), sign
    return correctly_rounded(G, correctly_rounded(G, span - extra) + low), -sign


def _clip(x: arb, n: int) -> tuple[arb, bool]:
    """clip_coordinates (the gradient multiplier is 0 at and beyond the limits)."""
    if x <= 0:
        return ZERO, True
    if x >= n - 1:
        return arb(n - 1), True
    if x > 0 and x < n - 1:
        return x, False
    raise Singular("a pixel coordinate may be at a clip limit within the rounding model")


def _nearest(x: arb) -> int:
    """nearbyint(x), where x is no half-integer (jumps of the nearest mode)."""
    below = _decided_floor(x)
    half = x - below
    if half < 0.5:
        return below
    if half > 0.5:
        return below + 1
    raise Singular("a pixel coordinate may be half an integer within the rounding model")


# ------------------------------------------------------------------ torch's forward and backward, in balls
def _corners(G, image, grid, p, b: int, where: tuple) -> tuple[list, list]:
    """Per grid point: [(pixel index, weight factors per dim, factor signs per dim)] of the corners inside the
    input, and per dim (scale · padding sign) of d x / d g."""
    dims = grid.shape[-1]
    sizes = image.shape[2:][::-1]
    xs, multipliers = [], []
    for d in range(dims):
        n = sizes[d]
        x, sign = _source(G, grid[(b, *where, d)], n, p)
        xs.append(x)
        scale = Fraction(n - 1, 2) if p["align_corners"] else Fraction(n, 2)
        multipliers.append(arb(scale.numerator) / scale.denominator * sign)
    if p["mode"] == "nearest":
        pixel = tuple(_nearest(x) for x in xs)
        inside = all(0 <= pixel[d] < sizes[d] for d in range(dims))
        return ([(pixel[::-1], [arb(1)] * dims, [0] * dims)] if inside else []), multipliers
    per_dim = []
    for x in xs:
        low = _decided_floor(x)
        lam = correctly_rounded(G, x - low)
        per_dim.append([(low, correctly_rounded(G, 1 - lam), -1), (low + 1, lam, 1)])
    corners = []
    for choice in itertools.product(*per_dim):
        coords = [c[0] for c in choice]
        if all(0 <= coords[d] < sizes[d] for d in range(dims)):
            corners.append((tuple(coords[::-1]), [c[1] for c in choice], [c[2] for c in choice]))
    return corners, multipliers


def _loose_sum(G, terms: list[arb]) -> arb:
    """A sum in any order with `EXTRA_ROUNDINGS` more roundings than its additions, of Σ|terms|."""
    terms = [t for t in terms if not is_exact_zero(t)]
    if not terms:
        return ZERO
    total, magnitude = arb(0), arb(0)
    for t in terms:
        total += t
        magnitude += t.abs_upper()
    return G.round(total, len(terms) - 1 + EXTRA_ROUNDINGS, magnitude)


def _points(grid):
    return [(b, tuple(where)) for b, *where in np.ndindex(*grid.shape[:-1])]


def _forward_in(G, arrays, p):
    image, grid = arrays
    out = np.empty(image.shape[:2] + grid.shape[1:-1], dtype=object)
    for b, where in _points(grid):
        corners, _ = _corners(G, image, grid, p, b, where)
        for c in range(image.shape[1]):
            terms = [product(G, factors + [image[(b, c, *pixel)]]) for pixel, factors, _ in corners]
            out[(b, c, *where)] = _loose_sum(G, terms)
    return out


def _backward_in(G, arrays, grad, p):
    image, grid = arrays
    dims = grid.shape[-1]
    shares = {index: [] for index in np.ndindex(*image.shape)}
    d_grid = np.empty(grid.shape, dtype=object)
    for b, where in _points(grid):
        corners, multipliers = _corners(G, image, grid, p, b, where)
        for c in range(image.shape[1]):
            g = grad[(b, c, *where)]
            for pixel, factors, _ in corners:
                shares[(b, c, *pixel)].append(product(G, factors + [g]))
        for d in range(dims):
            if p["mode"] == "nearest":
                d_grid[(b, *where, d)] = ZERO
                continue
            terms = []
            for c in range(image.shape[1]):
                g = grad[(b, c, *where)]
                for pixel, factors, signs in corners:
                    others = [f for e, f in enumerate(factors) if e != d]
                    term = product(G, others + [g, image[(b, c, *pixel)]])
                    terms.append(term if signs[d] > 0 else -term)
            # at a clipped coordinate torch still forms the sum and multiplies it by 0: an overflowed sum gives
            # NaN there (inf * 0), so the sum is modelled, and may raise Overflow, before the 0 is taken
            total = _loose_sum(G, terms)
            d_grid[(b, *where, d)] = ZERO if is_exact_zero(multipliers[d]) else G.round(total * multipliers[d])
    d_image = np.empty(image.shape, dtype=object)
    for index, parts in shares.items():
        d_image[index] = _loose_sum(G, parts)
    return d_image, d_grid


def _hull_of_precisions(F, compute):
    """compute(G) in the dtype's own arithmetic and in float, each stored in the dtype: the hull elementwise."""
    own = compute(F)
    if F.opmath is F:
        return own
    wide = compute(F.opmath)
    return tuple(_hull_arrays(F, a, b) for a, b in zip(own, wide))


def _hull_arrays(F, own, wide):
    out = np.empty(own.shape, dtype=object)
    for index in np.ndindex(*own.shape):
        out[index] = own[index].union(F.store(wide[index]))
    return out


def _forward(F, arrays, p):
    return _hull_of_precisions(F, lambda G: (_forward_in(G, arrays, p),))[0]


def _backward(F, arrays, out, grad, p):
    return _hull_of_precisions(F, lambda G: _backward_in(G, arrays, grad, p))


# ------------------------------------------------------------------ the entries
MAX_PIXELS_3D = 12  # grid_sampler_3d's inputs: up to 12 pixels (27 make SymPy's Jacobian slow to derive)


def _options(shapes):
    image, grid = shapes
    if len(image) < 4 or len(grid) != len(image) or grid[-1] != len(image) - 2:
        return ()
    if len(image) == 5 and int(np.prod(image[2:])) > MAX_PIXELS_3D:
        return ()
    return tuple(_params(mode=m, padding_mode=pad, align_corners=a)
                 for m in MODES for pad in PADDINGS for a in (False, True))


def _operand_shapes(dims: int):
    def shapes(shape):
        """A batch of one of the drawn spatial shape: one channel sampled at one point, or two at two points."""
        point, points = (1,) * dims + (dims,), (1,) * (dims - 1) + (2, dims)
        return [((1, 1) + shape, (1,) + point), ((1, 2) + shape, (1,) + points)]

    return shapes


def _grid_entry(name: str, dims: int, sampler, opinfo: str) -> TensorOp:
    def sampler_text(texts, p) -> str:  # torch.grid_sampler_*d takes the modes as integer codes
        return (f"torch.{sampler.__name__}({texts[0]}, {texts[1]}, {MODE_CODE[p['mode']]}, "
                f"{PADDING_CODE[p['padding_mode']]}, {p['align_corners']})")

    spellings = (
        _spelling("torch.nn.functional.grid_sample({0}, {1}, mode={mode}, padding_mode={padding_mode}, "
                  "align_corners={align_corners})",
                  lambda x, g, mode, padding_mode, align_corners: torch.nn.functional.grid_sample(
                      x, g, mode=mode, padding_mode=padding_mode, align_corners=align_corners)),
        TSpelling(sampler_text, _spelling("", lambda x, g, mode, padding_mode, align_corners: sampler(
            x, g, MODE_CODE[mode], PADDING_CODE[padding_mode], align_corners)).call),
    )
    return TensorOp(
        name, 2, spellings, _sym, _forward, _backward, OptionSpace(functools.cache(_options)),
        lambda shapes, p: shapes[0][:2] + shapes[1][1:-1], ("nn.functional.grid_sample", opinfo),
        ranks=(dims,), operand_shapes=_operand_shapes(dims), matrix_domains=("", "grid"))


TENSOR_OPS["grid_sample_2d"] = _grid_entry("grid_sample_2d", 2, torch.grid_sampler_2d, "grid_sampler_2d")
TENSOR_OPS["grid_sample_3d"] = _grid_entry("grid_sample_3d", 3, torch.grid_sampler_3d, "grid_sampler_3d")
