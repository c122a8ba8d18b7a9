"""Keep Python's full garbage collections off the big listings while they are shown.

A pane of 100,000 entries holds 100,000 objects the cyclic collector tracks; each full collection walks
them all (about 0.1 s, measured), and one lands every few dozen key presses: the cursor stalls. While a
big listing is shown, the objects alive are moved out of the collector's sight (`gc.freeze`); they are
freed by reference counting as usual (a listing has no reference cycles). When the last big listing is
left, they are given back (`gc.unfreeze`), so cyclic garbage frozen meanwhile is collected after all.
"""

from __future__ import annotations

import gc

BIG = 20_000
"""A listing with at least this many entries is worth freezing for."""

_holders: set[int] = set()


def hold(owner: object) -> None:
    """`owner` shows a big listing now: freeze what is alive (again, to take in the new entries)."""
    _holders.add(id(owner))
    gc.freeze()


def release(owner: object) -> None:
    """`owner` no longer shows a big listing; the last one to go unfreezes."""
    if id(owner) in _holders:
        _holders.discard(id(owner))
        if not _holders:
            gc.unfreeze()
