"""gradoracle's commands: `python -m gradoracle <command> [options]`; `python -m gradoracle <command> --help`
describes each."""

from __future__ import annotations

import os
import sys

from gradoracle import compare, conventions_doc, coverage, explore, explore_report, sensitivity

COMMANDS = {
    "explore": (explore.main, "search each op's domain for wrong gradients (reports/explore by default)"),
    "explore-report": (explore_report.main, "re-render an explorer report.md from its report.json"),
    "compare": (compare.main, "compare two run reports (--report-json), e.g. before and after a torch upgrade"),
    "sensitivity": (sensitivity.main, "the smallest planted backward error the oracle catches, per op"),
    "conventions-doc": (conventions_doc.main, "write docs/conventions.md from the op tables (--check: is it current?)"),
    "coverage": (coverage.main, "which of the installed torch's OpInfo entries the op tables verify"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: gradoracle <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"gradoracle: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return COMMANDS[name][0](rest)


def run() -> None:
    """`python -m gradoracle` and the installed `gradoracle` console script."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (`... | head`): nothing is lost, say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    run()
