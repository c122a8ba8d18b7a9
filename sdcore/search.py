"""Search: any substring of names, paths and notes (trigram FTS5), with filters, sorts and saved searches."""

from __future__ import annotations

import builtins
import heapq
import itertools
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.index.fts import index_cut_off_loads
from sdcore.library.entries import PATH_SQL
from sdcore.library.schema import ENTRY_KINDS, fold
from sdcore.sdpath import DeviceId, from_db, to_db, typed
from sdcore.sync import catalogue_store

if TYPE_CHECKING:
    from sdcore.library.library import Library
    from sdcore.library.locations import Location

log = logging.getLogger(__name__)

SORTS = ("relevance", "name", "size", "date")
# Relevance is scored here on at most this many matches (the first in index order, names looked for on their
# own when a word has more): bm25 over every match costs 20-56 ms on a million entries, this about 1 ms.
RELEVANCE_CANDIDATES = 300
WALK_BUDGET = 5000  # rows a sorted search walks in order before it sorts every match instead
_MMAP = 1 << 32
_SHORT = 3  # the trigram index cannot look up a term shorter than this; such terms are checked row by row


class SearchError(SdError):
    """A search that cannot run as given (the message says how to fix it)."""


@dataclass(frozen=True)
class Query:
    """What to look for: a text (every word a substring of the name, path or note; a word with * or ? a glob
    that the name must match) and filters.

    Several values of one filter match any of them; different filters must all match.
    """

    text: str = ""
    ext: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    modified_after: float | str | None = None  # a timestamp, or text for `parse_when` (kept relative)
    modified_before: float | str | None = None
    location: int | str | None = None
    favorites: bool = False
    sort: str = "relevance"
    reverse: bool = False
    limit: int = 100
    device: str | None = None  # only on this device of the library (its id); None: every device

    def has_filters(self) -> bool:
        return bool(
            self.ext or self.kind or self.tags or self.favorites or self.location is not None or self.device is not None
            or self.min_size is not None or self.max_size is not None
            or self.modified_after is not None or self.modified_before is not None
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Query:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)


@dataclass(frozen=True)
class Hit:
    """An entry that matched: where it is and what it is."""

    entry_id: int
    location_id: int
    path: str  # absolute on its device
    relative: str  # relative to its location's root
    name: str
    kind: str
    object_kind: str | None
    size: int
    mtime: float | None
    device_id: DeviceId = field(compare=False)


@dataclass(frozen=True)
class SavedSearch:
    """A search kept under a name (the TUI lists them in its sidebar)."""

    name: str
    query: Query
    created: float


# -- searching ---------------------------------------------------------------------------------------


def find(library: Library, text: str = "", **filters: Any) -> list[Hit]:
    """Entries matching `text` and filters: `search.find(library, "beach", ext=("jpg",), sort="size")`."""
    for key in ("ext", "kind", "tags"):
        if isinstance(filters.get(key), str):
            filters[key] = (filters[key],)
        elif key in filters:
            filters[key] = tuple(filters[key])
    return run(library, Query(text, **filters))


def run(library: Library, query: Query) -> list[Hit]:
    """Run a query; returns at most `query.limit` hits in the order asked for.

    Searched: the library's own database, and each other device's catalogue kept as a file of its own
    (sdcore.sync.catalogue_store), the hits of each merged in the order asked for. A device whose catalogue is kept
    is searched there only: rows of it the library's own tables may still hold are left out by their locations.
    """
    if query.sort not in SORTS:
        raise SearchError(f"cannot sort by {query.sort!r}; use one of {', '.join(SORTS)}")
    if query.limit < 1:
        raise SearchError(f"--limit must be at least 1 (got {query.limit})")
    if not _terms(query.text) and not query.has_filters():
        raise SearchError("nothing to search for: give some text, or a filter such as --ext pdf or --tag NAME")
    index_cut_off_loads(library)
    conn = library.read()
    conn.execute(f"PRAGMA mmap_size = {_MMAP}")  # pages straight from the OS cache: a big index reads far faster
    places = {loc.id: loc for loc in library.locations.list()}
    kept = catalogue_store.kept(library)
    if not kept:
        return run_on(conn, library, query, places)
    only = str(library.locations.get(query.location).device_id) if query.location is not None else None
    wanted = {d for d in (query.device, only) if d is not None}  # (a device, or a location's: that source alone)
    own = not wanted & {str(device) for device in kept}
    files = {}  # the kept catalogues searched: device -> this thread's connection to its file
    for device, slot in kept.items():
        held = catalogue_store.reader(library, device, slot) if not wanted - {str(device)} else None
        if held is not None:
            files[device] = held
    share = max(own + len(files), 1)
    score = _scorer(_split(query.text)[0])  # (one for every database: each name scored once)
    found: list[_Found] = []
    if own:
        theirs = [id for id, loc in places.items() if loc.device_id in kept]
        found.append(_Found(_matches(conn, library, query, places, theirs, share, score), places, None))
    for device, held in files.items():
        owners = catalogue_store.location_ids(library, device)  # the library's id -> the owner's
        at = {owners[id]: loc for id, loc in places.items() if id in owners and loc.device_id == device}  # (not one
        # this device took over from it: its entries are this device's rows now, the file's are stale until handed over)
        unknown = [id for (id,) in held.execute("SELECT id FROM locations") if id not in at]  # (none, once synced)
        found.append(_Found(_matches(held, library, query, at, unknown, share, score), at, kept[device]))
    return _merged(found, query, score)


