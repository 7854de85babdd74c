"""What every check ends with, for either kind of case: an `Outcome` (the verdicts of one example and what
a report about them needs), one failure message, and `assert_gradients_match`, which tallies the verdicts
in the test's `verdict_log` (telling Hypothesis why points were unverified, for
--hypothesis-show-statistics) and fails with one readable report if any element is wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import event

from oracles.core.case import Case
from oracles.core.verdict import ElementVerdict, Verdict, VerdictCounts, describe

Note = Callable[[], str]  # built only for a failure report: a SymPy derivation is too slow for every example


@dataclass
class Outcome:
    """One example's verdicts. `call` says what torch was asked when it is more than `y.sum().backward()` of
    the case (`torch.func.jvp`, `backward(inputs=[x1])`, ...); the notes are supplied by the case kind: the
    exact derivative (elementwise cases) and a script reproducing exactly what ran (where there is one)."""

    case: Case
    verdicts: list[ElementVerdict]
    device: str = "cpu"
    call: str = ""
    derivative_note: Note | None = None
    reproducer: Note | None = None

    @property
    def wrong(self) -> list[ElementVerdict]:
        return [v for v in self.verdicts if v.verdict is Verdict.WRONG]


def failure_message(outcome: Outcome, limit: int = 8) -> str:
    """One line naming the program, the dtype and the call, then one line per wrong element (up to `limit`)."""
    wrong = outcome.wrong
    head = f"{len(wrong)} gradient element(s) wrong for y = {outcome.case.source} ({outcome.case.dtype})"
    lines = [head + (f": {outcome.call}" if outcome.call else "")]
    lines += ["  " + describe(v, outcome.case) for v in wrong[:limit]]
    if len(wrong) > limit:
        lines.append(f"  ... and {len(wrong) - limit} more")
    return "\n".join(lines)


def failure_notes(outcome: Outcome) -> list[str]:
    """The exact derivative, the inputs and the reproducer, in that order (each an exception note)."""
    notes = [outcome.derivative_note()] if outcome.derivative_note else []
    notes.append("inputs: " + outcome.case.inputs_text())
    if outcome.reproducer:
        notes.append("Reproduce with:\n" + outcome.reproducer())
    return notes


def assert_gradients_match(outcome: Outcome, verdict_log: VerdictCounts | None = None) -> None:
    """Tally the outcome in `verdict_log` (None: a step whose verdicts the test tallies with others), then
    raise one AssertionError if any element is wrong."""
    __tracebackhide__ = True
    if verdict_log is not None:
        verdict_log.add(outcome.verdicts, outcome.case)
        for reason in sorted({v.reason for v in outcome.verdicts if v.verdict is Verdict.UNVERIFIED}):
            event(f"some elements unverified: {reason}")
        for reason in sorted({v.reason for v in outcome.verdicts if v.verdict is Verdict.REGISTERED}):
            event(f"some elements registered: {reason}")
    if outcome.wrong:
        error = AssertionError(failure_message(outcome))
        for note in failure_notes(outcome):
            error.add_note(note)
        raise error
