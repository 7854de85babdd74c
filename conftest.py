"""The repository's own tests use gradoracle's pytest plugin (gradoracle/pytest_plugin.py: the options,
Hypothesis profiles, the verdict tally and the findings registry) like any other project.

Installed (`pip install .`), the plugin is loaded through its `pytest11` entry point, which is named after
the module: pytest then sees it registered already and skips this request, so it never loads twice."""

from hypothesis import settings

import gradoracle.pytest_plugin  # noqa: F401 - registers the profiles: the one loaded below among them
from oracles.core.test_ids import selectable

pytest_plugins = ["gradoracle.pytest_plugin"]

# This repository's default profile (another project installing the plugin keeps its own default);
# `--hypothesis-profile` overrides it.
settings.load_profile("ci")


def pytest_make_parametrize_id(config, val, argname):
    """This repository's ids drawn from strings (error messages, option values) in the characters `-k`
    takes, as its explicit ids are (oracles.core.test_ids); other values keep pytest's ids."""
    return selectable(val) if isinstance(val, str) else None
