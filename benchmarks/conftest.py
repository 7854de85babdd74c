"""Collects the benchmarks' medians and prints the per-entry ratio table at the end of the run."""

from __future__ import annotations

import pytest


class BenchTable:
    def __init__(self):
        self.medians: dict[tuple[str, int, int], float] = {}
        self.sensitivity: dict[tuple[str, str], tuple[float | None, bool]] = {}
        self.tensor_medians: dict[tuple[str, str], float] = {}  # (method, program) -> seconds
        self.throughput: dict[tuple[str, str, str], float] = {}  # (property, dtype, part) -> examples per second

    def record_throughput(self, prop: str, dtype: str, part: str, per_second: float) -> None:
        self.throughput[(prop, dtype, part)] = per_second

    def throughput_lines(self) -> list[str]:
        out = ["property                                    dtype   | examples/s | draws alone/s | share of drawing"]
        for prop, dtype in sorted({(p, d) for p, d, _ in self.throughput}):
            whole, draws = (self.throughput.get((prop, dtype, part)) for part in ("draw and check", "draw only"))
            share = f"{whole / draws:16.0%}" if whole and draws else f"{'-':>16}"
            out.append(f"{prop[:43]:43s} {dtype:7s} | {whole or 0:10.1f} | {draws or 0:13.1f} | {share}")
        return out

    def record_tensor(self, method: str, program: str, median: float) -> None:
        self.tensor_medians[(method, program)] = median

    def tensor_lines(self) -> list[str]:
        out = ["program (ours: cold / warm)               | ours/floor | gradcheck slow/ours | gradcheck fast/ours"]
        for program in sorted({p for _, p in self.tensor_medians}):
            cold, warm, floor, slow, fast = (self.tensor_medians.get((m, program)) for m in (
                "gradoracle", "gradoracle_warm", "torch_forward_backward", "gradcheck_slow", "gradcheck_fast"))

            def ratio(a, b):
                return f"{a / b:10.3g}" if a and b else f"{'-':>10}"

            for label, ours in (("cold", cold), ("warm", warm)):
                out.append(f"{program[:35]:35s} {label} | {ratio(ours, floor)} | {ratio(slow, ours):>19} | "
                           f"{ratio(fast, ours):>19}")
        return out

    def record_sensitivity(self, checker: str, dtype: str, smallest: float | None, false_alarm: bool) -> None:
        self.sensitivity[(checker, dtype)] = (smallest, false_alarm)

    def sensitivity_lines(self) -> list[str]:
        out = ["checker         dtype   | smallest planted rel. error caught (every case) | false alarm at 0"]
        for (checker, dtype), (smallest, alarm) in sorted(self.sensitivity.items()):
            if alarm:
                caught = "meaningless: fails on correct gradients"
            else:
                caught = f"{smallest:.0e}" if smallest is not None else "none of 1e-1..1e-15"
            out.append(f"{checker:15s} {dtype:7s} | {caught:>47s} | {'YES' if alarm else 'no'}")
        return out

    def record(self, method: str, dtype: str, nodes: int, elements: int, median: float) -> None:
        self.medians[(method, dtype, nodes, elements)] = median

    def lines(self) -> list[str]:
        keys = sorted({(d, n, e) for _, d, n, e in self.medians}, key=lambda k: (k[0] != "float64", k[1:]))
        out = ["dtype   nodes elements | per .grad entry: ours | ours/floor | gradcheck slow/ours | "
               "gradcheck fast/ours"]
        for dtype, nodes, elements in keys:
            ours, floor, slow, fast = (self.medians.get((m, dtype, nodes, elements)) for m in (
                "gradoracle", "torch_forward_backward", "gradcheck_slow", "gradcheck_fast"))

            def ratio(a, b):
                return f"{a / b:10.3g}" if a and b else f"{'-':>10}"

            per_entry = f"{ours / elements * 1e6:9.1f} us" if ours else f"{'-':>12}"
            out.append(f"{dtype:7s} {nodes:5d} {elements:8d} | {per_entry} | {ratio(ours, floor)} | "
                       f"{ratio(slow, ours)} | {ratio(fast, ours)}")
        return out


_TABLE = BenchTable()


@pytest.fixture(scope="session")
def bench_table():
    return _TABLE


def pytest_terminal_summary(terminalreporter):
    if _TABLE.medians:
        terminalreporter.section("gradoracle vs gradcheck (medians of one run)")
        for line in _TABLE.lines():
            terminalreporter.write_line(line)
    if _TABLE.tensor_medians:
        terminalreporter.section("tensor ops: gradoracle vs gradcheck (float64, medians of one run)")
        for line in _TABLE.tensor_lines():
            terminalreporter.write_line(line)
    if _TABLE.throughput:
        terminalreporter.section("examples per second of the main properties (one process, medians of 3 runs)")
        for line in _TABLE.throughput_lines():
            terminalreporter.write_line(line)
    if _TABLE.sensitivity:
        terminalreporter.section("sensitivity: planted backward errors (20-node chains, 50 points, 3 seeds; "
                                 "tensor ops: 5 programs on 4 x 5 inputs)")
        for line in _TABLE.sensitivity_lines():
            terminalreporter.write_line(line)
