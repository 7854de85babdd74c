"""The verdict tally: a replayed example counts once, and the unverified guard weighs each program once."""

from __future__ import annotations

from oracles.core.case import GradCase
from oracles.core.expr import Apply, Var
from oracles.core.verdict import ElementVerdict, Verdict, VerdictCounts


def _case(op: str, value: float) -> GradCase:
    return GradCase(Apply(op, (Var(0),), 0), ((),), ((value,),), "float64")


def _verdict(kind: Verdict, torch_value: float = 1.0) -> ElementVerdict:
    return ElementVerdict(0, (), kind, torch_value, 1.0, 0.5, "bound wider than the value" if
                          kind is Verdict.UNVERIFIED else "")


def test_an_example_judging_the_same_as_an_earlier_one_is_a_repeat():
    counts = VerdictCounts()
    case = _case("sin", 1.0)
    for _ in range(3):
        counts.add([_verdict(Verdict.VERIFIED)], case)
    counts.add([_verdict(Verdict.VERIFIED, torch_value=1.5)], case)  # another torch value: judged anew
    assert (counts.examples, counts.repeats, counts.counts[Verdict.VERIFIED]) == (4, 2, 2)
    assert "4 examples (2 repeats); 2 verified" in counts.summary()
    assert VerdictCounts.from_json(counts.to_json()).repeats == 2


def test_a_replayed_program_weighs_once_in_the_unverified_guard():
    counts = VerdictCounts()
    for value in (1.0, 1.5, 2.0, 2.5, 3.0):  # one program in a saturated region, drawn five times
        counts.add([_verdict(Verdict.UNVERIFIED, value)], _case("tanh", value))
    counts.add([_verdict(Verdict.VERIFIED)], _case("sin", 1.0))
    counts.add([_verdict(Verdict.VERIFIED)], _case("exp", 1.0))
    assert counts.unverified_fraction == 5 / 7
    assert counts.program_unverified_fraction == 1 / 3


def test_wrong_elements_and_failing_examples_are_counted_apart():
    """Shrinking replays a failure in many examples: the summary says how many wrong elements in how many
    failing examples, while Hypothesis reports the one it shrank to."""
    counts = VerdictCounts()
    for value in (3.0, 2.0, 1.0):  # a failing example and two shrunk ones, two wrong elements each
        counts.add([_verdict(Verdict.WRONG, value), _verdict(Verdict.WRONG, value)], _case("tanh", value))
    counts.add([_verdict(Verdict.VERIFIED)], _case("sin", 1.0))
    assert (counts.counts[Verdict.WRONG], counts.failing_examples) == (6, 3)
    assert "6 wrong (elements, in 3 failing examples: shrinking replays them)" in counts.summary()
    merged = VerdictCounts.from_json(counts.to_json())
    merged.merge(counts)
    assert merged.failing_examples == 6
    counts.count_wrong_as("some-finding")
    assert counts.failing_examples == 0 and "0 wrong;" in counts.summary()



def test_registered_elements_are_neither_unverified_nor_wrong():
    """An element a registered finding explains has a verdict of its own: it counts in neither the unverified
    fraction nor the wrong elements, and the summary names the finding."""
    counts = VerdictCounts()
    registered = ElementVerdict(0, (), Verdict.REGISTERED, 1.0, 2.0, None, "registered finding some-finding")
    counts.add([registered, _verdict(Verdict.VERIFIED)], _case("tanh", 1.0))
    assert (counts.counts[Verdict.REGISTERED], counts.unverified_fraction) == (1, 0.0)
    assert counts.program_unverified_fraction == 0.0
    assert "registered: some-finding 1" in counts.summary()
    assert VerdictCounts.from_json(counts.to_json()).registered == counts.registered


def test_a_report_from_before_the_registered_verdict_reads_its_findings_as_registered():
    """Reports written when registered findings counted as unverified (the upgrade comparisons in docs/) read
    with those elements moved to the registered verdict, so old and new runs compare alike."""
    old = VerdictCounts()
    old.add([_verdict(Verdict.UNVERIFIED), _verdict(Verdict.VERIFIED)], _case("tanh", 1.0))
    data = old.to_json()
    del data["registered"], data["registered_reasons"]
    data["unverified"] += 2
    data["unverified_reasons"]["registered finding some-finding"] = 2
    counts = VerdictCounts.from_json(data)
    assert (counts.counts[Verdict.UNVERIFIED], counts.counts[Verdict.REGISTERED]) == (1, 2)
    assert counts.reasons == {"bound wider than the value": 1}
    assert counts.registered == {"registered finding some-finding": 2}