def run_on(
    conn: sqlite3.Connection, library: Library, query: Query, locations: dict[int, Location], skipped: Collection[int] = (),
    share: int = 1,
) -> list[Hit]:
    """`run` on `conn`: the library's own database, or another device's catalogue kept as a file of its own
    (sdcore.sync.catalogue_store.connect: `locations` by that device's ids for them); the entries of the locations
    `skipped` (their ids on `conn`) left out. `share`: how many databases one search reads (`run`), each scoring its
    share of the relevance candidates and looking first at its share of folders' entries: in all, one database's work."""
    return [_hit(row, locations) for row in _matches(conn, library, query, locations, skipped, share)]


class _Found(NamedTuple):
    """What one database of a search found: its rows (in the order asked for), its locations, a kept catalogue's slot."""

    rows: Iterable[tuple]  # (an iterator for a sort by a column: read as far as the merge needs)
    locations: dict[int, Location]
    slot: int | None


def _matches(
    conn: sqlite3.Connection, library: Library, query: Query, locations: dict[int, Location], skipped: Collection[int] = (),
    share: int = 1, score: Callable[[str], tuple[int, int, str]] | None = None,
) -> Iterable[tuple]:
    """The rows of `run_on`'s hits (`score`: the query's `_scorer`, when several databases share one)."""
    terms, globs = _split(query.text)
    where, params = _filters(conn, library, query, locations)
    for glob in globs:  # the glob's literal parts, searched as terms, find the candidates; the name must match it
        where.append("e.name LIKE ? ESCAPE '\\'")
        params.append(re.sub(r"[%_\\]", r"\\\g<0>", glob).replace("*", "%").replace("?", "_"))
    facets = _ext_facets(query.ext)
    cap = query.limit if where else max(query.limit, RELEVANCE_CANDIDATES // share)  # (a filter of the person's: few match)
    if skipped:
        where.append(f"e.location_id NOT IN ({','.join('?' * len(skipped))})")
        params.extend(skipped)
    if (len(terms) > 1 or query.sort != "relevance") and any(_nowhere(conn, t) for t in terms):
        return []  # (one word alone is looked up in the indexes first: found nowhere, it ends as soon)
    if query.sort == "relevance" and terms:
        return _by_relevance(
            conn, terms, where, params, facets, query.limit, cap, FOLDER_SAMPLE // share, score or _scorer(terms)
        )
    return _sorted(conn, terms, where, params, facets, query)


def _nowhere(conn: sqlite3.Connection, term: str) -> bool:
    """True when no entry's name, folder's path or note on `conn` can hold `term` (its indexes say so: each stops at
    what it finds first); False too when they cannot tell (a short term, or one with a '/').

    A word found nowhere ends the search at once: with a common word beside it, every match of that word was read
    and checked for it (two words, one of them in no file: 19 ms over 1,000,000 entries; sorted by size, 65 ms).
    """
    plan = _in_indexes(term)
    if plan is None or "/" in term:
        return False
    try:
        if conn.execute(
            "SELECT EXISTS (SELECT 1 FROM search_index WHERE search_index MATCH ?)"
            " OR EXISTS (SELECT 1 FROM folder_index WHERE folder_index MATCH ?)"
            " OR EXISTS (SELECT 1 FROM note_index WHERE note_index MATCH ?)",
            (plan.name, plan.folder, plan.note),
        ).fetchone()[0]:
            return False
        if conn.execute("SELECT 1 FROM temp.sqlite_schema WHERE name = 'user_metadata'").fetchone():
            # (a kept catalogue's connection: the library's notes on its entries are copied there, in no index)
            return not conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM temp.user_metadata m WHERE {_holds('m.note')})", _holding(term)
            ).fetchone()[0]
        return True
    except sqlite3.OperationalError as exc:  # never show an SQL error for a user's text
        raise SearchError(f"this search could not run ({exc}); try simpler text") from None


def _split(text: str) -> tuple[list[str], list[str]]:
    """The terms searched for in `text` (a glob's literal parts among them), and its globs."""
    terms = _terms(text)
    globs = [t for t in terms if "*" in t or "?" in t]
    return [t for t in terms if t not in globs] + [part for g in globs for part in re.split(r"[*?]+", g) if part], globs


_NOCASE = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}  # SQLite's NOCASE folds ASCII letters only


