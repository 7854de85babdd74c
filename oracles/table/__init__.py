"""The op tables: everything the suite knows about each op, one entry per op."""

from oracles.table import (
    activations,  # noqa: F401 - registers its entries in OPS
    arithmetic,  # noqa: F401 - registers its entries in OPS
    loss_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    math_functions,  # noqa: F401 - registers its entries in OPS
    normalization_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    sample_losses,  # noqa: F401 - registers its entries in TENSOR_OPS
    shape_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    special_functions,  # noqa: F401 - registers its entries in OPS
)
