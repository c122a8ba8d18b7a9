"""msgpack decoding that a sender cannot make take more memory than a budget."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any

import msgpack

SLOT = 56
"""Bytes counted for each object a list or map holds, and for each list or map: a small Python object and
its pointer (an empty list in a list takes 64 bytes; a one-byte msgpack frame can make one)."""
MAX_ARRAY = 1 << 18
MAX_MAP = 1 << 16
"""Members of one array or map: the budget is checked as each completes, so one of them is all it can overshoot."""


class Overspent(ValueError):
    """A frame whose objects would take more memory than its reader allows."""


class Budget:
    """What one decoding may still spend, in bytes (roughly: an estimate that errs on the high side)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, cost: int) -> None:
        self.spent += cost
        if self.spent > self.limit:
            raise Overspent(f"it would take more than {self.limit >> 20} MiB to read")

    def _list(self, items: list[Any]) -> list[Any]:  # called for every list: spend() inlined
        self.spent += SLOT + SLOT * len(items)
        if self.spent > self.limit:
            self.spend(0)
        return items

    def _map(self, items: dict[Any, Any]) -> dict[Any, Any]:
        self.spend(SLOT + 2 * SLOT * len(items))
        return items


_current = threading.local()


@contextlib.contextmanager
def bounded(limit: int) -> Iterator[Budget]:
    """Within it, `limits()` makes every unpackb of this thread (an ext hook's too) spend from one budget."""
    budget = Budget(limit)
    outer = getattr(_current, "budget", None)
    _current.budget = budget
    collecting = outer is None and gc.isenabled()
    if collecting:  # what msgpack builds has no cycles: the collector would walk a growing heap over and over
        gc.disable()
    try:
        yield budget
    finally:
        _current.budget = outer
        if collecting:
            gc.enable()


def spend(cost: int) -> None:
    """Spend `cost` bytes from the budget in force, if any: what an ext hook builds beyond what msgpack counted."""
    budget: Budget | None = getattr(_current, "budget", None)
    if budget is not None:
        budget.spend(cost)


def limits(data: bytes) -> dict[str, Any]:
    """unpackb's keyword arguments for `data` under the budget in force (none outside `bounded`)."""
    budget: Budget | None = getattr(_current, "budget", None)
    if budget is None:
        return {}
    if not budget.spent:
        budget.spend(len(data))  # text and bytes take about what they took on the wire
    return {
        "list_hook": budget._list, "object_hook": budget._map,
        "max_array_len": MAX_ARRAY, "max_map_len": MAX_MAP,
    }  # fmt: skip


def unpackb(data: bytes, limit: int, **kwargs: Any) -> Any:
    """msgpack.unpackb of `data`, raising Overspent rather than building more than `limit` bytes of objects."""
    with bounded(limit):
        return msgpack.unpackb(data, **kwargs, **limits(data))
