"""Pictures of an explorer run: per op and dtype, torch's gradient error against each argument, in ulps and
as a fraction of the rounding model's bound, from the samples every slice keeps (report.json), so that where
along the axis torch loses accuracy shows at a glance (a table only shows the worst point).

The argument axis is a signed logarithmic scale from the dtype's smallest subnormal up to its largest finite
value on both sides (a tensor op's axis is its case's largest |input|); an infinite error is drawn at the top
edge as a triangle. Samples inside a registered finding's region (findings.toml) are ringed in red. PNG and
SVG go to plots/ beside report.md, each written atomically; matplotlib is optional (`gradoracle[plots]`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from oracles.numerics.dtypes import format_named
from oracles.reports.files import write_bytes_atomically

try:
    from matplotlib.figure import Figure
except ImportError:  # the plots are optional: the reports say why they are missing
    Figure = None

CLASS_COLOURS = {"ok": "#9e9e9e", "range": "#8e44ad", "convention": "#2e86c1", "inaccurate": "#e67e22",
                 "wrong": "#c0392b", "oracle": "#000000"}
FORMATS = ("png", "svg")


def unavailable() -> str | None:
    """Why no plots can be drawn here, or None."""
    if Figure is None:
        return "matplotlib is not installed (pip install 'gradoracle[plots]')"
    return None


def plot_name(op: str, dtype: str) -> str:
    return f"{op}-{dtype}"


def _number(value) -> float:
    return float(value) if isinstance(value, str) else value  # 'inf' was written as a string


def _rows(slices: list[dict]) -> list[dict]:
    rows = []
    for s in slices:
        columns = s["samples"]["columns"]
        rows += [dict(zip(columns, row), mode=s["mode"]) for row in s["samples"]["rows"]]
    return rows


def draw(out: Path, slices: list[dict]) -> list[Path]:
    """The figure of one op and dtype from its slices (report.json's form), as PNG and SVG in out/plots/;
    the paths written (none when matplotlib is missing or no slice kept a sample)."""
    rows = _rows(slices)
    if Figure is None or not rows:
        return []
    op, dtype = slices[0]["op"], slices[0]["dtype"]
    tensor_op = slices[0].get("x_is") == "largest |input|"
    n_args = max(len(r["x"]) for r in rows)
    fig = Figure(figsize=(4.2 * n_args + 1, 6.4), layout="constrained")
    axes = fig.subplots(2, n_args, squeeze=False, sharex="col")
    fmt = format_named(dtype)
    for arg in range(n_args):
        for row, (key, label) in enumerate((("ulps", "error (ulps)"), ("over_bound", "error / bound"))):
            _panel(axes[row][arg], rows, arg, key, fmt.min_subnormal, fmt.max_finite)
            axes[row][arg].set_ylabel(label)
        xlabel = "largest |input|" if tensor_op else f"x{arg}"
        axes[1][arg].set_xlabel(xlabel)
    axes[1][0].axhline(1.0, color="#c0392b", linewidth=0.8, linestyle="--")  # beyond the bound: wrong
    for ax in axes[1][1:]:
        ax.axhline(1.0, color="#c0392b", linewidth=0.8, linestyle="--")
    modes = ", ".join(f"{s['mode']} {s['examples']} examples" for s in slices)
    fig.suptitle(f"{op} {dtype}: torch's gradient error against the input\n({modes}; {len(rows)} drawn)")
    handles = [axes[0][0].scatter([], [], s=12, color=c, label=name) for name, c in CLASS_COLOURS.items()
               if any(r["class"] == name for r in rows)]
    if any(r["finding"] for r in rows):
        handles.append(axes[0][0].scatter([], [], s=40, facecolors="none", edgecolors="#c0392b",
                                          label="in a registered finding's region"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize="small")
    directory = out / "plots"
    directory.mkdir(exist_ok=True)
    written = []
    for fmt in FORMATS:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=110)
        path = directory / f"{plot_name(op, dtype)}.{fmt}"
        write_bytes_atomically(path, buffer.getvalue())
        written.append(path)
    return written


def _panel(ax, rows: list[dict], arg: int, key: str, tiny: float, largest: float) -> None:
    points = [(_number(r["x"][arg]), _number(r[key]), r) for r in rows if arg < len(r["x"])]
    points = [(x, y, r) for x, y, r in points if x is not None and y is not None and not math.isnan(x)]
    finite = [y for _, y, _ in points if math.isfinite(y)]
    top = max(max(finite, default=1.0) * 10, 10.0)
    for name, colour in CLASS_COLOURS.items():
        mine = [(x, y) for x, y, r in points if r["class"] == name]
        xs = [_position(x, tiny) for x, y in mine if math.isfinite(y)]
        ys = [y for _, y in mine if math.isfinite(y)]
        ax.scatter(xs, ys, s=10, color=colour, alpha=0.7, linewidths=0)
        infinite = [_position(x, tiny) for x, y in mine if not math.isfinite(y)]
        ax.scatter(infinite, [top] * len(infinite), s=24, marker="^", color=colour)
    ringed = [(x, y if math.isfinite(y) else top) for x, y, r in points if r["finding"]]
    ax.scatter([_position(x, tiny) for x, _ in ringed], [y for _, y in ringed], s=40, facecolors="none",
               edgecolors="#c0392b", linewidths=0.8)
    positions = [_position(x, tiny) for x, _, _ in points] or [0.0]
    _signed_log_axis(ax, tiny, largest, min(positions) - 1, max(positions) + 1)
    ax.set_yscale("symlog", linthresh=1.0 if key == "ulps" else 1e-3)
    ax.set_ylim(bottom=0)  # errors are never negative: no margin below 0 in the log space
    ax.grid(True, linewidth=0.3)


def _position(x: float, tiny: float) -> float:
    """Where x goes on the signed logarithmic axis: 0 at 0, ±1 at ±tiny (the smallest subnormal), one unit a
    decade further out (±inf one decade past the largest finite value)."""
    if x == 0:
        return 0.0
    decades = 310.0 if math.isinf(x) else math.log10(abs(x))
    return math.copysign(1.0 + decades - math.log10(tiny), x)


def _signed_log_axis(ax, tiny: float, largest: float, left: float, right: float) -> None:
    """Ticks at 0 and at round decades between the smallest subnormal and the largest finite value, both
    signs, four to eight a side, those between `left` and `right` (the data's positions, a decade wider)."""
    low, high = math.floor(math.log10(tiny)), math.ceil(math.log10(largest))
    eighth = (high - low) / 8
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200) if s >= eighth)
    ticks, labels = [0.0], ["0"]
    for e in range(low + (-low) % step, high + 1, step):
        for sign in (1, -1):
            ticks.append(_position(sign * 10.0**e, tiny))
            labels.append(("-" if sign < 0 else "") + f"1e{e}")
    shown = [(t, label) for t, label in zip(ticks, labels) if left <= t <= right]
    ax.set_xticks([t for t, _ in shown], [label for _, label in shown], rotation=90, fontsize="x-small")
    ax.set_xlim(left, right)
