"""What the explorer keeps between runs, in the data dir: its tabs, the folders visited (the jump list, ranked by
frecency as zoxide ranks them) and the bookmarks on letters."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdcore.sdpath import SdPath

log = logging.getLogger(__name__)

FILE = "sdtui-state.json"
"""The state file, in the data dir."""
MAX_RANK = 10_000.0
"""When the ranks of all folders visited add up to more, each is cut by a tenth and those below 1 are forgotten
(zoxide's _ZO_MAXAGE): the list follows what is visited now."""
MAX_FOLDERS = 1000
"""The most folders the jump list keeps (the lowest ranked go first): the state file stays small."""
HOUR, DAY, WEEK = 3600.0, 86400.0, 604800.0


@dataclass
class Tab:
    """A tab: the folders its two panes show, the names their cursors are on, and which pane is active."""

    left: str  # SdPath text (sd://DEVICE/path)
    right: str
    left_cursor: str | None = None
    right_cursor: str | None = None
    active: str = "left"


@dataclass
class Visit:
    """A folder's rank (one a visit, aged) and when it was last visited."""

    rank: float
    last: float


def frecency(visit: Visit, now: float) -> float:
    """How high a folder stands in the jump list: its rank, weighted by how recently it was visited (as zoxide)."""
    age = now - visit.last
    return visit.rank * (4.0 if age < HOUR else 2.0 if age < DAY else 0.5 if age < WEEK else 0.25)


@dataclass
class State:
    """The explorer's state between runs; `save()` writes it (owner-only)."""

    path: Path
    tabs: list[Tab] = field(default_factory=list)
    current: int = 0
    """The index of the tab shown."""
    visits: dict[str, Visit] = field(default_factory=dict)
    """Folders visited, by SdPath text."""
    bookmarks: dict[str, str] = field(default_factory=dict)
    """A letter -> the folder it marks (SdPath text)."""

    @classmethod
    def load(cls, data_dir: Path) -> State:
        """The state kept in `data_dir` (an unreadable file is logged and started afresh: it is no one's data)."""
        path = Path(data_dir) / FILE
        try:
            data = json.loads(path.read_text())
            return cls(
                path,
                [Tab(**t) for t in data.get("tabs", [])],
                int(data.get("current", 0)),
                {k: Visit(*v) for k, v in data.get("visits", {}).items()},
                {str(k): str(v) for k, v in data.get("bookmarks", {}).items()},
            )
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("%s: cannot read the explorer's state (%s); starting afresh", path, exc)
            return cls(path)

    def save(self) -> None:
        data: dict[str, Any] = {
            "tabs": [asdict(t) for t in self.tabs],
            "current": self.current,
            "visits": {k: [v.rank, v.last] for k, v in self.visits.items()},
            "bookmarks": self.bookmarks,
        }
        temp = self.path.with_name(f".{FILE}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps(data))
            os.replace(temp, self.path)
        except OSError as exc:  # the explorer goes on; only what it remembers is lost
            log.warning("%s: cannot save the explorer's state (%s)", self.path, exc)

    def visit(self, folder: SdPath, now: float | None = None) -> None:
        """Count a visit to `folder`."""
        now = time.time() if now is None else now
        key = str(SdPath(folder.device_id, folder.path))
        known = self.visits.get(key)
        self.visits[key] = Visit((known.rank if known else 0.0) + 1.0, now)
        if sum(v.rank for v in self.visits.values()) > MAX_RANK:
            self.visits = {k: Visit(v.rank * 0.9, v.last) for k, v in self.visits.items() if v.rank * 0.9 >= 1.0}
        if len(self.visits) > MAX_FOLDERS:
            lowest = min(self.visits, key=lambda k: (self.visits[k].rank, self.visits[k].last))
            del self.visits[lowest]

    def jump_list(self, now: float | None = None) -> list[SdPath]:
        """The folders visited, the highest frecency first."""
        now = time.time() if now is None else now
        ranked = sorted(self.visits.items(), key=lambda kv: -frecency(kv[1], now))
        return [SdPath.parse_canonical(k) for k, _ in ranked]

    def forget(self, folder: SdPath) -> None:
        """Take a folder off the jump list (it is gone)."""
        self.visits.pop(str(SdPath(folder.device_id, folder.path)), None)
