"""The op tables: everything the suite knows about each op, one entry per op."""

from oracles.table import (
    activations,  # noqa: F401 - registers its entries in OPS
    antialias_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    arithmetic,  # noqa: F401 - registers its entries in OPS
    attention_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    batch_norm_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    cast_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    cholesky_inverse_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    contraction_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    dropout_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    fft_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    float_power_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    fractional_pooling,  # noqa: F401 - registers its entries in TENSOR_OPS
    grid_sample_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    householder_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    index_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    interpolate_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    linalg_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    linear_loss_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    loss_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    lu_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    lu_solve_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    masked_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    math_functions,  # noqa: F401 - registers its entries in OPS
    max_pooling,  # noqa: F401 - registers its entries in TENSOR_OPS
    normalization_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    ormqr_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    partial_view_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    pdist_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    pinv_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    polar_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    pooling_backward_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    prelu_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    qr_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    quantile_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    renorm_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    sample_losses,  # noqa: F401 - registers its entries in TENSOR_OPS
    scatter_extrema,  # noqa: F401 - registers its entries in TENSOR_OPS
    scatter_products,  # noqa: F401 - registers its entries in TENSOR_OPS
    selection_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    shape_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    singular_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
    softmax_internals,  # noqa: F401 - registers its entries in TENSOR_OPS
    special_functions,  # noqa: F401 - registers its entries in OPS
    spectral_ops,  # noqa: F401 - registers its entries in TENSOR_OPS
)
