"""Tensor programs (reductions, scans, softmax, matmul, views) against exact per-element Jacobians."""
