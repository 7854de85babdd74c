"""A picture of a comparison: every check's worst error in the old run against the new one (ulps, both axes
logarithmic), so a torch upgrade's accuracy shifts show as points off the diagonal (an infinite error: a
triangle on the edge). Checks that regressed
(wrong only in the new run) or were fixed are coloured; the dashed lines are the --shift-factor band."""

from __future__ import annotations

import io
import math
from pathlib import Path

from gradoracle import explore_plots
from oracles.reports.files import write_bytes_atomically

FORMATS = ("png", "svg")


def format_problem(path: str) -> str | None:
    """Why `path` cannot take the figure (its suffix picks the format), or None."""
    missing = explore_plots.unavailable()
    if missing:
        return f"cannot be drawn: {missing}"
    if Path(path).suffix.lstrip(".").lower() not in FORMATS:
        return "must end in .png or .svg (its suffix picks the format)"
    return None


def draw(path: Path, old: dict, new: dict, shift_factor: float) -> None:
    old_checks = {(c["check"], c["op"], c["dtype"]): c for c in old["checks"]}
    groups = {"same": [], "worse": [], "better": [], "regressed": [], "fixed": []}
    for c in new["checks"]:
        was = old_checks.get((c["check"], c["op"], c["dtype"]))
        if was is None:
            continue
        a, b = was["worst_error_ulps"], c["worst_error_ulps"]
        if c["wrong"] and not was["wrong"]:
            group = "regressed"
        elif was["wrong"] and not c["wrong"]:
            group = "fixed"
        elif a > 0 and b > 0 and b / a >= shift_factor:
            group = "worse"
        elif a > 0 and b > 0 and a / b >= shift_factor:
            group = "better"
        else:
            group = "same"
        groups[group].append((a, b))
    colours = {"same": "#9e9e9e", "worse": "#e67e22", "better": "#2e86c1", "regressed": "#c0392b",
               "fixed": "#27ae60"}
    fig = explore_plots.Figure(figsize=(6.4, 6.4), layout="constrained")
    ax = fig.subplots()
    finite = [v for pairs in groups.values() for pair in pairs for v in pair if math.isfinite(v)]
    top = max(finite + [10.0]) * 10
    for name, pairs in groups.items():
        shown = [(min(a, top), min(b, top)) for a, b in pairs]  # an infinite error sits on the edge, marked
        ax.scatter([a for a, _ in shown], [b for _, b in shown], s=14, color=colours[name], alpha=0.8,
                   linewidths=0, label=f"{name} ({len(pairs)})")
        edge = [(a, b) for a, b in shown if a == top or b == top]
        ax.scatter([a for a, _ in edge], [b for _, b in edge], s=30, marker="^", color=colours[name])
    ax.plot([0, top], [0, top], color="#555555", linewidth=0.8)
    ax.plot([0, top / shift_factor], [0, top], color="#555555", linewidth=0.6, linestyle="--")
    ax.plot([0, top], [0, top / shift_factor], color="#555555", linewidth=0.6, linestyle="--")
    for axis in (ax.set_xscale, ax.set_yscale):
        axis("symlog", linthresh=1.0)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(f"worst error (ulps), torch {old['versions']['torch']}")
    ax.set_ylabel(f"worst error (ulps), torch {new['versions']['torch']}")
    ax.set_title(f"worst gradient error per check: torch {old['versions']['torch']} -> {new['versions']['torch']}")
    ax.grid(True, linewidth=0.3)
    ax.legend(loc="upper left", fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower(), dpi=110)
    write_bytes_atomically(path, buffer.getvalue())
