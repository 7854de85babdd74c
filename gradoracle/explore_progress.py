"""Progress inside an explorer slice: a tqdm bar over the slice's time, with the examples so far, their rate
and the worst error so far, redrawn as the search runs (a 20-minute run over two slices is otherwise silent
for ten minutes at a time)."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

# Seconds between redraws: often on a terminal, rarely into a log file (each redraw is a line there).
TERMINAL_INTERVAL = 1.0
LOG_INTERVAL = 30.0


class SliceProgress:
    def __init__(self, label: str, seconds: float, stream=None):
        stream = stream if stream is not None else sys.stderr
        interval = TERMINAL_INTERVAL if stream.isatty() else LOG_INTERVAL
        self._start = time.monotonic()
        # delay: nothing is drawn before the first interval has passed (a short slice leaves no trace)
        self._bar = tqdm(total=round(seconds, 1), desc=label, file=stream, mininterval=interval, delay=interval,
                         leave=False,
                         bar_format="{desc} {bar:20} {elapsed} of {total:.0f} s, {remaining} left; {postfix}")

    def update(self, examples: int, worst_ulps: float, worst_over_bound: float) -> None:
        elapsed = min(time.monotonic() - self._start, self._bar.total)
        rate = examples / max(elapsed, 1e-9)
        self._bar.set_postfix_str(f"{examples} examples ({rate:.0f}/s), worst so far {worst_ulps:.3g} ulp and "
                                  f"{worst_over_bound:.3g} x bound", refresh=False)
        self._bar.update(elapsed - self._bar.n)  # redraws only when the interval has passed

    def close(self) -> None:
        self._bar.close()