def _merged(found: list[_Found], query: Query, score: Callable[[str], tuple[int, int, str]]) -> list[Hit]:
    """The hits of several databases (each in the order asked for, the library's own first) in that order, as one
    database holding them all would give them: by score for relevance, else by the sort's column (ties, and a search
    by filters alone, by id: the library's own ids are below every global id). Hits are made of the rows kept only."""
    if query.sort == "relevance" and _split(query.text)[0]:
        rows = [(row, part) for part in found for row in part.rows]
        rows.sort(key=lambda r: score(r[0][3]))  # (stable: in the order found)
        return [_hit(row, part.locations, part.slot) for row, part in rows[: query.limit]]
    # Each database's rows come in the order asked for: merged as they come, each read only as far as needed.
    # (Ties by global id: (slot, id), the library's own as slot 0.)
    key: Callable[[tuple, int], tuple] = {
        "relevance": lambda row, slot: (slot, row[0]),
        "name": lambda row, slot: (row[3].translate(_NOCASE), slot, row[0]),
        "size": lambda row, slot: (row[6], slot, row[0]),
        "date": lambda row, slot: (row[7] is not None, row[7] or 0.0, slot, row[0]),  # (NULL first, as SQLite sorts)
    }[query.sort]
    descending = (query.sort in ("size", "date")) != query.reverse
    streams = [iter(part.rows) for part in found]

    def keyed(part: _Found, rows: Iterator[tuple]) -> Iterator[tuple[tuple, tuple, _Found]]:
        tagged = ((key(row, part.slot or 0), row, part) for row in rows)
        if isinstance(part.rows, list):  # (rows read whole, by a plan that may not keep the order: sorted here)
            return iter(sorted(tagged, key=lambda t: t[0], reverse=descending))
        return tagged  # (a walk of the order: in it)

    merged = heapq.merge(
        *(keyed(part, rows) for part, rows in zip(found, streams, strict=True)), key=lambda t: t[0], reverse=descending
    )
    try:
        return [_hit(row, part.locations, part.slot) for _, row, part in itertools.islice(merged, query.limit)]
    finally:
        for stream in streams:
            if isinstance(stream, Generator):
                stream.close()  # (its cursor)


_COLUMNS = f"e.id, e.location_id, {PATH_SQL}, e.name, e.kind, e.object_kind, e.size, e.mtime"


def _by_relevance(
    conn: sqlite3.Connection, terms: list[str], where: list[str], params: list[Any], facets: str, limit: int, cap: int,
    sample: int, named_score: Callable[[str], tuple[int, int, str]],
) -> list[tuple]:
    """Name matches first (exact, then prefix, then at a word start, then anywhere; shorter names first), then
    matches in the path or the note.

    Scored here on the first `cap` matches found (a few hundred; with filters, `limit`): cheap, and what people mean
    by relevant for file names. (`sample`: see _sources; `named_score`: `_scorer(terms)`.)
    """

    def score(row: tuple) -> tuple[int, int, str]:
        return named_score(row[3])

    in_names = not any("/" in t for t in terms)  # (a name holds no '/')
    if len(terms) > 1 and in_names and any(_in_indexes(t) for t in terms):  # (else names are read one by one)
        # Several words: matches in the path (a word in a folder's name, another in the file's) may crowd out those with
        # every word in the name, which rank first; so these are looked for first, and when they are many they are
        # all that is shown.
        named = _select(conn, terms, where, params, facets, "name", cap, order="", sample=sample)
        if len(named) == cap:
            return sorted(named, key=score)[:limit]
        rows = _select(conn, terms, where, params, facets, "any", cap, order="", sample=sample)
        seen = {r[0] for r in named}
        return sorted(named + [r for r in rows if r[0] not in seen], key=score)[:limit]
    rows = _select(conn, terms, where, params, facets, "any", cap, order="", sample=sample)
    if len(rows) < cap or not in_names:
        return sorted(rows, key=score)[:limit]  # every match is here (or no name can hold the word: none ranks higher)
    if len(terms) == 1 and _in_indexes(terms[0]) and all(score(row)[0] < 5 for row in rows):
        # (one word the index finds: names were read first, in the index's order, so these are what names alone give)
        return sorted(rows, key=score)[:limit]
    # One word with many matches: those in the path may crowd out those in the name, so look in names alone.
    named = _select(conn, terms, where, params, facets, "name", cap, order="", sample=sample)
    seen = {r[0] for r in named}
    return sorted(named + [r for r in rows if r[0] not in seen], key=score)[:limit]


def _scorer(terms: list[str]) -> Callable[[str], tuple[int, int, str]]:
    """The key that sorts names (as stored) by relevance to `terms` (each name scored once: a search's databases each
    sort their rows by it, then their rows are merged by it)."""
    needle = " ".join(terms)
    words = terms
    word_start = re.compile(r"(?:^|[\s._\-])" + re.escape(needle))
    scored: dict[str, tuple[int, int, str]] = {}

    def score(name: str) -> tuple[int, int, str]:
        key = scored.get(name)
        if key is None:
            key = scored[name] = scoring(name)
        return key

    def scoring(name: str) -> tuple[int, int, str]:
        folded = fold(name)
        if folded == needle or folded.rpartition(".")[0] == needle:
            rank = 0
        elif folded.startswith(needle):
            rank = 1
        elif word_start.search(folded):
            rank = 2
        elif needle in folded:
            rank = 3
        elif all(w in folded for w in words):
            rank = 4
        else:
            rank = 5  # found in the path or the note
        return rank, len(name), folded

    return score


