"""Selection ops (oracles/table/selection_ops.py: max, min, amin, aminmax, median, kthvalue, sort, topk, cummax;
oracles/table/max_pooling.py: max_pool, adaptive_max_pool).

- each entry's forward is torch's op: every listed parameter set of small shapes, every spelling, on
  distinct values in an order that is neither sorted nor reversed (the gradient follows the same choice);
- gradients worked by hand, at distinct values and at ties where torch documents its choice;
- at ties where every kernel follows one rule torch does not document (max pooling: the first in the window's
  scan; cummax, cummin: the last of the prefix), the rule against the indices torch returns, in every dtype;
- a tie whose index torch does not document nor follows one rule for is unverified (singular), never judged;
- faults torch's own ops can plant: the gradient routed to the mirrored element, a tie sent to the last
  maximum instead of the first, an even split replaced by the first element, are caught.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flint import arb
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles.core.expected import Status
from oracles.core.outcomes import assert_gradients_match
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.selection_ops import SelectionParams
from oracles.table.tensor_ops import TENSOR_OPS, CallParams
from oracles.tensor.check import check_tensor_case
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from strategies.tensor_programs import tensor_cases
from tests.test_tensor_ops import FAULT_RUN, SMALL_SHAPES, _assert_pinned

SELECTION_OPS = ["max", "min", "amin", "aminmax", "max_dim", "min_dim", "median", "median_dim", "kthvalue", "sort",
                 "topk", "cummax", "cummin"] + [f"{kind}max_pool{d}d" for kind in ("", "adaptive_") for d in (1, 2, 3)]
X = Input(0)
P = SelectionParams


def _shuffled(size: int) -> list[float]:
    """size distinct values, neither ascending nor descending for size >= 3 (multiplying by 5 permutes the
    residues mod any size coprime to 5; the small shapes have at most 18 elements)."""
    order = [(5 * i + 1) % size for i in range(size)] if size % 5 else list(range(size))[::-1]
    return [float(v) - size / 2 for v in order]


@pytest.mark.parametrize("op", SELECTION_OPS)
def test_selection_op_is_torchs_op(op):
    entry = TENSOR_OPS[op]
    F = RoundingModel(format_named("float64"))
    checked = 0
    for rank in entry.ranks:
        for shape in [s for small in SMALL_SHAPES[rank] + [(2, 2)] * (rank == 2)
                      for (s,) in entry.argument_shapes(small)]:
            values = _shuffled(int(np.prod(shape, dtype=int)))
            x = torch.tensor(values, dtype=torch.float64).reshape(shape)
            balls = np.array([arb(v) for v in values], dtype=object).reshape(shape)
            for p in entry.space.options((shape,)):
                mapped = np.asarray(entry.forward(F, [balls], p), dtype=object)
                expected = [float(v.mid()) for v in mapped.reshape(-1)]
                assert mapped.shape == entry.out_shape((shape,), p)
                for k in entry.spellings_for((shape,), p):
                    spelling = entry.spellings[k]
                    text = spelling.render(["x0"], p)
                    for got in (spelling.call([x], p), eval(text, {"torch": torch, "x0": x})):  # our own text
                        assert tuple(got.shape) == mapped.shape and got.reshape(-1).tolist() == expected, (
                            f"{text} on {x.tolist()}: torch gives {got.tolist()}, the oracle's map {expected}")
                    checked += 1
    assert checked, f"{op}: no parameters for any small shape"


# ------------------------------------------------------------------ by hand
def _spelled(op: str, p: SelectionParams, text: str) -> Tensor:
    """The op with the spelling that renders as `text`."""
    entry = TENSOR_OPS[op]
    for k, spelling in enumerate(entry.spellings):
        if spelling.render(["x0"], p) == text:
            return Tensor(op, (X,), p, k)
    raise AssertionError(f"{op}: no spelling renders {text!r}")


def test_sort_routes_each_gradient_to_its_element():
    """sort([3, 1, 2]) = [1, 2, 3]: the gradient of output j goes to the input holding the j-th smallest."""
    node = _spelled("sort", P(0), "torch.sort(x0, dim=0)[0]")
    _assert_pinned(node, ((3,),), ((3.0, 1.0, 2.0),), {0: (4.0, 1.0, 2.0)}, upstream=(1.0, 2.0, 4.0))


def test_descending_sort_and_msort_by_hand():
    node = _spelled("sort", P(0, largest=True), "x0.sort(0, descending=True).values")
    _assert_pinned(node, ((3,),), ((3.0, 1.0, 2.0),), {0: (1.0, 4.0, 2.0)}, upstream=(1.0, 2.0, 4.0))
    node = _spelled("sort", P(0), "torch.msort(x0)")  # along dim 0 of a matrix: each column sorted
    _assert_pinned(node, ((2, 2),), ((2.0, -1.0, 1.0, 5.0),), {0: (3.0, 1.0, 1.0, 3.0)},
                   upstream=(1.0, 1.0, 3.0, 3.0))


def test_topk_sends_gradient_to_the_k_largest():
    """topk([3, 1, 2], 2) = [3, 2] (sorted): x0 gets the first output's gradient, x2 the second's, x1 none."""
    node = _spelled("topk", P(0, k=2, largest=True), "torch.topk(x0, 2, dim=0)[0]")
    _assert_pinned(node, ((3,),), ((3.0, 1.0, 2.0),), {0: (1.0, 0.0, 2.0)}, upstream=(1.0, 2.0))
    node = _spelled("topk", P(0, k=2), "x0.topk(2, 0, largest=False).values")
    _assert_pinned(node, ((3,),), ((3.0, 1.0, 2.0),), {0: (0.0, 1.0, 2.0)}, upstream=(1.0, 2.0))


def test_cummax_adds_the_gradients_a_running_maximum_collects():
    """cummax([1, 3, 2, 5]) = [1, 3, 3, 5]: x1 is the maximum of the prefixes of length 2 and 3, so it
    collects both gradients (cummaxmin_backward's scatter_add); x2 never is."""
    node = _spelled("cummax", P(0), "torch.cummax(x0, dim=0)[0]")
    _assert_pinned(node, ((4,),), ((1.0, 3.0, 2.0, 5.0),), {0: (1.0, 6.0, 0.0, 8.0)}, upstream=(1.0, 2.0, 4.0, 8.0))
    node = _spelled("cummin", P(0), "x0.cummin(0).values")
    _assert_pinned(node, ((4,),), ((1.0, 3.0, 0.5, 5.0),), {0: (3.0, 0.0, 12.0, 0.0)}, upstream=(1.0, 2.0, 4.0, 8.0))


def test_median_kthvalue_select_one_element():
    """The lower median of [4, 1, 3, 2] is 2 (x3); the 2nd smallest of each row of [[3, 1, 2], [0, 5, 4]]
    is 2 (x2) and 4 (x5)."""
    node = _spelled("median", P(), "torch.median(x0)")
    _assert_pinned(node, ((4,),), ((4.0, 1.0, 3.0, 2.0),), {0: (0.0, 0.0, 0.0, 1.0)})
    node = _spelled("kthvalue", P(1, k=2), "torch.kthvalue(x0, 2, dim=1)[0]")
    _assert_pinned(node, ((2, 3),), ((3.0, 1.0, 2.0, 0.0, 5.0, 4.0),), {0: (0.0, 0.0, 3.0, 0.0, 0.0, -1.0)},
                   upstream=(3.0, -1.0))


def test_max_with_dim_sends_a_tie_to_the_first_maximum():
    """torch.max(x, dim)'s docs: at several maximal values the index of the first is returned, and its
    backward scatters the gradient to that index only."""
    node = _spelled("max_dim", P(1), "torch.max(x0, dim=1)[0]")
    _assert_pinned(node, ((2, 3),), ((3.0, 1.0, 3.0, 2.0, 2.0, 2.0),), {0: (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)})
    node = _spelled("min_dim", P(0), "x0.min(0).values")
    _assert_pinned(node, ((2, 2),), ((1.0, 0.0, 1.0, 0.0),), {0: (1.0, 1.0, 0.0, 0.0)})


def test_max_of_everything_and_aminmax_share_ties_evenly():
    node = _spelled("max", P(), "torch.max(x0)")
    _assert_pinned(node, ((2, 2),), ((1.0, 4.0, 4.0, -4.0),), {0: (0.0, 0.5, 0.5, 0.0)})
    node = _spelled("aminmax", P(None), "torch.aminmax(x0).min")
    _assert_pinned(node, ((3,),), ((-2.0, 0.0, -2.0),), {0: (0.5, 0.0, 0.5)})


@pytest.mark.parametrize(("op", "p", "values"), [
    ("median_dim", P(0), (2.0, 2.0, 0.0)),  # the lower median 2 is held twice
    ("kthvalue", P(0, k=1), (1.0, 3.0, 1.0)),
    ("sort", P(0), (1.0, 1.0, 0.0)),
    ("topk", P(0, k=1, largest=True), (2.0, 2.0, 0.0)),
    ("median", P(), (2.0, 0.0, 2.0)),
])
def test_a_tie_at_an_undocumented_index_is_unverified(op, p, values):
    """Which of tied elements torch returns (and sends the gradient to) its docs leave open: singular."""
    case = TensorCase(Tensor(op, (X,), p, 0), ((len(values),),), (values,), "float64")
    expected = expected_tensor_gradients(case)
    assert all(e.status is Status.SINGULAR for e in expected[0].elements), case.source


MAX_POOLS = [f"{kind}max_pool{d}d" for kind in ("", "adaptive_") for d in (1, 2, 3)] + [
    f"fractional_max_pool{d}d" for d in (2, 3)]


def _routed_to(op: str, values: np.ndarray, p) -> list[int]:
    """Per output (row-major) the flat input position the entry's backward sends its gradient to."""
    entry, shape = TENSOR_OPS[op], values.shape
    balls = np.array([arb(v) for v in values.reshape(-1)], dtype=object).reshape(shape)
    out_shape = entry.out_shape((shape,), p)
    F = RoundingModel(format_named("float64"))
    routed = []
    for row in np.eye(int(np.prod(out_shape, dtype=int))):
        (g,) = entry.backward(F, [balls], None, np.array([arb(v) for v in row], dtype=object).reshape(out_shape), p)
        routed.append(next(i for i, v in enumerate(g.reshape(-1)) if v != 0))
    return routed


@pytest.mark.parametrize("op", MAX_POOLS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_max_pooling_sends_a_tie_to_the_first_in_the_window_as_torch_does(op, dtype):
    """torch does not document which of tied maxima max pooling returns; its kernels take the first in the
    window's row-major scan (`val > maxval`). The entry's tie rule against where torch's backward sends each
    output's gradient, for every listed parameter set of the small shapes and every spelling, on all-equal
    values and on random 0/1 values (measured the same with return_indices=True)."""
    entry, rng = TENSOR_OPS[op], np.random.default_rng(0)
    checked = 0
    for rank in entry.ranks:
        for shape in [s for small in SMALL_SHAPES[rank] for (s,) in entry.argument_shapes(small)]:
            for p in entry.space.options((shape,)):
                for values in (np.ones(shape), rng.integers(0, 2, size=shape).astype(float)):
                    for k in entry.spellings_for((shape,), p):
                        x = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
                        y = entry.spellings[k].call([x], p).reshape(-1)
                        by_torch = [int(torch.autograd.grad(y[o], x, retain_graph=True)[0].reshape(-1).argmax())
                                    for o in range(len(y))]
                        assert _routed_to(op, values, p) == by_torch, (
                            f"{entry.spellings[k].render(['x0'], p)} on {values.tolist()} in {dtype}")
                        checked += 1
    assert checked


@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_cummax_and_cummin_send_a_tie_to_the_last_of_the_prefix_as_torch_returns(op, dtype):
    """torch does not document which of a prefix's tied extrema cummax and cummin return; the kernel
    compares with >= (<=), so the last. The entry's rule against torch's indices, on 200 random rows of 1 to 8
    values from {0, 1, 2}, along either dim of a matrix too."""
    rng = np.random.default_rng(1)
    F = RoundingModel(format_named("float64"))
    for _ in range(200):
        shape = (int(rng.integers(1, 9)),) if rng.integers(2) else tuple(int(v) for v in rng.integers(1, 4, size=2))
        dim = int(rng.integers(len(shape)))
        values = rng.integers(0, 3, size=shape).astype(float)
        _, index = getattr(torch, op)(torch.tensor(values, dtype=getattr(torch, dtype)), dim)
        balls = np.array([arb(v) for v in values.reshape(-1)], dtype=object).reshape(shape)
        for o in np.ndindex(*shape):
            grad = np.array([arb(0)] * values.size, dtype=object).reshape(shape)
            grad[o] = arb(1)
            (g,) = TENSOR_OPS[op].backward(F, [balls], grad, grad, P(dim))  # the output: only its shape is read
            [chosen] = [i for i in np.ndindex(*shape) if g[i] != 0]
            assert chosen[dim] == int(index[o]), f"{op}({values.tolist()}, {dim}) in {dtype}, output {o}"


def test_ties_in_max_pooling_and_cummax_by_hand():
    """max_pool1d([2, 2, 2], 2, stride=1): the windows [x0, x1] and [x1, x2] pick their first, x0 and x1; cummax([2, 2])
    sends each prefix's gradient to its last 2, cummin([1, 0, 0]) the third to x2."""
    node = Tensor("max_pool1d", (X,), CallParams((("kernel_size", 2), ("stride", 1))), 0)
    _assert_pinned(node, ((1, 3),), ((2.0, 2.0, 2.0),), {0: (1.0, 2.0, 0.0)}, upstream=(1.0, 2.0))
    node = _spelled("cummax", P(0), "torch.cummax(x0, dim=0)[0]")
    _assert_pinned(node, ((2,),), ((2.0, 2.0),), {0: (1.0, 10.0)}, upstream=(1.0, 10.0))
    node = _spelled("cummin", P(0), "x0.cummin(0).values")
    _assert_pinned(node, ((3,),), ((1.0, 0.0, 0.0),), {0: (1.0, 2.0, 4.0)}, upstream=(1.0, 2.0, 4.0))


def test_max_pool_adds_the_gradients_of_overlapping_windows():
    """max_pool1d([1, 3, 2, 0], 2, stride=1): windows [1, 3], [3, 2], [2, 0] pick x1, x1, x2, so x1 collects
    two gradients."""
    node = Tensor("max_pool1d", (X,), CallParams((("kernel_size", 2), ("stride", 1))), 0)
    _assert_pinned(node, ((1, 4),), ((1.0, 3.0, 2.0, 0.0),), {0: (0.0, 3.0, 4.0, 0.0)}, upstream=(1.0, 2.0, 4.0))
    node = Tensor("adaptive_max_pool2d", (X,), CallParams((("output_size", (1, 2)),)), 0)
    _assert_pinned(node, ((1, 2, 2),), ((1.0, 5.0, 4.0, 2.0),), {0: (0.0, 2.0, 3.0, 0.0)}, upstream=(3.0, 2.0))


def test_a_tie_away_from_the_selected_element_is_decided():
    """The 3rd smallest of [1, 1, 3] is 3 whatever order the tied 1s take."""
    node = _spelled("kthvalue", P(0, k=3), "torch.kthvalue(x0, 3, dim=0)[0]")
    _assert_pinned(node, ((3,),), ((1.0, 1.0, 3.0),), {0: (0.0, 0.0, 1.0)})


# ------------------------------------------------------------------ planted faults
class _MirroredBackward(torch.autograd.Function):
    """torch's op, its gradient flipped (`_mirror_dims`): each element receives the gradient of its mirror
    image."""

    @staticmethod
    def forward(ctx, call, params, x):
        ctx.call, ctx.params = call, params
        ctx.save_for_backward(x)
        return call([x], params)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x = x.detach().requires_grad_()
        with torch.enable_grad():
            (g,) = torch.autograd.grad(ctx.call([x], ctx.params), x, grad)
        return None, None, g.flip(_mirror_dims(x, ctx.params))


def _mirror_dims(x: torch.Tensor, p) -> list[int]:
    """The op's dim; every dim where it reduces everything; a pooling op's last pooled dim."""
    if isinstance(p, CallParams):
        return [-1]
    return list(range(x.dim())) if p.dim is None else [p.dim]


def _mirrored(op: str):
    entry = TENSOR_OPS[op]

    def faulty(args, p):
        return _MirroredBackward.apply(entry.spellings[0].call, p, args[0])

    return faulty


def _caught(op: str, overrides, device) -> None:
    # more examples than other fault runs: a routing fault shows only where the upstream gradient differs
    # between the places it confuses, and not at a tie
    @settings(FAULT_RUN, max_examples=80)
    @given(data=st.data())
    def run(data):
        case = data.draw(tensor_cases("float64", root=op, stages=1), label="case")
        assert_gradients_match(check_tensor_case(case, device, overrides))

    with pytest.raises(AssertionError):
        run()


@pytest.mark.parametrize("op", ["sort", "topk", "cummax", "kthvalue", "median_dim", "max_dim", "amin", "max_pool1d"])
def test_gradient_routed_to_the_mirrored_element_is_caught(op, device):
    _caught(op, {op: _mirrored(op)}, device)


def test_max_dim_tie_sent_to_the_last_maximum_is_caught(device):
    """torch.max over the flipped dim: the same values, but a tie's gradient goes to the last maximum."""

    def last(args, p):
        return torch.max(args[0].flip(p.dim), dim=p.dim, keepdim=p.keepdim)[0]

    _caught("max_dim", {"max_dim": last}, device)


def test_max_tie_sent_to_one_element_is_caught(device):
    """max over the flattened tensor with a dim: the same value, but a tie's gradient goes to the first
    maximum only, where torch.max(x) splits it evenly."""

    def first(args, p):
        return torch.max(args[0].reshape(-1), dim=0)[0]

    _caught("max", {"max": first}, device)
