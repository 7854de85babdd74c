"""gradoracle's pytest plugin: Hypothesis profiles, the dtype/device/examples/report options, the report
header, torch's RNG under Hypothesis's control, registered findings as strict xfails, and the verdict tally
shown at the end of the run.

Loaded by the `pytest11` entry point once gradoracle is installed, and by the repository's conftest.py when
run from a checkout. Tests get `dtype` (parametrized over --dtypes unless the test parametrizes it itself),
`device`, `dtypes` and `verdict_log`; `FIXTURE_HEALTH`, `scaled` and `at_points` are decorators for them."""

from __future__ import annotations

import platform
from collections import Counter, defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

import hypothesis
import pytest
import sympy
import torch
from hypothesis import HealthCheck, settings

from oracles.core.stepwise import use_registered_regions
from oracles.core.test_ids import selectable
from oracles.core.unsupported import PREFIX, skipping_missing_kernels
from oracles.core.verdict import Verdict, VerdictCounts
from oracles.numerics.dtypes import FORMATS
from oracles.reports import run_report
from oracles.reports.findings import RegistryError, apply_findings, registered_finding_at
from oracles.reports.findings import load as load_findings
from oracles.table.ops import OPS
from oracles.table.tensor_ops import TENSOR_OPS

# ------------------------------------------------------------------ Hypothesis profiles
_COMMON = dict(deadline=None, print_blob=True)  # torch's first call of a kernel is slow; machines are noisy
settings.register_profile("dev", max_examples=10, **_COMMON)
CI_EXAMPLES = 40  # the default profile's examples per property test
settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
PROFILES = ("dev", "ci", "thorough")

# A test whose points are mostly unverified is a failure of the strategy, not a pass (each distinct program
# weighs once: VerdictCounts.program_unverified_fraction).
MAX_UNVERIFIED_FRACTION = 0.5


class _TorchRandom:
    """torch's global RNGs in the shape `hypothesis.register_random` wants, so every example starts
    from a seed Hypothesis controls and replays.

    Not `torch.manual_seed`: with CUDA (or XPU, MTIA) not yet initialised it queues a lazy call per
    backend, each with a formatted stack trace, on every example: a third of an elementwise example's
    time, measured, and a queue that only grows. CUDA's generators are seeded once CUDA is running."""

    def seed(self, seed: int) -> None:
        torch.default_generator.manual_seed(seed)
        if torch.cuda.is_initialized():
            torch.cuda.manual_seed_all(seed)

    def getstate(self):
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return torch.get_rng_state(), cuda

    def setstate(self, state) -> None:
        cpu, cuda = state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


_TORCH_RANDOM = _TorchRandom()  # register_random keeps a weak reference: hold it here
hypothesis.register_random(_TORCH_RANDOM)


_CONFIG: dict = {}  # the session's config, for hooks that are not handed it (pytest_runtest_logreport)
_RUNNING: ContextVar = ContextVar("gradoracle_running_test", default=None)  # the test item being called


@contextmanager
def unrecorded():
    """Verdicts of checks expected to fail (a planted error the self-tests must catch) stay out of the run's
    tally, as the suite's other self-tests keep theirs out."""
    running = _RUNNING.set(None)
    try:
        yield
    finally:
        _RUNNING.reset(running)


def record(check: str, dtype: str, counts: VerdictCounts) -> None:
    """Tally verdicts gathered without the verdict_log fixture (check_function called inside a test) in the
    run's summary and report, under the running test; outside pytest, nothing."""
    item = _RUNNING.get()
    if item is not None:
        item.config.gradoracle_counts[(item.originalname, check, dtype)].merge(counts)