def _sorted(
    conn: sqlite3.Connection, terms: list[str], where: list[str], params: list[Any], facets: str, query: Query
) -> Iterable[tuple]:
    """The matches in the order asked for: a list, or for words sorted by a column an iterator that reads as far as it
    is read (`_merged` reads several databases' together and stops at the limit: each reads its share of it)."""
    if not terms and query.sort == "relevance" and not query.reverse:
        return _select(conn, terms, where, params, facets, "any", query.limit, order="")  # in index order: stops early
    column, descending = {
        "relevance": ("e.id", False), "name": ("e.name COLLATE NOCASE", False), "size": ("e.size", True),
        "date": ("e.mtime", True),
    }[query.sort]
    if query.reverse:
        descending = not descending
    direction = "DESC" if descending else "ASC"
    order = f"{column} {direction}, e.id {direction}"  # the order of the index: (column, rowid)
    if terms and query.sort != "relevance":
        return _in_order(conn, terms, where, params, facets, order, query.limit)
    return _select(conn, terms, where, params, facets, "any", query.limit, f"ORDER BY {order}")


def _in_order(
    conn: sqlite3.Connection, terms: list[str], where: list[str], params: list[Any], facets: str, order: str, limit: int
) -> Iterator[tuple]:
    """The matches in `order`, at most `limit`: walked in the order while the walk finds them, the rest (past the rows
    given) from a sort of every match when it gives up."""
    given = yield from _walk_in_order(conn, terms, where, params, order, limit)
    if given is not None:
        yield from _select(conn, terms, where, params, facets, "any", limit, f"ORDER BY {order}")[given:]


def _walk_in_order(
    conn: sqlite3.Connection, terms: list[str], where: list[str], params: list[Any], order: str, limit: int
) -> Generator[tuple, None, int | None]:
    """Entries in the sort order (an index walk), given when every term is in the path or note; stops at `limit`.

    Sorting every match costs as much as there are matches (a third of a large library for a common
    word); walking the order and testing costs as many rows as it takes. Gives up when WALK_BUDGET rows hold fewer
    than `limit` matches (the matches are few, and sorting them is cheap): returns how many it gave then, else None.
    """
    clauses = " AND ".join(["e.parent_id IS NOT NULL", *where])
    # The budget counts rows of the order walked (the index alone), not rows that pass the filters: bounded cost.
    cursor = conn.execute(
        f"SELECT w.id, e.parent_id IS NOT NULL AND {clauses}, {_COLUMNS}, m.note"
        f" FROM (SELECT e.id AS id FROM entries e ORDER BY {order} LIMIT ?) AS w"
        " JOIN entries e ON e.id = w.id LEFT JOIN user_metadata m ON m.entry_id = e.id"
        " LEFT JOIN directory_paths p ON p.entry_id = e.parent_id",
        [*params, WALK_BUDGET],
    )
    given = walked = 0
    try:
        for raw in cursor:
            walked += 1
            row = raw[2:]
            if not raw[1] or row[2] is None:
                continue
            text = fold(row[2] + "\n" + (row[-1] or ""))
            if all(t in text for t in terms):
                yield row[:-1]
                given += 1
                if given == limit:
                    return None
    finally:
        cursor.close()
    return given if walked == WALK_BUDGET else None


def _holds(expression: str) -> str:
    """SQL true when `expression`, folded as `fold` does, holds a term; its two arguments are `_holding(term)`.

    Text that is all ASCII (as many characters as bytes) is matched by LIKE, which folds ASCII letters as `fold` does;
    other text by `fold` itself (called in Python). 7x cheaper a row than a GLOB for a character outside printable
    ASCII and lower() before instr (the check of 150,000 names 150 -> 20 ms).
    """
    return (
        f"CASE WHEN length({expression}) < length(CAST({expression} AS BLOB)) THEN instr(search_fold({expression}), ?)"
        f" ELSE {expression} LIKE ? ESCAPE '\\' END"
    )


def _holding(term: str) -> list[str]:
    """The arguments of `_holds` for a folded term."""
    return [term, "%" + re.sub(r"[%_\\]", r"\\\g<0>", term) + "%"]


# A term looked for row by row, over entries `e`, its folder's directory_paths `p` and its user_metadata `m`: in its
# path (its folder's path, '/', its name) or its note. Read from the tables: a lookup in an FTS table costs more.
_PATH = "(CASE p.path WHEN '' THEN '' ELSE p.path || '/' END || e.name)"  # ('/' ends what folding joins: folded apart)
_IN_PARTS = f"({_holds('e.name')} OR {_holds('p.path')} OR {_holds('m.note')})"
_WITH_TEXT = " JOIN directory_paths p ON p.entry_id = e.parent_id LEFT JOIN user_metadata m ON m.entry_id = e.id"
_NOTE = " LEFT JOIN user_metadata m ON m.entry_id = e.id"
_TEXT_IF_CHECKED = " <_WITH_TEXT if any term is checked>"


