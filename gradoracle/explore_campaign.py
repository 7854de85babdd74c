"""The explorer as pytest items, one per op x dtype x mode slice, so that pytest-xdist spreads a campaign over
every core (`-n auto`) and over machines (`--tx ssh=...`); the controller merges the slices into the same
report.md, report.json and plots as `python -m gradoracle explore` writes. This module is the plugin (options,
the plan, the merge); gradoracle/explore_campaign_items.py holds the one test each slice runs.

    python -m pytest -p gradoracle.explore_campaign --pyargs gradoracle.explore_campaign_items -n auto \\
        --explore-ops all --explore-dtypes float64,float32 --explore-modes domain,near \\
        --explore-seconds 10 --explore-out reports/campaign

Each slice has the seed the explorer gives it (its place in the plan), wherever it runs. A slice whose
search met a wrong gradient or an oracle problem fails its item (the report holds the case and its
reproducer); inaccuracies and conventions pass, as in the explorer, and are in the report.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gradoracle import explore
from gradoracle.explore_plots import draw as draw_plots
from gradoracle.explore_report import write_reports
from oracles.core.test_ids import selectable
from oracles.numerics.dtypes import FORMATS
from oracles.reports.files import directory_problem
from oracles.table.ops import OPS
from oracles.table.tensor_ops import TENSOR_OPS

SLICE_PROPERTY = "gradoracle_explore_slice"  # a finished slice's JSON, carried to the controller by xdist


def pytest_addoption(parser):
    group = parser.getgroup("gradoracle explorer campaign")
    group.addoption("--explore-ops", default="all", help="op names of either table, comma-separated, or all")
    group.addoption("--explore-dtypes", default="float64,float32", help="dtypes, comma-separated")
    group.addoption("--explore-modes", default="domain,near",
                    help="domain, near, second, second-near, comma-separated")
    group.addoption("--explore-seconds", default="10", help="seconds per slice (default 10)")
    group.addoption("--explore-examples", default=None,
                    help="also end each slice after this many examples (default: its seconds alone)")
    group.addoption("--explore-seed", default="0", help="random seed (default 0)")
    group.addoption("--explore-out", default="reports/explore", help="directory for the merged reports")


def _names(config, option: str, known) -> list[str]:
    text = config.getoption(option)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(known)
    unknown = [n for n in names if n not in known or n == "all"]
    if unknown or not names:
        raise pytest.UsageError(f"{option}: unknown name(s) {', '.join(map(repr, unknown)) or repr(text)}; "
                                f"choose from all, {', '.join(known)}")
    return list(dict.fromkeys(names))


def _number(config, option: str, kind, minimum) -> float:
    text = config.getoption(option)
    try:
        value = kind(text)
    except ValueError:
        raise pytest.UsageError(f"{option}: expected a number, got {text!r}") from None
    if not value >= minimum or value != value or value == float("inf"):
        raise pytest.UsageError(f"{option}: must be at least {minimum} and finite, got {text!r}")
    return value


def pytest_configure(config):
    """Every option checked, and the output directory writable, before any slice runs."""
    if not hasattr(config.option, "explore_ops"):
        return
    ops = _names(config, "--explore-ops", list(OPS) + list(TENSOR_OPS))
    dtypes = _names(config, "--explore-dtypes", list(FORMATS))
    modes = _names(config, "--explore-modes", list(explore.MODES))
    seconds = _number(config, "--explore-seconds", float, 0.1)
    seed = int(_number(config, "--explore-seed", int, 0))
    examples = None if config.getoption("explore_examples") is None else int(_number(config, "--explore-examples",
                                                                                    int, 1))
    out = config.getoption("explore_out")
    problem = directory_problem(out)
    if problem:
        raise pytest.UsageError(f"--explore-out: {out!r} {problem}")
    slices, skipped = explore.plan(ops, dtypes, modes)
    config.gradoracle_campaign = {"ops": ops, "dtypes": dtypes, "modes": modes, "seconds": seconds,
                                  "examples": examples, "seed": seed, "out": Path(out), "slices": slices,
                                  "skipped": skipped, "started": time.time()}
    _DONE.clear()


def pytest_generate_tests(metafunc):
    if "explore_slice" in metafunc.fixturenames:
        slices = metafunc.config.gradoracle_campaign["slices"]
        metafunc.parametrize("explore_slice", list(enumerate(slices, 1)),
                             ids=[selectable(f"{op}-{dtype}-{mode}") for op, dtype, mode in slices])


_DONE: list[dict] = []  # the finished slices this process has seen reported (all of them on the controller)


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == SLICE_PROPERTY:
            _DONE.append(value)


def pytest_sessionfinish(session):
    config = session.config
    campaign = getattr(config, "gradoracle_campaign", None)
    if campaign is None or hasattr(config, "workerinput"):  # the workers' slices reach the controller
        return
    done = sorted(_DONE, key=lambda s: s["plan_index"])
    if not done:
        return
    out = campaign["out"]
    out.mkdir(parents=True, exist_ok=True)
    settings_used = {"ops": campaign["ops"], "dtypes": campaign["dtypes"], "modes": campaign["modes"],
                     "minutes": campaign["seconds"] * len(campaign["slices"]) / 60, "seed": campaign["seed"],
                     "examples_per_slice": campaign["examples"],
                     "seconds_per_slice": campaign["seconds"], "slices_planned": len(campaign["slices"]),
                     "wall_seconds": round(time.time() - campaign["started"], 1),
                     "complete": len(done) == len(campaign["slices"]),
                     "command": _command(campaign)}
    slices = [{k: v for k, v in s.items() if k != "plan_index"} for s in done]
    write_reports(out, slices, settings_used)
    for op, dtype in dict.fromkeys((s["op"], s["dtype"]) for s in slices):
        draw_plots(out, [s for s in slices if (s["op"], s["dtype"]) == (op, dtype)])
    config.pluginmanager.get_plugin("terminalreporter").write_line(
        f"gradoracle explorer campaign: {len(slices)} of {len(campaign['slices'])} slices in {out / 'report.md'} "
        f"and report.json")


def _command(campaign: dict) -> str:
    """The campaign's command for the report (ops, dtypes and modes as planned; -n and --tx are the runner's)."""
    return ("python -m pytest -p gradoracle.explore_campaign --pyargs gradoracle.explore_campaign_items "
            f"--explore-ops {','.join(campaign['ops'])} --explore-dtypes {','.join(campaign['dtypes'])} "
            f"--explore-modes {','.join(campaign['modes'])} --explore-seconds {campaign['seconds']:g} "
            + (f"--explore-examples {campaign['examples']} " if campaign["examples"] else "")
            + f"--explore-seed {campaign['seed']}")
