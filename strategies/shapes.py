"""Input shapes that broadcast against each other, 0-d tensors included."""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

MAX_DIMS = 3
MAX_SIDE = 3


@cache  # one strategy object per count: see strategies/cached.py
def input_shapes(n_inputs: int) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return mutually_broadcastable_shapes(
        num_shapes=n_inputs, min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE
    ).map(lambda shapes: tuple(tuple(s) for s in shapes.input_shapes))
