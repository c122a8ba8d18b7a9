"""`sd location ...`, `sd ls` and `sd index ...`: locations, listings and indexing."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import typer

from sdcore.api import count, human_size, name_order
from sdcore.errors import NotFound, SdError
from sdcore.sdpath import SdPath, display, from_db
from sdtui.cli.common import (
    JsonOpt,
    fail,
    here,
    print_json,
    print_table,
    run_api,
    shell_word,
)
from sdtui.cli.progress import exit_unless_completed, follow, refuse_background

location_app = typer.Typer(help="Folders a library indexes.", no_args_is_help=True)
index_app = typer.Typer(help="Index or scan folders.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(location_app, name="location")
    app.add_typer(index_app, name="index")
    app.command("ls")(ls)


BackgroundOpt = typer.Option(False, "--background", help="Start the job and return at once.")


async def _index(api: Any, location: Any, background: bool, json: bool, *, confirm_drop: bool = False) -> None:
    job_id = (await api.library().locations.index(location.id, confirm_drop=confirm_drop)).id
    if background:
        print_json({"job": job_id}) if json else print(f"indexing in job {job_id}")
        return
    record = await follow(api, job_id, quiet=json)
    if json:
        print_json({"job": job_id, "state": record.state, **(record.result.to_dict() if record.result else {})})
    elif record.state == "completed":
        r = record.result
        print(
            f"indexed {location.name}: {r.found:,} entries in {r.dirs:,} folders "
            f"({r.added:,} new, {r.changed:,} changed, {r.moved:,} moved, {r.removed:,} removed, "
            f"{r.hashed:,} hashed, {r.errors:,} unreadable)"
        )
    exit_unless_completed(record)


@location_app.command("add")
def location_add(
    path: str,
    mode: str = typer.Option(
        None, "--mode", "-m", help="shallow (metadata), content (+cas_id, the default), deep (+media)."
    ),
    name: str = typer.Option(None, "--name", help="A name for the location (default: the folder's)."),
    ignore: list[str] = typer.Option([], "--ignore", help="A glob not to index (repeatable), e.g. .git or node_modules."),
    background: bool = BackgroundOpt,
    json: bool = JsonOpt,
) -> None:
    """Add a folder to the library and index it (Ctrl-C pauses; running this again resumes)."""
    refuse_background(background)
    _checked(mode)

    async def body(api: Any) -> None:
        locations = api.library().locations
        folder = os.path.abspath(os.path.expanduser(here(path)))
        location = await locations.containing(SdPath(api.device.id, folder))
        if location is not None and location.path == folder:  # added before: carry on with its index
            if mode is not None and mode != location.mode:
                fail(
                    f"{display(path)} is a location already, indexed in {location.mode} mode; "
                    f"`sd location mode {shell_word(path)} {mode}` changes its mode"
                )
        else:
            location = await locations.add(here(path), mode=mode or "content", name=name, ignore=ignore)
            if not json:
                print(f"added location {location.id} ({location.name}) in {location.mode} mode")
        await _index(api, location, background, json)

    run_api(body)


@location_app.command("list")
def location_list(json: bool = JsonOpt) -> None:
    """List the library's locations."""

    async def body(api: Any) -> None:
        lib = api.library()
        rows = []
        shown: dict[int, str] = {}  # another device's location (from its catalogue) as `alpha:/photos`
        state: dict[int, str] = {}  # a location on a disk that is out: `offline — LABEL, last seen DATE`
        decisions: list[str] = []  # locations on disks whose rescan waits for a person (see UNCONFIRMED)
        for loc in await lib.locations.list():
            details = await lib.entries.details(SdPath(loc.device_id, loc.path))
            rows.append((loc, details.size if details else 0, (details.files or 0) if details else 0))
            here_ = loc.device_id == api.device.id or loc.device_id.int == 0
            shown[loc.id] = loc.path if here_ else await api.label(SdPath(loc.device_id, loc.path))
            offline = await api.offline(SdPath(loc.device_id, loc.path)) if here_ and loc.volume_id else None
            state[loc.id] = offline.describe() if offline is not None else loc.scan_state
            if offline is None and loc.undecided:
                state[loc.id] = "needs a decision"
                decisions.append(loc.decision())
        if json:
            print_json([
                {"id": loc.id, "name": loc.name, "path": loc.path, "mode": loc.mode, "state": state[loc.id],
                 "volume_id": loc.volume_id, "volume_label": loc.volume_label,
                 "files": files, "size": size, "ignore": list(loc.ignore), "last_scanned": loc.last_scanned,
                 "device_id": str(loc.device_id)}
                for loc, size, files in rows
            ])
            return
        print_table(
            ("id", "name", "path", "mode", "state", "files", "size", "scanned"),
            [
                (loc.id, loc.name, shown[loc.id], loc.mode, state[loc.id], f"{files:,}", human_size(size),
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(loc.last_scanned)) if loc.last_scanned else "never")
                for loc, size, files in rows
            ],
        )
        for text in decisions:
            print(text)

    run_api(body)