# ------------------------------------------------------------------ options
class _CheckedFirst:
    """Checks that must run before any other plugin's configure: Hypothesis's own loads the profile named
    by --hypothesis-profile and turns an unknown name into an INTERNALERROR."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        profile = config.getoption("hypothesis_profile", None)
        if profile is not None:
            try:
                settings.get_profile(profile)
            except hypothesis.errors.InvalidArgument:
                raise pytest.UsageError(f"--hypothesis-profile: unknown profile {profile!r}; choose from "
                                        f"{', '.join(PROFILES)}") from None
        try:
            registry = load_findings()
        except RegistryError as exc:
            raise pytest.UsageError(f"findings.toml: {exc}") from None
        use_registered_regions(partial(registered_finding_at, registry))


def pytest_addoption(parser, pluginmanager):
    pluginmanager.register(_CheckedFirst(), "gradoracle-checked-first")
    group = parser.getgroup("gradoracle")
    group.addoption("--dtypes", default=",".join(FORMATS),
                    help=f"comma-separated dtypes to verify (default: all of {', '.join(FORMATS)})")
    group.addoption("--device", default="cpu",
                    help="torch device to run on: cpu (default), cuda, cuda:N, mps or xpu where present")
    group.addoption("--examples", default=None,
                    help="override the profile's max_examples for every property test (a positive integer)")
    group.addoption("--compile", action="store_true",
                    help="run the torch.compile properties (tests/test_compile.py) with the profile's examples "
                         f"(default: {COMPILE_SUBSET} each, every compile costs seconds)")
    group.addoption("--report-json", default=None, metavar="PATH",
                    help="write the run report (per check x op x dtype: examples, verdicts, worst errors, "
                         "failures with reproducers, versions) as JSON to PATH")


def _parse_dtypes(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise pytest.UsageError(
            f"--dtypes: unknown dtype(s) {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from {', '.join(FORMATS)}")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # every test would run twice under the same id, and registered findings would look stale
        raise pytest.UsageError(f"--dtypes: {', '.join(map(repr, twice))} given more than once in {text!r}")
    return names


def _parse_device(text: str) -> str:
    """cpu, or an accelerator this torch can use: cuda, cuda:N, mps, xpu (each checked, never assumed)."""
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise pytest.UsageError(f"--device: unknown device {text!r}; choose cpu, cuda, cuda:N, mps or xpu")
    if device.type == "cpu":
        return text
    backend = getattr(torch, device.type, None) if device.type != "mps" else torch.backends.mps
    if backend is None or not backend.is_available():
        raise pytest.UsageError(f"--device {text}: this torch has no usable {device.type} device "
                                f"(torch {torch.__version__}, cuda build {torch.version.cuda})")
    if device.index is not None and device.type != "mps" and device.index >= backend.device_count():
        raise pytest.UsageError(f"--device {text}: there are {backend.device_count()} {device.type} device(s)")
    return text


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
    config.addinivalue_line("markers", "unverified_by_design(reason): the property may leave most gradient "
                            "elements unverified, for the stated reason (the majority guard is waived; wrong "
                            "verdicts still fail)")
    config.gradoracle_dtypes = _parse_dtypes(config.getoption("dtypes"))
    config.gradoracle_device = _parse_device(config.getoption("device"))
    examples = _parse_examples(config.getoption("examples"))
    if examples is not None:
        settings.register_profile("with-examples", parent=settings(), max_examples=examples)
        settings.load_profile("with-examples")
    config.gradoracle_counts = defaultdict(VerdictCounts)  # (check, op, dtype) -> tally
    config.gradoracle_test_outcomes = {}  # node id -> failed / xfailed / xpassed (strict)
    config.gradoracle_unsupported = Counter()  # kernel the installed torch lacks -> tests skipped for it
    _CONFIG["config"] = config
    report_path = config.getoption("report_json")
    if report_path is not None:
        config.gradoracle_report_path = run_report.validate_path(report_path)


def pytest_report_header(config):
    profile = settings._current_profile  # noqa: SLF001 - Hypothesis exposes no public getter
    return [
        f"gradoracle: torch {torch.__version__} (cuda {torch.version.cuda}), sympy {sympy.__version__}, "
        f"hypothesis {hypothesis.__version__}, python {platform.python_version()}",
        f"gradoracle: profile {profile!r} (max_examples={settings().max_examples}), "
        f"dtypes {','.join(config.gradoracle_dtypes)}, device {config.gradoracle_device}",
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Registered findings (findings.toml) become strict xfails; registry ids matching no test warn. A test
    that meets an op the installed torch has no kernel for is skipped as unsupported (oracles.core.unsupported;
    a property test's inner test is wrapped, so that Hypothesis does not shrink it)."""
    apply_findings(items, config)
    for item in items:
        test = getattr(item, "obj", None)
        if not callable(test):
            continue
        inner = getattr(getattr(test, "hypothesis", None), "inner_test", None)
        if inner is not None:
            if not getattr(inner, "skips_missing_kernels", False):  # shared by a test's parametrizations
                test.hypothesis.inner_test = skipping_missing_kernels(inner)
        elif not getattr(test, "skips_missing_kernels", False):
            item.obj = skipping_missing_kernels(test)