def _check(term: str, scope: str) -> tuple[str, list[str]]:
    """SQL true for a row whose name (scope 'name'), name or note (scope 'own'), or path or note, holds `term`; and
    its arguments."""
    args = _holding(term)
    if scope == "name":
        return _holds("e.name"), args
    if scope == "own":
        return f"({_holds('e.name')} OR {_holds('m.note')})", args * 2
    if "/" in term:  # perhaps across the folder's path and the name
        return f"({_holds(_PATH)} OR {_holds('m.note')})", args * 2
    return _IN_PARTS, args * 3  # the name first: where a word is most often found


FOLDER_DRIVEN = 2000  # a word in at most this many folders' paths: their entries are read and checked
# Entries of the folders holding some of several words, looked at first: where words meet across a folder and a name
# they are found there cheaply, else the names are searched next (an index that reads whatever its words match).
FOLDER_SAMPLE = 3000


class _Plan(NamedTuple):
    """How the trigram indexes find every entry whose path or note may hold a term: queries of each index (a superset:
    search_index and folder_index keep no positions, so what they give is checked against the text after)."""

    name: str | None  # search_index: entries whose name may hold it (None: no name can, it has a '/')
    note: str  # note_index: entries whose note holds it
    folder: str  # folder_index: folders whose path may hold it (a term with a '/': what a folder's path must hold)
    beside: str | None = None  # search_index, beside other words': one trigram of `name` (see _names)


def _trigrams(term: str) -> str:
    """A query of a trigram index without positions that every text holding `term` matches: trigrams of it side by
    side (one every three characters, and the last), all needed."""
    starts = sorted({*range(0, len(term) - 2, 3), len(term) - 3})
    return " AND ".join(dict.fromkeys(_phrase(term[i : i + 3]) for i in starts))


def _in_indexes(term: str) -> _Plan | None:
    """How the indexes find `term`, or None when they cannot (too short a term: it is checked row by row)."""
    if "/" not in term:
        return _Plan(_trigrams(term), _phrase(term), _trigrams(term), _phrase(term[:3])) if len(term) >= _SHORT else None
    # A name holds no '/': the term is in the note, in the folder's path, or across the folder's end and the name.
    head, _, tail = term.rpartition("/")
    if len(head) >= _SHORT:  # in the folder's path or across its end: the folder's path holds `head` either way
        return _Plan(None, _phrase(term), _trigrams(head))
    if len(tail) >= _SHORT:  # across the end: the name holds `tail`; or inside the folder's path
        return _Plan(_trigrams(tail), _phrase(term), _trigrams(term), _phrase(tail[:3]))
    return None


def _names(plans: dict[str, _Plan], words: Sequence[str], facets: str) -> str:
    """A query of search_index that every name holding all `words` (with an extension of `facets`) matches, or "" when
    some word is in no name.

    Several words: one trigram of each. An AND of trigram lists walks each list whole when the words are common and
    rarely meet (two words in a tenth of 330,000 names each, meeting in none: 5 lists 2.8 ms, 2 lists 1.1 ms); a word's
    trigrams mostly come together, so the words' meeting is what prunes. Every row is checked against the words after.
    """
    names = [plans[w].beside if len(words) > 1 else plans[w].name for w in words]
    if not all(names):
        return ""
    return " AND ".join([*(n for n in names if n), *([facets] if facets else [])])


def _own_rows(plans: dict[str, _Plan], words: Sequence[str], facets: str) -> tuple[str, list[str]]:
    """A SELECT of the ids (`id`) of entries whose own name or note may hold every word (with an extension of `facets`):
    those whose name has the words' trigrams, then those whose note holds one of them."""
    parts: list[str] = []
    args: list[str] = []
    names = _names(plans, words, facets)
    if names:  # (a word with a '/' is in no name: only in a note)
        parts.append("SELECT rowid AS id FROM search_index WHERE search_index MATCH ?")
        args.append(names)
    if words:
        parts.append("SELECT rowid AS id FROM note_index WHERE note_index MATCH ?")
        args.append(" OR ".join(plans[w].note for w in words))
    return " UNION ALL ".join(parts), args


def _folder_rows(plans: dict[str, _Plan], words: Sequence[str]) -> tuple[str, list[str]]:
    """A SELECT of the folders whose path may hold every word (unchecked: a check of every folder here would cost a
    common word's thousands of folders before the first entry is read)."""
    return "SELECT rowid FROM folder_index WHERE folder_index MATCH ?", [" AND ".join(plans[w].folder for w in words)]


def _over(rows: str) -> str:
    """Entries `e` of the ids `rows` gives, to be checked."""
    return f"SELECT e.id AS id FROM ({rows}) AS s JOIN entries e ON e.id = s.id{_TEXT_IF_CHECKED} WHERE 1"


