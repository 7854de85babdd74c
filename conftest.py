"""pytest configuration: Hypothesis profiles, the dtype/device/examples options, the report header,
torch's RNG under Hypothesis's control, and the verdict tally shown at the end of the run."""

from __future__ import annotations

import platform
from collections import defaultdict

import hypothesis
import pytest
import sympy
import torch
from hypothesis import HealthCheck, settings

from oracles.dtypes import FORMATS
from oracles.verdict import Verdict, VerdictCounts

# ------------------------------------------------------------------ Hypothesis profiles
_COMMON = dict(deadline=None, print_blob=True)  # torch's first call of a kernel is slow; machines are noisy
settings.register_profile("dev", max_examples=10, **_COMMON)
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.load_profile("ci")  # the default; `--hypothesis-profile` overrides it

# A test whose points are mostly unverified is a failure of the strategy, not a pass.
MAX_UNVERIFIED_FRACTION = 0.5


class _TorchRandom:
    """torch's global RNG in the shape `hypothesis.register_random` wants, so every example starts
    from a seed Hypothesis controls and replays."""

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def getstate(self):
        return torch.get_rng_state()

    def setstate(self, state) -> None:
        torch.set_rng_state(state)


_TORCH_RANDOM = _TorchRandom()  # register_random keeps a weak reference: hold it here
hypothesis.register_random(_TORCH_RANDOM)


# ------------------------------------------------------------------ options
def pytest_addoption(parser):
    group = parser.getgroup("gradoracle")
    group.addoption("--dtypes", default=",".join(FORMATS),
                    help=f"comma-separated dtypes to verify (default: all of {', '.join(FORMATS)})")
    group.addoption("--device", default="cpu", help="torch device to run on: cpu (default) or cuda")
    group.addoption("--examples", default=None,
                    help="override the profile's max_examples for every property test (a positive integer)")


def _parse_dtypes(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise pytest.UsageError(
            f"--dtypes: unknown dtype(s) {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from {', '.join(FORMATS)}")
    return names


def _parse_device(text: str) -> str:
    if text == "cpu":
        return text
    if text == "cuda":
        if not torch.cuda.is_available():
            raise pytest.UsageError("--device cuda: this torch has no usable CUDA device "
                                    f"(torch {torch.__version__}, cuda build {torch.version.cuda})")
        return text
    raise pytest.UsageError(f"--device: unknown device {text!r}; choose cpu or cuda")


def _parse_examples(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise pytest.UsageError(f"--examples: expected a positive integer, got {text!r}")
    return value


@pytest.hookimpl(trylast=True)  # after Hypothesis has loaded the profile chosen on the command line
def pytest_configure(config):
    config.gradoracle_dtypes = _parse_dtypes(config.getoption("dtypes"))
    config.gradoracle_device = _parse_device(config.getoption("device"))
    examples = _parse_examples(config.getoption("examples"))
    if examples is not None:
        settings.register_profile("with-examples", parent=settings(), max_examples=examples)
        settings.load_profile("with-examples")
    config.gradoracle_counts = defaultdict(VerdictCounts)


def pytest_report_header(config):
    profile = settings._current_profile  # noqa: SLF001 - Hypothesis exposes no public getter
    return [
        f"gradoracle: torch {torch.__version__} (cuda {torch.version.cuda}), sympy {sympy.__version__}, "
        f"hypothesis {hypothesis.__version__}, python {platform.python_version()}",
        f"gradoracle: profile {profile!r} (max_examples={settings().max_examples}), "
        f"dtypes {','.join(config.gradoracle_dtypes)}, device {config.gradoracle_device}",
    ]


def pytest_generate_tests(metafunc):
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", metafunc.config.gradoracle_dtypes)


@pytest.fixture
def device(request) -> str:
    return request.config.gradoracle_device


@pytest.fixture
def verdict_log(request):
    """Tallies verdicts over all examples of one test; fails the test if most points were unverified."""
    counts = VerdictCounts()
    yield counts
    request.config.gradoracle_counts[request.node.originalname].counts.update(counts.counts)
    request.config.gradoracle_counts[request.node.originalname].reasons.update(counts.reasons)
    if counts.total and counts.unverified_fraction > MAX_UNVERIFIED_FRACTION:
        pytest.fail(f"{counts.unverified_fraction:.0%} of gradient elements were unverified "
                    f"(limit {MAX_UNVERIFIED_FRACTION:.0%}): {counts.summary()}", pytrace=False)


# verdict_log accumulates across the examples of one test on purpose.
FIXTURE_HEALTH = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def pytest_terminal_summary(terminalreporter, config):
    tallies = getattr(config, "gradoracle_counts", {})
    if not tallies:
        return
    terminalreporter.section("gradoracle verdicts (gradient elements)")
    total = VerdictCounts()
    for test, counts in sorted(tallies.items()):
        terminalreporter.write_line(f"{test}: {counts.summary()}")
        total.counts.update(counts.counts)
        total.reasons.update(counts.reasons)
    terminalreporter.write_line(
        f"all: {total.summary()} (unverified {total.unverified_fraction:.2%}, "
        f"wrong {total.counts[Verdict.WRONG]})")
