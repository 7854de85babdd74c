"""gradoracle's commands, on top of the oracle library (`oracles`) and the generators (`strategies`):
`gradoracle <command>` (or `python -m gradoracle <command>`); `check_function` for a user's own function;
the pytest plugin (gradoracle.pytest_plugin)."""

from gradoracle.check_function import CheckSummary, check_function

__all__ = ["CheckSummary", "check_function"]