@location_app.command("rescan")
def location_rescan(
    location: str,
    confirm_drop: bool = typer.Option(
        False, "--confirm-drop", help="A location on a disk waiting for a decision: it is the same disk, forget "
        "what is not on it (most of what was indexed).",
    ),
    background: bool = BackgroundOpt,
    json: bool = JsonOpt,
) -> None:
    """Index a location again (only what changed is written)."""
    refuse_background(background)

    async def body(api: Any) -> None:
        await _index(api, await _location(api, location), background, json, confirm_drop=confirm_drop)

    run_api(body)


@location_app.command("mode")
def location_mode(
    location: str = typer.Argument(..., help="The location: its id, name or path."),
    mode: str = typer.Argument(..., help="shallow (metadata), content (+cas_id) or deep (+media)."),
    background: bool = BackgroundOpt,
    json: bool = JsonOpt,
) -> None:
    """Index a location in another mode, from now on: it is indexed again at once (only what is new is added)."""
    _checked(mode)

    async def body(api: Any) -> None:
        loc = await api.library().locations.set_mode((await _location(api, location)).id, mode)
        if not json:
            print(f"location {loc.id} ({loc.name}) is indexed in {loc.mode} mode now")
        await _index(api, loc, background, json)

    run_api(body)


def _checked(mode: str | None) -> None:
    """A bogus index mode is refused before anything is done."""
    from sdcore.api import check_index_mode  # the library's modules: not for `sd ls` nor a quick scan

    try:
        if mode is not None:
            check_index_mode(mode)
    except SdError as exc:
        fail(str(exc))


async def _location(api: Any, key: str) -> Any:
    """A location by id, name or path; a relative path is taken from where `sd` ran."""
    locations = api.library().locations
    try:
        return await locations.get(key)
    except NotFound as exc:
        try:
            return await locations.get(here(key))
        except NotFound:
            raise exc from None


@location_app.command("remove")
def location_remove(location: str) -> None:
    """Forget a location and its index (the files are not touched)."""

    async def body(api: Any) -> None:
        removed = await api.library().locations.remove(location)
        print(f"removed location {removed.id} ({removed.name}); its files are untouched")

    run_api(body)


@location_app.command("ignore")
def location_ignore(location: str, patterns: list[str] = typer.Argument(None)) -> None:
    """Set the globs a location does not index (none: show them). Rescan to apply."""

    async def body(api: Any) -> None:
        locations = api.library().locations
        loc = await locations.get(location)
        if patterns:
            await locations.set_ignore(loc.id, patterns)
            print(f"location {loc.name} ignores {', '.join(patterns)}; `sd location rescan {loc.id}` applies it")
        else:
            print("\n".join(loc.ignore) or "(nothing ignored)")

    run_api(body)


def _entry_row(e: Any) -> tuple:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.mtime)) if e.mtime else ""
    size = count(e.files, "file") if e.kind == "dir" and e.files is not None else ("" if e.kind == "dir" else human_size(e.size))
    if not e.looked_at:
        size = when = "?"
    name = e.name + ("/" if e.kind == "dir" else "") + (f" -> {e.link_target}" if e.link_target else "")
    return (name, e.kind if e.kind != "file" else (e.object_kind or "file"), size, when, e.cas_id or "")


