"""Test ids a person can select with pytest's `-k`: its expressions take letters, digits and `_ : + - . / [ ]`
(and `\\`) only, so an id such as `clamp@0,lo=0,hi=1` could not be named at all. `selectable` writes the
suite's ids in those characters: an op and its point read `clamp/0:lo:0:hi:1`, an expression
`[x0_pow_x1]_times_x2`."""

from __future__ import annotations

import re

_SPELLED = {"@": "/", ",": ":", "=": ":", "(": "[", ")": "]", "^": "pow", " ": "_", "'": "", "<": "lt", ">": "gt",
            "*": "times"}
_TAKEN = re.compile(r"[\w:+\-./\[\]\\]")


def selectable(text: str) -> str:
    """`text` with every character `-k` cannot take spelled in ones it can (any other becomes `_`)."""
    return "".join(c if _TAKEN.fullmatch(c) else _SPELLED.get(c, "_") for c in text.replace("**", "^"))