def _sources(
    conn: sqlite3.Connection, terms: list[str], facets: str, scope: str, sample: int = FOLDER_SAMPLE
) -> list[tuple[str, list[Any]]]:
    """SELECTs of entry ids (with their arguments) that together give exactly the entries holding every term.

    Each term is in the entry's own row (its name or note) or in its folder's path: one SELECT per way of
    placing the (three longest) terms; what the indexes give is checked, and a term an index cannot find alone is
    checked row by row. In the order they are best read in when a search stops at its first matches: one word's
    matches in names first; for several words, those of the fewest folders first (words rarely meet in one name,
    and an index that intersects their matches in names reads them all to find that out).
    """
    def checked(rows: str, exact: Sequence[str], own: Sequence[str] = ()) -> tuple[str, list[Any]]:
        """`rows` with a check of each term not in `exact`: in the entry's name or note alone for those in `own` (a
        source of their own reads them in folders' paths), in its name alone for a search of names, else in its path
        or note."""
        checks = [_check(t, "own" if t in own else scope) for t in terms if t not in exact]
        in_path = scope != "name" and any(t not in exact and t not in own for t in terms)  # joins that cost a lookup
        rows = rows.replace(_TEXT_IF_CHECKED, _WITH_TEXT if in_path else _NOTE if checks and scope != "name" else "")
        return rows + "".join(f" AND {sql}" for sql, _ in checks), [a for _, args in checks for a in args]

    plans = {t: plan for t in terms if (plan := _in_indexes(t)) is not None}
    indexed = sorted(plans, key=len, reverse=True)[:3]
    if scope == "name":
        if any("/" in t for t in terms):
            return []  # no name holds a '/'
        match = _names(plans, indexed, facets)
        if not match:
            return [checked(f"SELECT e.id AS id FROM entries e{_TEXT_IF_CHECKED} WHERE 1", [])]
        sql, rest = checked(_over("SELECT rowid AS id FROM search_index WHERE search_index MATCH ?"), [])
        return [(sql, [match, *rest])]
    if not indexed:
        if facets:
            sql, rest = checked(_over("SELECT rowid AS id FROM search_index WHERE search_index MATCH ?"), [])
            return [(sql, [facets, *rest])]
        return [checked(f"SELECT e.id AS id FROM entries e{_TEXT_IF_CHECKED} WHERE 1", [])]
    sources: list[tuple[tuple[int, int], str, list[Any]]] = []  # (the order to read them in, SQL, arguments)
    several = len(indexed) > 1
    for mask in range(1 << len(indexed)):
        in_folder = [t for i, t in enumerate(indexed) if mask >> i & 1]
        in_entry = [t for t in indexed if t not in in_folder]
        own = [t for t in in_entry if "/" not in t]  # checked in the entry's name or note (the others in its path too)
        if not in_folder:
            rows, args = _own_rows(plans, in_entry, facets)
            sql, rest = checked(_over(rows), [], own)
            sources.append(((1 if several else 0, 0), sql, [*args, *rest]))
            continue
        in_folders, folder_args = _folder_rows(plans, in_folder)
        folders = 1  # one word: its folders' entries come after its names, however many
        if several or facets:  # (folders the index gives: an estimate, never below the true count)
            folders = conn.execute(f"SELECT count(*) FROM ({in_folders})", folder_args).fetchone()[0]
            if folders == 0:
                continue
        if (in_entry or facets) and folders > FOLDER_DRIVEN:  # walk the entries' own matches, in the folders' set
            rows, args = _own_rows(plans, in_entry, facets)
            sql, rest = checked(_over(rows) + f" AND e.parent_id IN ({in_folders})", [], own)
            sources.append(((1, folders), sql, [*args, *folder_args, *rest]))
            continue
        # Else read the entries of the folders that match, folder by folder (each folder's path checked once, as it is
        # reached: a search that stops at its first matches checks only the folders it reads), the other terms checked.
        plain = [t for t in in_folder if "/" not in t]
        plain_args = [a for t in plain for a in _holding(t)]
        by_folder = (
            "folder_index f JOIN directory_paths d ON d.entry_id = f.rowid JOIN entries e ON e.parent_id = f.rowid"
            "{text} WHERE folder_index MATCH ?" + "".join(f" AND {_holds('d.path')}" for _ in plain)
        )
        sql, rest = checked(f"SELECT e.id AS id FROM {by_folder.format(text=_TEXT_IF_CHECKED)}", plain, own)
        sources.append(((2 if several else 1, folders), sql, [*folder_args, *plain_args, *rest]))
        if several:  # a first look at a few of their entries, before any source that may read many
            # (their names as the index by folder holds them, beside the ids: a lookup of each row costs 3x its check)
            sql, rest = checked(
                f"SELECT e.id AS id FROM (SELECT e.id, e.parent_id, e.name FROM {by_folder.format(text='')}"
                f" LIMIT {sample}) AS e{_TEXT_IF_CHECKED} WHERE 1",
                plain,
                own,
            )
            sources.append(((0, folders), sql, [*folder_args, *plain_args, *rest]))
    return [(sql, args) for _, sql, args in sorted(sources, key=lambda source: source[0])]


