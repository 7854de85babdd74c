"""What a property test does with its verdicts, in one place: tally them (and tell Hypothesis why points
were unverified, for --hypothesis-show-statistics), and fail with one readable report if any is wrong.
`case` is a GradCase or a TensorCase: anything with source, dtype, shapes and values."""

from __future__ import annotations

from hypothesis import event

from oracles.core.report import describe
from oracles.core.verdict import ElementVerdict, Verdict


def record(verdict_log, verdicts: list[ElementVerdict], case) -> None:
    """Tally an example's verdicts in the test's `verdict_log` fixture; one Hypothesis event per reason
    some elements went unverified."""
    verdict_log.add(verdicts, case)
    for reason in sorted({v.reason for v in verdicts if v.verdict is Verdict.UNVERIFIED}):
        event(f"some elements unverified: {reason}")


def wrong_report(case, verdicts: list[ElementVerdict], context: str, limit: int = 8) -> str | None:
    """A failure message naming every wrong element (up to `limit`) and the inputs, or None."""
    wrong = [v for v in verdicts if v.verdict is Verdict.WRONG]
    if not wrong:
        return None
    lines = [f"{len(wrong)} gradient element(s) wrong: {context}"] + ["  " + describe(v, case) for v in wrong[:limit]]
    if len(wrong) > limit:
        lines.append(f"  ... and {len(wrong) - limit} more")
    lines.append("inputs: " + ", ".join(f"x{i}: shape {shape} values {list(values)}"
                                        for i, (shape, values) in enumerate(zip(case.shapes, case.values))))
    return "\n".join(lines)


def assert_none_wrong(case, verdicts: list[ElementVerdict], context: str, reproducer: str | None = None) -> None:
    """Raise one AssertionError (`wrong_report`) if any element is wrong; `reproducer` goes in a note."""
    __tracebackhide__ = True
    message = wrong_report(case, verdicts, context)
    if message is not None:
        error = AssertionError(message)
        if reproducer:
            error.add_note("Reproduce with:\n" + reproducer)
        raise error


def record_and_check(verdict_log, verdicts: list[ElementVerdict], case, context: str,
                     reproducer: str | None = None) -> None:
    """`record`, then `assert_none_wrong`: what every property test ends with."""
    __tracebackhide__ = True
    record(verdict_log, verdicts, case)
    assert_none_wrong(case, verdicts, context, reproducer)