_NO_SHRINK = tuple(phase for phase in hypothesis.Phase if phase is not hypothesis.Phase.shrink)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outside Hypothesis's own wrapper of this hook
def pytest_runtest_call(item):
    """The settings of a property test are put back after every call. Hypothesis's pytest plugin wraps the
    settings of a parametrized test in a new child on every call and never unwraps them, and the settings
    live on the test function that all parametrizations share: the chain grows by one per call until
    reading a setting overflows Python's recursion limit (measured: RecursionError in the ~280th
    test_tensor_op_gradient case of a worker).

    A registered finding's property test also runs without Hypothesis's shrink phase: its failure is known
    and only has to happen (a strict xfail); shrinking it took up to 33 s a test, measured. Hypothesis has
    no public per-call setting for either; if its private attribute goes, tests just shrink.

    The running test is known meanwhile, so check_function's verdicts join the run's tally (`record`)."""
    running = _RUNNING.set(item)
    test = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if current is not None and getattr(item, "registered_finding", None) is not None:
        test._hypothesis_internal_use_settings = settings(current, phases=_NO_SHRINK)
    try:
        yield
    finally:
        _RUNNING.reset(running)
        if current is not None:
            test._hypothesis_internal_use_settings = current


def pytest_runtest_logreport(report):
    """For the run report: every failing test, and the outcome of every registered finding's test (a
    strict xfail that passes means torch changed there). Under xdist this runs on the controller."""
    config = _CONFIG.get("config")
    if config is None or hasattr(config, "workerinput"):
        return
    outcomes = config.gradoracle_test_outcomes
    if report.skipped and isinstance(report.longrepr, tuple) and PREFIX in report.longrepr[2]:
        config.gradoracle_unsupported[report.longrepr[2].split(PREFIX, 1)[1]] += 1
    if hasattr(report, "wasxfail") and report.skipped:
        outcomes[report.nodeid] = "xfailed"
    elif report.failed:
        strict_xpass = "XPASS(strict)" in str(report.longrepr)
        outcomes[report.nodeid] = "xpassed (strict)" if strict_xpass else "failed"


def _parametrizes(metafunc, name: str) -> bool:
    """Whether the test chose its own values of `name` (another project's test with an argument `dtype`)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc):
    if "dtype" in metafunc.fixturenames and not _parametrizes(metafunc, "dtype"):
        metafunc.parametrize("dtype", metafunc.config.gradoracle_dtypes)
    if "point_dtype" in metafunc.fixturenames:
        pairs = [(label, d) for label, only in metafunc.function.points
                 for d in metafunc.config.gradoracle_dtypes if only is None or d in only]
        metafunc.parametrize("point_dtype", pairs, ids=[selectable(f"{label}-{d}") for label, d in pairs])


def at_points(*labels: str | tuple[str, tuple[str, ...]]):
    """For a test pinning torch at named points, in every dtype of the run: its `point_dtype` argument is
    (label, dtype) and its ids read `test[label-dtype]` (in the characters `-k` takes: oracles.core.test_ids),
    the form findings.toml registers. A label given
    as (label, dtypes) runs in those of the run's dtypes only: a point that means something in one
    dtype's range (2^300 is inf in float32)."""

    def mark(test):
        test.points = [(label, None) if isinstance(label, str) else (label[0], tuple(label[1]))
                       for label in labels]
        return test

    return mark


@pytest.fixture
def device(request) -> str:
    return request.config.gradoracle_device


@pytest.fixture
def dtypes(request) -> list[str]:
    """The run's dtypes (--dtypes), for tests whose property does not depend on the dtype: they draw one
    per example (`data.draw(st.sampled_from(dtypes), label="dtype")`) instead of running once per dtype."""
    return request.config.gradoracle_dtypes


def _tally_key(item) -> tuple[str, str, str]:
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    return item.originalname, str(params.get("op", "-")), str(params.get("dtype", "-"))


def _blind_spot(node) -> str | None:
    """The reason an op's entry gives for this property test being mostly unverified in its dtype, or the test
    itself for all its parametrizations (`unverified_by_design`), if any."""
    by_design = node.get_closest_marker("unverified_by_design")
    if by_design is not None:
        return by_design.args[0]
    params = getattr(getattr(node, "callspec", None), "params", {})
    op, dtype = params.get("op"), params.get("dtype")
    table = TENSOR_OPS if node.originalname.startswith("test_tensor_op") else OPS
    entry = table.get(op) if isinstance(op, str) else None
    return entry.blind_spot(node.originalname, dtype) if entry is not None else None