def _select(
    conn: sqlite3.Connection, terms: list[str], where: list[str], params: list[Any], facets: str, scope: str,
    limit: int, order: str, sample: int = FOLDER_SAMPLE,
) -> list[tuple]:
    """Rows of entries matching every term (in the name, or in the path or note when scope is 'any') and filters
    (`sample`: how many entries of the folders holding some words are looked at first)."""
    if not terms and not facets:
        sources: list[tuple[str, list[Any]]] = [("SELECT e.id AS id FROM entries e WHERE 1", [])]
    else:
        sources = _sources(conn, terms, facets, scope, sample)
    clauses = " AND ".join(["e.parent_id IS NOT NULL", *where])
    try:
        if order:  # sort every match on the entries alone, then look up the paths of the few kept
            sources = [(sql, args) for sql, args in sources if f"LIMIT {sample})" not in sql]  # no first looks
            union = " UNION ".join(  # each source filtered first: their union holds only what matches
                f"SELECT e.id AS id FROM ({sql}) AS c JOIN entries e ON e.id = c.id WHERE {clauses}" for sql, _ in sources
            )
            sql = (
                f"SELECT {_COLUMNS} FROM (SELECT e.id AS id FROM ({union or 'SELECT NULL AS id WHERE 0'}) AS u"
                f" JOIN entries e ON e.id = u.id {order} LIMIT ?) AS top JOIN entries e ON e.id = top.id"
                f" JOIN directory_paths p ON p.entry_id = e.parent_id {order}"
            )
            return conn.execute(sql, [*(a for _, args in sources for a in [*args, *params]), limit]).fetchall()
        rows: list[tuple] = []
        seen: set[int] = set()
        for source, args in sources:  # one after the other, stopping once `limit` are found
            cursor = conn.execute(
                f"SELECT {_COLUMNS} FROM ({source}) AS c JOIN entries e ON e.id = c.id"
                f" JOIN directory_paths p ON p.entry_id = e.parent_id WHERE {clauses}",
                [*args, *params],
            )
            for row in cursor:
                if row[0] not in seen:
                    seen.add(row[0])
                    rows.append(row)
                    if len(rows) == limit:
                        cursor.close()
                        return rows
        return rows
    except sqlite3.OperationalError as exc:  # never show an SQL error for a user's text
        raise SearchError(f"this search could not run ({exc}); try simpler text") from None


def _ext_facets(extensions: tuple[str, ...]) -> str:
    """The --ext filter as a query of the index's ext column (met inside the index, with the text)."""
    exts = [to_db(x.strip().rpartition(".")[2].lower()) for x in extensions]
    if not exts or not all(exts):
        return ""
    # (its own token: U+E000 ext U+E000, trigrams no name holds; the extension is checked too, in `_filters`)
    return "(" + " OR ".join(f"({_trigrams(chr(0xE000) + x + chr(0xE000))})" for x in exts) + ")"


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _terms(text: str) -> list[str]:
    return [fold(to_db(t)) for t in text.replace("\0", " ").split()]


def _filters(
    conn: sqlite3.Connection, library: Library, query: Query, locations: dict[int, Location]
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []

    def any_of(column: str, values: Sequence[Any]) -> None:
        where.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)

    if query.ext:
        any_of("e.extension", [to_db(x.strip().rpartition(".")[2].lower()) for x in query.ext])  # tar.gz: gz
    if query.kind:
        kinds = [k.strip().lower() for k in query.kind]
        kinds = ["dir" if k in ("directory", "folder") else k for k in kinds]
        unknown = [k for k in kinds if k not in ENTRY_KINDS and k not in _object_kinds()]
        if unknown:
            known = ", ".join(sorted(_object_kinds())) + ", " + ", ".join(ENTRY_KINDS)
            raise SearchError(f"no kind {unknown[0]!r}; use one of {known}")
        entry_kinds = [k for k in kinds if k in ENTRY_KINDS]
        object_kinds = [k for k in kinds if k not in ENTRY_KINDS]
        parts = []
        if entry_kinds:
            parts.append(f"e.kind IN ({','.join('?' * len(entry_kinds))})")
        if object_kinds:
            parts.append(f"e.object_kind IN ({','.join('?' * len(object_kinds))})")
        where.append("(" + " OR ".join(parts) + ")")
        params.extend(entry_kinds + object_kinds)
    if query.tags:
        from sdcore import tags

        ids: list[int] = []
        for name in query.tags:
            ids.extend(tags.ids_under(conn, name))
        marks = ",".join("?" * len(ids))
        where.append(
            f"(e.id IN (SELECT entry_id FROM tag_assignments WHERE tag_id IN ({marks}) AND entry_id IS NOT NULL)"
            f" OR e.content_id IN (SELECT c.id FROM tag_assignments a JOIN content_identities c ON c.cas_id = a.cas_id"
            f" WHERE a.tag_id IN ({marks})))"
        )
        params.extend(ids + ids)
    if query.favorites:
        where.append("e.id IN (SELECT entry_id FROM user_metadata WHERE favorite)")
    if query.min_size is not None:
        where.append("e.size >= ?")
        params.append(query.min_size)
    if query.max_size is not None:
        where.append("e.size <= ?")
        params.append(query.max_size)
    if query.modified_after is not None:
        where.append("e.mtime >= ?")
        params.append(parse_when(query.modified_after))
    if query.modified_before is not None:
        where.append("e.mtime < ?")
        params.append(parse_when(query.modified_before))
    if query.device is not None:
        where.append("e.location_id IN (SELECT id FROM locations WHERE device_id = ?)")
        params.append(str(query.device))
    if query.location is not None:  # (its id on `conn`: on a catalogue, its owner's)
        wanted = library.locations.get(query.location).id
        where.append("e.location_id = ?")
        params.append(next((id for id, loc in locations.items() if loc.id == wanted), wanted))
    return where, params


