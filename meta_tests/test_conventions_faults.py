"""Fault injection for the convention checks: change any one pinned value, or what torch computes, and
the checks that tests/test_conventions.py runs must report it, naming the op, the point, old and new."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from oracles.core.check import check_case
from oracles.core.pinning import (
    all_pinned,
    approach_case,
    approach_point,
    exact_gradients,
    limit_mismatches,
    pinned_mismatches,
    pinned_named,
    rule_mismatches,
)
from oracles.table.conventions import fmt_value
from oracles.table.ops import OPS


def _mutated(value: float) -> float:
    """A different value, down to the sign of zero: the smallest change a pin must notice."""
    if math.isnan(value):
        return 0.0
    if value == 0:
        return -value  # 0.0 <-> -0.0
    if math.isinf(value):
        return -value
    return value * 2


@pytest.mark.parametrize("pinned", all_pinned(), ids=lambda p: f"{p.id}-{p.convention.dtypes[0]}")
def test_changing_any_pinned_value_is_caught(pinned):
    dtype = pinned.convention.dtypes[0]
    for j in range(len(pinned.convention.torch)):
        torch_values = list(pinned.convention.torch)
        torch_values[j] = _mutated(torch_values[j])
        changed = dataclasses.replace(pinned.convention, torch=tuple(torch_values))
        messages = pinned_mismatches(pinned, dtype, convention=changed)
        assert messages, f"pinning {pinned.id} to {torch_values} went unnoticed"
        pinned_text = ", ".join(fmt_value(v) for v in torch_values)
        pinned_text = f"({pinned_text})" if len(torch_values) > 1 else pinned_text
        assert messages[0].startswith(f"{pinned.op} at {pinned.where()}, {dtype}, ")
        assert f": pinned {pinned_text} (" in messages[0] and ", torch now gives " in messages[0]


def _accurate_tanh(x):
    """tanh whose backward is written without cancellation (what a fix of the saturation finding does)."""
    class Tanh(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return torch.tanh(a)

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            e = torch.exp(-2 * a.abs())
            return grad * 4 * e / (1 + e) ** 2

    return Tanh.apply(x)


# (convention, dtype, a torch that behaves differently there, what it now gives)
INJECTED = [
    ("abs/0", "float64", lambda a: torch.sqrt(a * a), "nan"),
    ("relu/0", "float32", lambda a: torch.clamp_min(a, 0.0), "1"),
    ("clamp/0:lo:0:hi:1", "float64", lambda a, lo, hi: F.hardtanh(a, lo, hi), "0"),
    ("hypot/0:0", "float64", lambda a, b: torch.linalg.vector_norm(torch.stack([a, b])), "(0, 0)"),
    ("tanh/20", "float64", _accurate_tanh, "1.699341702e-17"),
    ("maximum/1:1", "float16", torch.fmax, "(1, 0)"),
]


@pytest.mark.parametrize("pin_id, pin_dtype, call, now", INJECTED, ids=[i[0] for i in INJECTED])
def test_changed_torch_is_caught_at_the_point(pin_id, pin_dtype, call, now):
    pinned = pinned_named(pin_id, pin_dtype)
    [message] = pinned_mismatches(pinned, pin_dtype, call=call)
    old = fmt_value(pinned.convention.torch[0]) if len(pinned.convention.torch) == 1 else "("
    assert message.startswith(f"{pinned.op} at ") and f"pinned {old}" in message
    assert f"torch now gives {now}" in message, message


def test_a_fixed_finding_passes_the_rule_check(monkeypatch):
    """A torch whose clamp follows the rule (hardtanh's 0 at the bound) passes test_follows_rule, so the
    registered strict xfail turns into a failing XPASS."""
    pinned = pinned_named("clamp/0:lo:0:hi:1", "float64")
    assert rule_mismatches(pinned, "float64")
    spelling = dataclasses.replace(pinned.spec.spellings[0], call=lambda a, lo, hi: F.hardtanh(a, lo, hi))
    monkeypatch.setitem(OPS, "clamp", dataclasses.replace(OPS["clamp"], spellings=(spelling,)))
    assert rule_mismatches(pinned, "float64") == []


def test_changed_one_sided_limit_is_caught():
    """sqrt's gradient tends to +inf at 0+; a torch that regularised it (sqrt(x + 1e-30)) must fail the
    approach check, naming the op, the side and the values."""
    pinned = pinned_named("sqrt/0", "float64")
    [approach] = pinned.convention.approaches
    case = approach_case(pinned, approach_point(pinned, approach, 3, "float64"), "float64")
    x = torch.tensor(case.values[0][0], dtype=torch.float64, requires_grad=True)
    torch.sqrt(x + 1e-30).backward()
    messages = limit_mismatches(pinned, approach, 3, "float64", (x.grad.item(),), exact_gradients(case))
    assert messages and messages[0].startswith("sqrt approaching 0 from x0+ (3 ulps")
    assert "pinned one-sided limit of grad x0 is inf" in messages[0]
    # and the real torch passes, with the core oracle agreeing
    outcome = check_case(case)
    assert not outcome.wrong
    assert limit_mismatches(pinned, approach, 3, "float64", (outcome.verdicts[0].torch_value,),
                            exact_gradients(case)) == []