def ls(
    path: str = typer.Argument(".", help="A directory: a local path, DEVICE:/path or sd://DEVICE_ID/path."),
    json: bool = JsonOpt,
    all_: bool = typer.Option(False, "--all", "-a", help="Show hidden entries."),
) -> None:
    """List a directory: from the index inside a location, read from disk (nothing written) elsewhere."""

    async def body(api: Any) -> None:
        target = await api.resolve(here(path))
        offline = await api.offline(target)
        if offline is not None:  # listed from the library's catalogue of that device
            source = "the index" if offline.volume else "the catalogue"
            print(f"{await api.label(target)}: {offline.describe()} (from {source}, read-only)",
                  file=sys.stderr if json else sys.stdout)  # fmt: skip
        entries = [e async for batch in api.browse(target, index=True) for e in batch]
        if not all_:
            entries = [e for e in entries if not e.hidden]
        entries.sort(key=lambda e: (e.kind != "dir", name_order(e.name)))
        if json:
            print_json([e.to_json() for e in entries])
        else:
            print_table(("name", "kind", "size", "modified", "cas_id"), (_entry_row(e) for e in entries))

    run_api(body)


@index_app.command("quick-scan")
def quick_scan(
    path: str,
    scope: str = typer.Option("current", "--scope", help="current (one level) or recursive."),
    ephemeral: bool = typer.Option(False, "--ephemeral", help="Write nothing to the library."),
    json: bool = JsonOpt,
) -> None:
    """Scan a folder now: ephemerally (listing only), or into the index when it is inside a location."""
    if scope not in ("current", "recursive"):
        fail(f"unknown scope {scope!r}; use current or recursive")
    if ephemeral:
        _quick_scan_ephemeral(path, scope == "recursive", json)
        return

    async def body(api: Any) -> None:
        locations = api.library().locations
        target = SdPath(api.device.id, os.path.abspath(os.path.expanduser(here(path))))
        loc = await locations.containing(target)
        if loc is None:
            fail(f"{display(target.path)} is in no location; add it with `sd location add`, or use --ephemeral")
        job = await locations.index(loc.id, scope=scope, below=target)
        record = await follow(api, job.id, quiet=json)
        counts = record.result.to_dict() if record.result else None
        print_json(counts) if json else print(counts)

    run_api(body)


def _quick_scan_ephemeral(path: str, recursive: bool, json: bool) -> None:
    """Stream a listing straight from disk: no core, no library, so it starts in a blink."""
    from sdcore.errors import SdError
    from sdcore.index.listing import scan_ephemeral_found

    directory = os.path.abspath(os.path.expanduser(here(path)))
    out = sys.stdout
    listed = 0
    try:
        if json:
            out.write("[")
        for parent, found in scan_ephemeral_found(directory, recursive):
            prefix = display(parent).rstrip("/") + "/"
            for start in range(0, len(found), _PIECE):
                piece = found[start : start + _PIECE]
                if json:
                    out.write((", " if listed else "") + ", ".join(_json_objects(parent, piece)))
                else:
                    out.write("".join(prefix + display(from_db(f[0])) + ("/\n" if f[2] == "dir" else "\n") for f in piece))
                listed += len(piece)
        if json:
            out.write("]\n")
    except SdError as exc:
        fail(str(exc))
    if not json:
        print(count(listed, "entry", "entries"), file=sys.stderr)


_PIECE = 2000
"""Entries written at a time: a 100,000-entry folder's output made whole is 20 MB of fresh memory, whose page
faults cost more CPU than its formatting."""


def _json_objects(parent: str, found: list[tuple]) -> Iterator[str]:
    """Each found entry as the JSON object `Entry.to_json` would give, written by hand: 100,000 dicts through
    json.dumps took three times as long as reading the directory."""
    from json.encoder import encode_basestring_ascii as quoted  # type: ignore[attr-defined]

    prefix = quoted(parent.rstrip("/") + "/")[:-1]
    for name, _ext, kind, object_kind, size, inode, mtime, _mode, hidden, link in found:
        name = quoted(name if name.isascii() else from_db(name))  # (most names are: no call for them)
        more = f', "object_kind": "{object_kind}"' if object_kind else ""
        if link:
            more += f', "link_target": {quoted(from_db(link))}'
        yield (f'{{"name": {name}, "path": {prefix}{name[1:]}, "kind": "{kind}", "size": {size}, '
               f'"mtime": {mtime!r}, "inode": {inode}, "hidden": {"true" if hidden else "false"}{more}}}')
