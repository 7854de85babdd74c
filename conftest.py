"""The repository's own tests use gradoracle's pytest plugin (gradoracle/pytest_plugin.py: the options,
Hypothesis profiles, the verdict tally and the findings registry) like any other project.

Installed (`pip install .`), the plugin is loaded through its `pytest11` entry point, which is named after
the module: pytest then sees it registered already and skips this request, so it never loads twice."""

import importlib
import pkgutil

from hypothesis import settings

import gradoracle
import gradoracle.pytest_plugin  # noqa: F401 - registers the profiles: the one loaded below among them
import oracles
import strategies
from oracles.core.test_ids import selectable

pytest_plugins = ["gradoracle.pytest_plugin"]

# This repository's default profile (another project installing the plugin keeps its own default);
# `--hypothesis-profile` overrides it.
settings.load_profile("ci")

# Hypothesis now and then draws a constant found in the code of the project's modules imported so far (its
# "local constants"), so a derandomized test drew other examples depending on which modules earlier tests had
# imported (measured: test_op_gradient[bfloat16-lgamma] after meta_tests/test_compare.py, which imports
# gradoracle.compare, drew 49 verified and 6 unverified elements, alone 38 and 5, in the full run 32 and 28,
# where it failed the unverified guard; CI's draws differed from a local run's the same way). Every module of
# the libraries is imported here, before any test, so that every run draws from the same constants.
for _package in (oracles, strategies, gradoracle):
    for _module in pkgutil.walk_packages(_package.__path__, f"{_package.__name__}."):
        if not _module.name.endswith("__main__"):
            importlib.import_module(_module.name)


def pytest_make_parametrize_id(config, val, argname):
    """This repository's ids drawn from strings (error messages, option values) in the characters `-k`
    takes, as its explicit ids are (oracles.core.test_ids); other values keep pytest's ids."""
    return selectable(val) if isinstance(val, str) else None