def _object_kinds() -> set[str]:
    from sdcore.index import kinds

    return set(getattr(kinds, "_BY_EXTENSION", {}).values()) | {m[2] for m in getattr(kinds, "_MAGIC", [])} | {"text"}


def _hit(row: tuple, locations: dict[int, Location], slot: int | None = None) -> Hit:
    """A row of `_COLUMNS` as a hit (`slot`: a kept catalogue's, its id made global)."""
    entry_id, location_id, relative, name, kind, object_kind, size, mtime = row
    if slot is not None:
        entry_id = catalogue_store.global_id(slot, entry_id)
    loc = locations[location_id]
    rel = from_db(relative)
    return Hit(entry_id, loc.id, loc.absolute(rel), rel, from_db(name), kind, object_kind, size, mtime, loc.device_id)


# -- parsing filter values ----------------------------------------------------------------------------

_SPANS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_when(value: float | str) -> float:
    """A moment: a timestamp, a date ('2024-05-01', '2024-05-01T13:00') or an age ('3d', '2w', '12h' ago)."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdwy])", text.lower())
    if m:
        return time.time() - float(m.group(1)) * _SPANS[m.group(2)]
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return time.mktime(time.strptime(text, fmt))
        except ValueError:
            continue
    try:
        return float(text)
    except ValueError:
        raise SearchError(f"{value!r} is not a date; write it like 2024-05-01, 2024-05-01T13:00, or an age: 3d, 2w, 12h") from None


# -- saved searches -----------------------------------------------------------------------------------


def save(library: Library, name: str, query: Query, replace: bool = False) -> SavedSearch:
    """Keep a query under a name."""
    name = name.strip()
    if not name:
        raise SearchError("a saved search needs a name")
    with library.write() as db:
        exists = db.execute("SELECT 1 FROM saved_searches WHERE name = ?", (name,)).fetchone()
        if exists and not replace:
            raise AlreadyExists(f"a saved search named {name!r} exists already; pick another name or delete it first")
        library.sync.set_search(db, name, query.to_json())
    library.sync.tell()
    return get_saved(library, name)


def saved(library: Library) -> builtins.list[SavedSearch]:
    """Every saved search, by name."""
    rows = library.read().execute("SELECT name, query, created FROM saved_searches ORDER BY name COLLATE NOCASE")
    return [SavedSearch(name, Query.from_json(q), created) for name, q, created in rows]


def get_saved(library: Library, name: str) -> SavedSearch:
    row = library.read().execute("SELECT name, query, created FROM saved_searches WHERE name = ?", (name.strip(),)).fetchone()
    if row is None:
        raise NotFound(f"no saved search named {name!r}; `sd search --saved` lists them")
    return SavedSearch(row[0], Query.from_json(row[1]), row[2])


def forget(library: Library, name: str) -> None:
    """Delete a saved search."""
    get_saved(library, name)
    with library.write() as db:
        library.sync.set_search(db, get_saved(library, name).name, None)
    library.sync.tell()


def incomplete(library: Library) -> builtins.list[str]:
    """A line for each location whose first index has not finished (search sees only part of it): what to do."""
    jobs: dict[int | None, Any] = {}
    for record in library.jobs.list(states=("queued", "running", "paused", "interrupted", "failed")):
        if record.kind == "index":
            jobs.setdefault(record.location_id, record)  # the newest
    lines = []
    for loc in library.locations.list():
        if loc.last_scanned is not None or loc.device_id != library.locations.device_id:
            continue
        count = library.read().execute("SELECT count(*) FROM entries WHERE location_id = ?", (loc.id,)).fetchone()[0]
        seen = f"search sees the {max(count - 1, 0):,} entries indexed so far"
        job = jobs.get(loc.id)
        if job is not None and job.state in ("queued", "running"):
            lines.append(f"location {loc.name!r} is being indexed for the first time: {seen}")
        else:
            why = {"paused": "was paused", "interrupted": "was cut off", "failed": "failed"}.get(
                job.state if job else "", "has not run"
            )
            lines.append(
                f"location {loc.name!r} is not fully indexed (its first index {why}): {seen}; "
                f"`sd location rescan {typed(loc.name)}` finishes it"
            )
    return lines
