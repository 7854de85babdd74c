"""Input shapes that broadcast against each other, 0-d tensors included.

Built by construction in n + 1 draws: the broadcast shape first (rank 0-3, sides 1-3), then each input as one
of the shapes that broadcast to it (its trailing dims, each the base's side or 1). Each draw picks from a list
ordered simplest first, so a failing case shrinks to 0-d inputs. `mutually_broadcastable_shapes` reaches the
same sets of shapes but loops over dims and sides with a draw each: about 1 ms a case, measured, a third of
drawing a whole elementwise case."""

from __future__ import annotations

import itertools
import math
from functools import cache

from hypothesis import strategies as st

from strategies.cached import choice

MAX_DIMS = 3
MAX_SIDE = 3


def _simplest_first(shapes) -> list[tuple[int, ...]]:
    return sorted(set(shapes), key=lambda s: (math.prod(s), len(s), s))


BASE_SHAPES = _simplest_first(itertools.chain.from_iterable(
    itertools.product(range(1, MAX_SIDE + 1), repeat=rank) for rank in range(MAX_DIMS + 1)))


@cache
def broadcast_sources(base: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every shape that broadcasts to `base`: its last k dims for each k, each side kept or set to 1."""
    return _simplest_first(shape for rank in range(len(base) + 1)
                           for shape in itertools.product(*[(1, side) if side > 1 else (1,)
                                                            for side in base[len(base) - rank:]]))


@cache  # `choice` keys its options afresh on every call: a tenth of test_op_gradient's draws went to it
def _sources_strategy(base: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    return choice(broadcast_sources(base))


_BASE_SHAPES_STRATEGY = choice(BASE_SHAPES)  # keyed once: 40 shapes to key on every draw cost 0.15 ms


@cache  # one strategy object per count: see strategies/cached.py
def input_shapes(n_inputs: int) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    if n_inputs < 1:
        raise ValueError(f"n_inputs must be at least 1, got {n_inputs!r}")

    @st.composite
    def shapes(draw):
        base = draw(_BASE_SHAPES_STRATEGY, label="broadcast shape")
        sources = _sources_strategy(base)
        return tuple(draw(sources, label=f"x{i} shape") for i in range(n_inputs))

    return shapes()
