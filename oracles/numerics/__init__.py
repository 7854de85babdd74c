"""Floating-point formats, the rounding model and exact evaluation in arb."""
