"""Refusals logged so that a flood of them keeps the log's other lines: a few lines a minute, the rest counted."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

WINDOW = 60.0
"""Seconds in which one source gets one line (its other refusals are counted, and said in its next line)."""

LINES_PER_WINDOW = 10
"""Lines a WINDOW over all sources: many sources at once (a botnet, an IPv6 block) are counted, not logged."""

SOURCES = 1024
"""Sources remembered at most (the oldest is forgotten first; what it had counted is said with the next line)."""


class RefusalLog:
    """Logs refusals (of logins, of sessions) at a rate the rotated log can keep without losing its other lines.

    A source (a host) gets its first refusal logged, then one line a WINDOW at most, which says how many of its
    refusals were not logged since its last line; over all sources, at most LINES_PER_WINDOW lines a WINDOW.
    """

    def __init__(self, log: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._clock = clock
        self._sources: collections.OrderedDict[str, list[float]] = collections.OrderedDict()
        """host -> [when its last line was logged, refusals not logged since]"""
        self._window_start = -WINDOW
        self._lines = 0
        self._forgotten = 0  # refusals counted for sources no longer remembered, not said yet

    def refused(self, source: str, message: str, *args: object) -> None:
        """One refusal from `source` (a host): logged as a warning, `message % args`, unless too many came."""
        now = self._clock()
        if now - self._window_start >= WINDOW:
            self._window_start, self._lines = now, 0
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = [now - WINDOW, 0]
            if len(self._sources) > SOURCES:
                _, (_, held) = self._sources.popitem(last=False)
                self._forgotten += int(held)
        self._sources.move_to_end(source)
        if now - state[0] < WINDOW or self._lines >= LINES_PER_WINDOW:
            state[1] += 1
            return
        held, state[0], state[1] = int(state[1]), now, 0
        self._lines += 1
        notes = []
        if held:
            notes.append(f"{held} more refused from {source} not logged since its last line")
        if self._forgotten:
            notes.append(f"{self._forgotten} more refused from other sources not logged")
            self._forgotten = 0
        self._log.warning(message + (f" ({'; '.join(notes)})".replace("%", "%%") if notes else ""), *args)
