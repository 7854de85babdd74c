"""Collects the benchmarks' medians and prints the per-entry ratio table at the end of the run."""

from __future__ import annotations

import pytest


class BenchTable:
    def __init__(self):
        self.medians: dict[tuple[str, int, int], float] = {}

    def record(self, method: str, nodes: int, elements: int, median: float) -> None:
        self.medians[(method, nodes, elements)] = median

    def lines(self) -> list[str]:
        keys = sorted({(n, e) for _, n, e in self.medians})
        out = ["nodes elements | per .grad entry: ours | ours/floor | gradcheck slow/ours | gradcheck fast/ours"]
        for nodes, elements in keys:
            get = lambda m: self.medians.get((m, nodes, elements))  # noqa: E731
            ours, floor = get("gradoracle"), get("torch_forward_backward")
            slow, fast = get("gradcheck_slow"), get("gradcheck_fast")

            def ratio(a, b):
                return f"{a / b:10.3g}" if a and b else f"{'-':>10}"

            per_entry = f"{ours / elements * 1e6:9.1f} us" if ours else f"{'-':>12}"
            out.append(f"{nodes:5d} {elements:8d} | {per_entry} | {ratio(ours, floor)} | "
                       f"{ratio(slow, ours)} | {ratio(fast, ours)}")
        return out


_TABLE = BenchTable()


@pytest.fixture(scope="session")
def bench_table():
    return _TABLE


def pytest_terminal_summary(terminalreporter):
    if _TABLE.medians:
        terminalreporter.section("gradoracle vs gradcheck (float64, medians of one run)")
        for line in _TABLE.lines():
            terminalreporter.write_line(line)
