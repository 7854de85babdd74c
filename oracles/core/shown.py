"""What a check showed torch: per input, the binades its values covered and how close it came to each
point it was kept off (a domain edge, a pole, a kink), so a run report says where an op was looked at."""

from __future__ import annotations

import math
from collections import defaultdict

from oracles.core.case import Case
from oracles.numerics.floats import to_ordinal

ZERO = "zero"  # the binade label of ±0


def binade(value: float) -> int | str:
    return ZERO if value == 0 else math.frexp(abs(value))[1] - 1


class DomainShown:
    """Mergeable and JSON-able, like the verdict tallies it travels with: `binades[x]` are the binades of
    |value| (2^b <= |value| < 2^(b+1)) input x took, `signs[x]` its signs, and `nearest[x]["p+"]` the
    fewest ulps it lay above the avoided point p ("p-": below)."""

    def __init__(self):
        self.binades: dict[str, set] = defaultdict(set)
        self.signs: dict[str, set] = defaultdict(set)
        self.nearest: dict[str, dict[str, int]] = defaultdict(dict)

    def __bool__(self) -> bool:
        return bool(self.binades)

    def add(self, case: Case, avoided: tuple[tuple[float, ...], ...]) -> None:
        fmt = case.format
        for leaf, values in enumerate(case.values):
            name = f"x{leaf}"
            for value in values:
                self.binades[name].add(binade(value))
                self.signs[name].add("-" if math.copysign(1.0, value) < 0 else "+")
                for point in avoided[leaf]:
                    ulps = to_ordinal(value, fmt) - to_ordinal(point, fmt)
                    key = f"{point!r}{'+' if ulps > 0 else '-'}"
                    self.nearest[name][key] = min(abs(ulps), self.nearest[name].get(key, abs(ulps)))

    def merge(self, other: DomainShown) -> None:
        for name, found in other.binades.items():
            self.binades[name] |= found
        for name, found in other.signs.items():
            self.signs[name] |= found
        for name, points in other.nearest.items():
            for key, ulps in points.items():
                self.nearest[name][key] = min(ulps, self.nearest[name].get(key, ulps))

    def to_json(self) -> dict:
        def ordered(found: set) -> list:
            return ([ZERO] if ZERO in found else []) + sorted(b for b in found if b != ZERO)

        return {name: {"binades": ordered(self.binades[name]), "signs": sorted(self.signs[name]),
                       "nearest_ulps": dict(sorted(self.nearest[name].items()))}
                for name in sorted(self.binades)}

    @classmethod
    def from_json(cls, data: dict) -> DomainShown:
        shown = cls()
        for name, record in data.items():
            shown.binades[name] = set(record["binades"])
            shown.signs[name] = set(record["signs"])
            shown.nearest[name] = dict(record["nearest_ulps"])
        return shown
