"""A hybrid logical clock: stamps that follow the wall clock, never go back, and order causally across devices."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

COUNTER_BITS = 16
_COUNTER = (1 << COUNTER_BITS) - 1
MAX_AHEAD_MS = 24 * 3600 * 1000
"""How far ahead of our wall clock a remote stamp may be; a farther one is refused, not followed."""
MAX_STAMP = (1 << 62) - 1


class ClockSkew(ValueError):
    """A remote stamp from too far in the future (its device's clock is wrong)."""


def encode(ms: int, counter: int) -> int:
    return ms << COUNTER_BITS | counter


def millis(stamp: int) -> int:
    """The wall-clock part of a stamp: milliseconds since the epoch."""
    return stamp >> COUNTER_BITS


def seconds(stamp: int) -> float:
    return millis(stamp) / 1000


class Clock:
    """Stamps as one int (ms since the epoch << 16 | counter): `tick()` for a local event, `observe()` a remote one.

    A stamp is never below one given or seen before, even when the wall clock steps back; so an edit made
    after seeing another sorts after it, whatever the two devices' clocks say.
    """

    def __init__(self, last: int = 0, wall: Callable[[], float] = time.time) -> None:
        self._last = last
        self._wall = wall
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return int(self._wall() * 1000)

    def tick(self) -> int:
        """A new stamp, above every stamp given or observed."""
        with self._lock:
            self._last = max(self._last + 1, encode(self.now_ms(), 0))
            return self._last

    def observe(self, stamp: int) -> None:
        """Take a remote stamp into account (raises ClockSkew for one more than a day ahead of our wall clock)."""
        self.check(stamp)
        with self._lock:
            self._last = max(self._last, stamp)

    def check(self, stamp: int) -> None:
        """Raise ClockSkew when `stamp` is more than a day ahead of our wall clock."""
        ahead = millis(stamp) - self.now_ms()
        if ahead > MAX_AHEAD_MS:
            raise ClockSkew(f"a stamp {ahead // 3_600_000} hours ahead of this device's clock")

    @property
    def last(self) -> int:
        return self._last