@pytest.fixture
def verdict_log(request):
    """Tallies verdicts over all examples of one test; fails the test if most points were unverified."""
    counts = VerdictCounts()
    yield counts
    finding = getattr(request.node, "registered_finding", None)
    if finding is not None:  # a registered finding's strict xfail: what it judged wrong is that finding
        counts.count_wrong_as(finding)
    request.config.gradoracle_counts[_tally_key(request.node)].merge(counts)
    if counts.total and counts.program_unverified_fraction > MAX_UNVERIFIED_FRACTION and not _blind_spot(request.node):
        pytest.fail(f"{counts.program_unverified_fraction:.0%} of gradient elements were unverified, averaged over "
                    f"the distinct programs (limit {MAX_UNVERIFIED_FRACTION:.0%}): {counts.summary()}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the (shrunk) failure text, reproducer included, for the run report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and "verdict_log" in getattr(item, "fixturenames", ()):
        error = call.excinfo.value
        text = "\n".join([str(error), *getattr(error, "__notes__", [])])
        item.config.gradoracle_counts[_tally_key(item)].add_failure(text)


# pytest-xdist: each worker sends its tallies to the controller, which reports for the whole run.
def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workeroutput"):
        config.workeroutput["gradoracle_counts"] = run_report.tallies_to_json(config.gradoracle_counts)
    elif getattr(config, "gradoracle_report_path", None):
        run_report.write(config.gradoracle_report_path, config.gradoracle_counts, config)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: without xdist installed it does not exist
def pytest_testnodedown(node, error):
    data = getattr(node, "workeroutput", {}).get("gradoracle_counts")
    if data:
        for key, counts in run_report.tallies_from_json(data).items():
            node.config.gradoracle_counts[key].merge(counts)


def FIXTURE_HEALTH(test):  # noqa: N802 - reads as a decorator constant
    """Allow function-scoped fixtures in a @given test: verdict_log accumulates across its examples on
    purpose. Built when the test module is imported (after the profile is loaded), not here: a settings
    object made at the plugin's import would freeze the default profile's max_examples."""
    return settings(suppress_health_check=[HealthCheck.function_scoped_fixture])(test)


def scaled_examples(examples: int) -> int:
    """`examples` under the ci profile, scaled with the active one (dev 10, thorough 1000, --examples N):
    the expensive properties run fewer examples than the cheap ones, in every profile. Read when called:
    at a test module's import, after the profile and --examples are applied."""
    return max(1, examples * settings().max_examples // CI_EXAMPLES)


COMPILE_SUBSET = 2  # examples per torch.compile property without --compile


def compiled_examples(examples: int) -> settings:
    """The settings of a torch.compile property: `examples` scaled with the profile under --compile, else
    COMPILE_SUBSET examples (each compiles a new program: 2-3 s with inductor on a CPU, measured)."""
    config = _CONFIG.get("config")
    full = config is not None and config.getoption("compile")
    return settings(max_examples=scaled_examples(examples) if full else COMPILE_SUBSET,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def scaled(examples: int) -> settings:
    """FIXTURE_HEALTH with `scaled_examples(examples)` examples, as a decorator."""
    return settings(max_examples=scaled_examples(examples),
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def pytest_terminal_summary(terminalreporter, config):
    unsupported = getattr(config, "gradoracle_unsupported", {})
    if unsupported:
        terminalreporter.section("unsupported by this torch (tests skipped)")
        for kernel, tests in unsupported.most_common():
            terminalreporter.write_line(f"{kernel}: {tests} test{'s' if tests != 1 else ''}")
    tallies = getattr(config, "gradoracle_counts", {})
    if not tallies:
        return
    terminalreporter.section("gradoracle verdicts (gradient elements)")
    by_check: dict[str, VerdictCounts] = defaultdict(VerdictCounts)
    for (check, _op, _dtype), counts in tallies.items():
        by_check[check].merge(counts)
    total = VerdictCounts()
    for check, counts in sorted(by_check.items()):
        terminalreporter.write_line(f"{check}: {counts.summary()}")
        total.merge(counts)
    terminalreporter.write_line(
        f"all: {total.summary()} (unverified {total.unverified_fraction:.2%}, registered "
        f"{total.counts[Verdict.REGISTERED] / max(total.total, 1):.2%}, wrong {total.counts[Verdict.WRONG]})")
    path = getattr(config, "gradoracle_report_path", None)
    if path:
        terminalreporter.write_line(f"run report written to {path}")
