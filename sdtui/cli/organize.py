"""`sd tag ...`, `sd note`, `sd fav`, `sd search` and `sd dupes`: organize and find files."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from sdcore.api import Entry, count, human_size, parse_size
from sdcore.errors import NotFound, SdError
from sdcore.sdpath import SCHEME, SdPath, display, split_remote
from sdtui.cli.common import JsonOpt, fail, here, print_json, print_table, run_api

if TYPE_CHECKING:  # what the library's and search's modules give (asyncio, SQLite): loaded when a command needs them
    from collections.abc import Sequence

    from sdcore.api import Duplicates, Query, TaggedFile

tag_app = typer.Typer(help="Tags: named, coloured labels, nested with '/', on files or on their content.", no_args_is_help=True)

PathsArg = typer.Argument(..., help="Files or folders: local paths, DEVICE:/path or sd://DEVICE_ID/path.")
ContentOpt = typer.Option(False, "--content", help="On the content (cas_id): every copy of the file shows the tag.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main `sd` app."""
    app.add_typer(tag_app, name="tag")
    app.command("note")(note)
    app.command("fav")(fav)
    app.command("search")(search_cmd)
    app.command("dupes")(dupes)


async def _indexed(api: Any, paths: list[str]) -> list[SdPath]:
    """The paths as typed, each known to the library: a file the index has not reached yet is indexed first, and the
    folder of a file outside every location made a location (each said so), on the file's device."""
    from sdcore.api import NotIndexed, NotInLibrary

    entries = api.library().entries
    targets = []
    for text in paths:
        target = await api.resolve(here(text))
        try:
            await entries.at(target)
        except (NotIndexed, NotInLibrary):
            for location in await entries.make_known(target):
                where = await _shown_path(api, SdPath(location.device_id, location.path))
                print(f"added {where} as location {location.name!r}", file=sys.stderr)
            print(f"indexed {await _shown_path(api, target)}", file=sys.stderr)
        targets.append(target)
    return targets


async def _shown_path(api: Any, path: SdPath) -> str:
    """A path as `sd` takes it: as it is on this device, `beta:/photos` on another."""
    return display(path.path) if path.device_id == api.device.id else await api.label(path)


async def _known(api: Any, text: str) -> SdPath | None:
    """The path as typed, if the library knows it (another device's: left to the library); None for a file of
    this device the library has not indexed. Nothing is indexed or added: reading never writes."""
    from sdcore.api import NotIndexed, NotInLibrary

    target = await api.resolve(here(text))
    if target.device_id != api.device.id:
        return target
    try:
        await api.library().entries.at(target)
    except (NotIndexed, NotInLibrary):
        if not os.path.lexists(target.path):  # a typo is said, not answered "no note"
            raise NotFound(f"{display(target.path)} does not exist") from None
        return None
    return target


def _print_history(json: bool, records: list[dict], empty: str, headers: tuple[str, ...], rows: Any, hint: str) -> None:
    """A history (of a note, of tags): as JSON records, else a table and a hint on how to put one back."""
    if json:
        print_json(records)
    elif not records:
        print(empty)
    else:
        print_table(headers, rows)
        print(hint, file=sys.stderr)


def _when(mtime: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime)) if mtime else ""


# -- tags ----------------------------------------------------------------------------------------------


def _tag_json(t: Any) -> dict:
    return {"id": t.id, "name": t.name, "color": t.color, "entries": t.entries, "contents": t.contents, "created": t.created}


@tag_app.command("create")
def tag_create(
    name: str = typer.Argument(..., help="The tag; nest with '/': work/clients/acme."),
    color: str = typer.Option(None, "--color", "--colour", help="#rrggbb, #rgb or a colour name."),
    json: bool = JsonOpt,
) -> None:
    """Create a tag (and its parents)."""

    async def body(api: Any) -> None:
        tag = await api.library().tags.create(name, color)
        print_json(_tag_json(tag)) if json else print(f"created tag {tag.name}")

    run_api(body)


@tag_app.command("list")
def tag_list(json: bool = JsonOpt) -> None:
    """List the tags as a tree, with how many files and contents carry each."""

    async def body(api: Any) -> None:
        listed = await api.library().tags.list()
        if json:
            print_json([_tag_json(t) for t in listed])
            return
        print_table(
            ("tag", "colour", "files", "contents"),
            (("  " * t.depth + t.leaf, t.color or "", t.entries, t.contents) for t in listed),
        )

    run_api(body)


@tag_app.command("rename")
def tag_rename(name: str, new_name: str) -> None:
    """Rename a tag (nested tags move with it)."""

    async def body(api: Any) -> None:
        tag = await api.library().tags[name].rename(new_name)
        print(f"renamed tag {name} to {tag.name}")

    run_api(body)


@tag_app.command("color")
def tag_color(name: str, color: str = typer.Argument(..., help="#rrggbb, #rgb, a colour name, or 'none'.")) -> None:
    """Recolour a tag."""

    async def body(api: Any) -> None:
        tag = await api.library().tags[name].recolor(color)
        print(f"tag {tag.name} is now {tag.color or 'without colour'}")

    run_api(body)


@tag_app.command("delete")
def tag_delete(name: str, recursive: bool = typer.Option(False, "--recursive", "-r", help="Nested tags too.")) -> None:
    """Delete a tag and take it off every file (the files are not touched)."""

    async def body(api: Any) -> None:
        deleted = await api.library().tags[name].delete(recursive)
        print(f"deleted {count(deleted, 'tag')}")

    run_api(body)


@tag_app.command("add")
def tag_add(tag: str, paths: list[str] = PathsArg, content: bool = ContentOpt) -> None:
    """Tag files or folders."""

    async def body(api: Any) -> None:
        tagging = api.library().tags[tag]
        await tagging.get()  # made by `sd tag create`, not by a typo here
        tagged = await tagging.add(*await _indexed(api, paths), content=content)
        print(f"tagged {_things(tagged, content)} with {tag}")

    run_api(body)


@tag_app.command("rm")
def tag_rm(tag: str, paths: list[str] = PathsArg, content: bool = ContentOpt) -> None:
    """Take a tag off files or folders."""

    async def body(api: Any) -> None:
        removed = await api.library().tags[tag].remove(*await _indexed(api, paths), content=content)
        print(f"removed {tag} from {_things(removed, content)}")

    run_api(body)


@tag_app.command("history")
def tag_history(path: str = typer.Argument(..., help="A file or folder."), json: bool = JsonOpt) -> None:
    """The tags put on and taken off a file (and its content), on any device of the library."""

    async def body(api: Any) -> None:
        target = await _known(api, path)
        changes = await api.library().tags.history(target) if target is not None else []
        _print_history(
            json, [{"tag": c.tag, "added": c.added, "content": c.content, "when": c.when, "device": c.device} for c in changes],
            f"no tag was ever put on {display(path)}", ("when", "device", "change", "on"),
            ((_when(c.when), c.device, ("+" if c.added else "-") + c.tag, "content" if c.content else "file") for c in changes),
            f"`sd tag add TAG {path}` puts one back",
        )  # fmt: skip

    run_api(body)


def _things(number: int, content: bool) -> str:
    """`1 entry`, `3 entries`, or `2 contents` when the tag went on the content."""
    return count(number, "content") if content else count(number, "entry", "entries")


@tag_app.command("show")
def tag_show(
    tag: str,
    json: bool = JsonOpt,
    exact: bool = typer.Option(False, "--exact", help="Only this tag, not the tags nested below it."),
) -> None:
    """List the files carrying a tag (or a tag nested below it), directly or through their content."""

    async def body(api: Any) -> None:
        found = await api.library().tags[tag].tagged(nested=not exact)
        devices = await _devices_of(api, found)
        rows = sorted((_shown(api, devices, t.path), t.tag, "content" if t.via_content else "file", t.path) for t in found)
        if json:
            print_json([{"path": p.path, **_device_json(devices, p), "tag": t, "via": via} for _, t, via, p in rows])
        else:
            print_table(("path", "tag", "on"), (row[:3] for row in rows))

    run_api(body)


# -- notes and favourites ------------------------------------------------------------------------------


def note(
    path: str = typer.Argument(..., help="A file or folder."),
    text: str = typer.Argument(None, help="The note; without it the note is shown."),
    clear: bool = typer.Option(False, "--clear", help="Remove the note."),
    history: bool = typer.Option(False, "--history", help="Every text the note held, on any device, numbered."),
    restore: int = typer.Option(None, "--restore", metavar="N", help="Put back the text numbered N by --history."),
    json: bool = JsonOpt,
) -> None:
    """Write, show or clear the note of a file (notes are searched with names); nothing written is lost."""

    async def body(api: Any) -> None:
        notes = api.library().notes
        if history or (text is None and not clear and restore is None):  # reading: nothing is indexed for it
            target = await _known(api, path)
            if not history:
                current = await notes.get(target) if target is not None else None
                if current is not None:
                    print("\n".join(display(line) for line in current.split("\n")))  # another device may have written it
                else:
                    print(f"no note on {display(path)}")
                return
            versions = await notes.history(target) if target is not None else []
            _print_history(
                json, [{"number": v.number, "text": v.text, "when": v.when, "device": v.device, "current": v.current}
                       for v in versions],
                f"no note was ever written on {display(path)}", ("#", "written", "device", "note"),
                ((f"{v.number}{'*' if v.current else ''}", _when(v.when), v.device,
                  "(cleared)" if v.text is None else v.text.replace("\n", " ")) for v in reversed(versions)),
                f"* holds now; `sd note {path} --restore N` puts back another",
            )  # fmt: skip
            return
        [target] = await _indexed(api, [path])
        if restore is not None:
            now = await notes.restore(target, restore)
            print(f"put back note {restore} of {path}" + ("" if now is not None else " (a cleared note: none now)"))
            return
        await notes.set(target, None if clear else text)
        print(f"{'cleared the note of' if clear else 'noted'} {path}")

    run_api(body)


def fav(
    paths: list[str] = typer.Argument(None, help="Files or folders; without any, the favourites are listed."),
    remove: bool = typer.Option(False, "--remove", "-r", help="Unmark them."),
    json: bool = JsonOpt,
) -> None:
    """Mark files as favourites, unmark them, or list the favourites."""

    async def body(api: Any) -> None:
        favourites = api.library().favourites
        if paths:
            changed = await favourites.set(*await _indexed(api, paths), favourite=not remove)
            print(f"{'unmarked' if remove else 'marked'} {count(changed, 'favourite')}")
            return
        listed = await favourites.list()
        devices = await _devices_of(api, listed)
        if json:
            print_json([{"entry_id": e.entry_id, "path": e.path.path, **_device_json(devices, e.path)} for e in listed])
        else:
            for e in listed:
                print(_shown(api, devices, e.path))

    run_api(body)


# -- search --------------------------------------------------------------------------------------------


def _many(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for value in values or () for v in value.split(",") if v.strip())


def _shown(api: Any, devices: dict[Any, tuple[str, bool]], path: SdPath) -> str:
    """A path as `sd` takes it: as it is on this device, `beta:/photos/a.jpg` on another (`devices`: `_devices_of`)."""
    return display(path.path) if path.device_id == api.device.id else f"{devices[path.device_id][0]}:{display(path.path)}"


def _device_json(devices: dict[Any, tuple[str, bool]], path: SdPath) -> dict:
    return {"device_id": str(path.device_id), "device": devices[path.device_id][0]}


def _hit_json(h: Entry) -> dict:
    return {
        "entry_id": h.entry_id, "path": h.path.path, "name": h.name, "location_id": h.location_id, "kind": h.kind,
        "object_kind": h.object_kind, "size": h.size, "mtime": h.mtime, "device_id": str(h.path.device_id),
    }


async def _devices_of(api: Any, hits: Sequence[Entry | TaggedFile]) -> dict[Any, tuple[str, bool]]:
    """Each device of the hits: its name and whether it answers now (a device known from the catalogue may not)."""
    out: dict[Any, tuple[str, bool]] = {api.device.id: (api.device.name, True)}
    for device in {h.path.device_id for h in hits} - set(out):
        root = SdPath(device, "/")
        offline = await api.offline(root)
        out[device] = ((await api.label(root)).removesuffix(":/"), offline is None)
    return out


async def _disks_out(api: Any, library: Any, hits: list[Entry]) -> dict[int, str]:
    """The locations of this device's hits whose disk is out: `offline — LABEL, last seen DATE` by location id."""
    ids = {h.location_id for h in hits if h.path.device_id == api.device.id and h.location_id is not None}
    out: dict[int, str] = {}
    for loc in await library.locations.list() if ids else []:
        if loc.id in ids and loc.volume_id:
            offline = await api.offline(SdPath(api.device.id, loc.path))
            if offline is not None:
                out[loc.id] = offline.describe()
    return out


def search_cmd(
    words: list[str] = typer.Argument(
        None, help="Words that must all be part of the name, the path or the note; * and ? make a glob of the name."
    ),
    ext: list[str] = typer.Option(None, "--ext", help="Extension (repeatable or comma-separated): pdf,docx."),
    kind: list[str] = typer.Option(None, "--kind", help="image, video, audio, document, code, text, archive, dir..."),
    tag: list[str] = typer.Option(None, "--tag", help="Carrying this tag or one nested below it (repeatable)."),
    min_size: str = typer.Option(None, "--min-size", help="At least this size: 500, 10k, 1.5M, 2G."),
    max_size: str = typer.Option(None, "--max-size", help="At most this size."),
    modified_after: str = typer.Option(None, "--modified-after", help="A date (2024-05-01) or an age (3d, 2w, 12h)."),
    modified_before: str = typer.Option(None, "--modified-before", help="A date or an age."),
    location: str = typer.Option(None, "--location", help="Only in this location (id, name or path)."),
    favorites: bool = typer.Option(False, "--fav", help="Only favourites."),
    sort: str = typer.Option("relevance", "--sort", help="relevance, name, size (largest first) or date (newest first)."),
    reverse: bool = typer.Option(False, "--reverse", help="Reverse the order of --sort."),
    limit: int = typer.Option(100, "--limit", help="At most this many results."),
    save: str = typer.Option(None, "--save", help="Also keep this search under a name."),
    saved: bool = typer.Option(False, "--saved", help="List the saved searches."),
    run_saved: str = typer.Option(None, "--run", help="Run a saved search."),
    forget: str = typer.Option(None, "--forget", help="Delete a saved search."),
    device: str = typer.Option(
        None, "--device", help="Only files of this device of the library (or search a paired device's own library)."
    ),
    json: bool = JsonOpt,
) -> None:
    """Search the library: any part of a name or path, and notes; filters combine.

    `sd search sched core` finds names and paths holding both words; `sd search '*.c'` (quoted, or the shell
    expands it) matches names by a glob.
    """

    async def body(api: Any) -> None:
        from sdcore.api import Query

        library = api.library()
        if saved:
            listed = await library.saved.list()
            if json:
                print_json([{"name": s.name, "query": s.query.to_json(), "created": s.created} for s in listed])
            else:
                print_table(("name", "search"), ((s.name, _describe(s.query)) for s in listed))
            return
        if forget:
            await library.saved.forget(forget)
            print(f"deleted saved search {forget}")
            return
        if run_saved:
            q = (await library.saved.get(run_saved)).query
        else:
            q = Query(
                " ".join(words or ()), _many(ext), _many(kind), _many(tag),
                parse_size(min_size) if min_size is not None else None,
                parse_size(max_size) if max_size is not None else None,
                _checked_when(modified_after), _checked_when(modified_before),
                location, favorites, sort, reverse, limit,
            )
        remote = False
        if device is not None:
            asked = (await api.resolve(f"{device}:/")).device_id
            in_library = asked == api.device.id or asked in {d.id for d in await library.devices()}
            if in_library:
                q = replace(q, device=str(asked))
            remote = not in_library  # a paired device whose library this one does not share: ask it
        hits = await (api.devices.search(device, q) if remote else library.search(q))
        if save:
            await library.saved.save(save, q)
        where = await _devices_of(api, hits)
        out = await _disks_out(api, library, hits)
        if json:
            print_json([{**_hit_json(h), "device": where[h.path.device_id][0], "online": where[h.path.device_id][1],
                         "disk_offline": out.get(h.location_id)} for h in hits])  # fmt: skip
        else:
            print_table(
                ("name", "kind", "size", "modified", "device", "folder"),
                (
                    (h.name + ("/" if h.kind == "dir" else ""), h.object_kind or h.kind,
                     "" if h.kind == "dir" else human_size(h.size), _when(h.mtime),
                     where[h.path.device_id][0] + ("" if where[h.path.device_id][1] else " (offline)")
                     + (f" ({out[h.location_id]})" if h.location_id in out else ""), h.directory.path)
                    for h in hits
                ),
            )  # fmt: skip
            if save:
                print(f"saved as {save!r}", file=sys.stderr)
            if not hits and device is None and not await library.locations.list():
                print("the library has no location yet: search looks in what `sd location add PATH` indexes",
                      file=sys.stderr)
        if device is None:
            for line in await library.incomplete():
                print(line, file=sys.stderr)

    run_api(body)


def _checked_when(text: str | None) -> str | None:
    from sdcore.api import parse_when

    if text is not None:
        parse_when(text)  # a bad date fails now, not when a saved search runs
    return text


def _describe(q: Query) -> str:
    parts = [repr(q.text)] if q.text else []
    for label, values in (("ext", q.ext), ("kind", q.kind), ("tag", q.tags)):
        parts += [f"--{label} {v}" for v in values]
    for label, value in (
        ("min-size", q.min_size), ("max-size", q.max_size), ("modified-after", q.modified_after),
        ("modified-before", q.modified_before), ("location", q.location),
    ):
        if value is not None:
            parts.append(f"--{label} {value}")
    if q.favorites:
        parts.append("--fav")
    if q.sort != "relevance":
        parts.append(f"--sort {q.sort}")
    return " ".join(parts)


# -- duplicates ----------------------------------------------------------------------------------------


def dupes(
    paths: list[str] = typer.Argument(None, help="Folders to check from disk instead of the library (nothing is indexed)."),
    location: str = typer.Option(None, "--location", help="Only in this location (id, name or path)."),
    min_size: str = typer.Option("1", "--min-size", help="Ignore files smaller than this: 500, 10k, 1M."),
    include_empty: bool = typer.Option(False, "--include-empty", help="Report empty files as duplicates of each other."),
    devices: bool = typer.Option(
        False, "--devices", help="Contents held on more than one device of the library (proven by a full hash where both are online)."
    ),
    json: bool = JsonOpt,
) -> None:
    """Find files with the same content (by cas_id, proven with a full BLAKE3) and the space they waste.

    Without PATHs, the library's locations (fast: the content index is there); with PATHs, those folders
    straight from disk, indexed or not.
    """

    if paths and not devices and not any(p.startswith(SCHEME) or split_remote(p) for p in paths):
        _print_duplicates(_duplicates_here(paths, min_size, include_empty), json, from_disk=True)
        return

    async def body(api: Any) -> None:
        size = parse_size(min_size)
        if devices:
            await _dupes_across_devices(api, size, json)
            return
        if paths:
            found = await api.duplicates_in([await api.resolve(here(p)) for p in paths], size, include_empty)
        else:
            found = await api.library().duplicates(location, size, include_empty)
        _print_duplicates(found, json, from_disk=bool(paths))

    run_api(body)


def _duplicates_here(paths: list[str], min_size: str, include_empty: bool) -> Duplicates:
    """`sd dupes FOLDER...` of this device's folders, straight from disk with no core at all: starting one (its data
    dir, its lock, asyncio) would cost a twentieth of the check of a source tree; nothing of a core is read or
    written."""
    from sdcore.api import duplicates_on_disk

    folders = [os.path.abspath(os.path.expanduser(here(p))) for p in paths]
    try:
        return duplicates_on_disk(folders, parse_size(min_size), include_empty)
    except SdError as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # as a command run by a core says it
        fail("interrupted", code=130)


def _print_duplicates(found: Duplicates, json: bool, from_disk: bool) -> None:
    if json:
        print_json({
            "groups": [
                {
                    "full_hash": g.full_hash, "size": g.size, "wasted": g.wasted,
                    "files": [{"entry_id": f.entry_id, "path": f.path, "links": list(f.links)} for f in g.files],
                }
                for g in found.groups
            ],
            "wasted": found.wasted,
            "changed": list(found.changed),
        })
    else:
        lines = []  # written at once: to a terminal, a print is a write a line
        for g in found.groups:
            lines.append(f"{len(g.files)} copies of {human_size(g.size)} ({human_size(g.wasted)} wasted) blake3 {g.full_hash[:16]}\n")
            for f in g.files:
                links = f"  (hard links: {', '.join(display(x) for x in f.links)})" if f.links else ""
                lines.append(f"  {display(f.path)}{links}\n")
        lines.append(f"{count(len(found.groups), 'group')}, {human_size(found.wasted)} wasted\n")
        sys.stdout.write("".join(lines))
    if found.changed and from_disk:
        folders = sum(1 for path in found.changed if path.endswith("/"))
        files = len(found.changed) - folders
        unread = " and ".join([*([count(folders, "folder")] if folders else []), *([count(files, "file")] if files else [])])
        print(f"{unread} could not be read, or changed while read, and were left out", file=sys.stderr)
    elif found.changed:
        print(
            f"{count(len(found.changed), 'file')} changed since they were indexed and were left out; "
            "`sd location rescan` their location and run this again",
            file=sys.stderr,
        )


async def _dupes_across_devices(api: Any, min_size: int, json: bool) -> None:
    """`sd dupes --devices`: the same cas_id on several devices, proven by a full hash that each device reachable
    now makes of its own copy; copies on a device out of reach are held by the sampled id from the catalogue."""
    groups = await api.library().duplicates_across_devices(min_size)
    names: dict[Any, str] = {}
    for device in {c.device_id for g in groups for c in g.copies}:
        root = SdPath(device, "/")
        names[device] = (await api.label(root)).removesuffix(":/") if device != api.device.id else api.device.name
    if json:
        print_json([
            {"cas_id": g.cas_id, "size": g.size, "verified": g.proven, "full_hash": g.full_hash,
             "copies": [{"device_id": str(c.device_id), "device": names[c.device_id], "path": c.path,
                         "online": c.device_id not in g.offline} for c in g.copies]}
            for g in groups
        ])  # fmt: skip
        return
    for g in groups:
        how = f"proven (full hash) blake3 {g.full_hash[:16]}" if g.proven and g.full_hash else (
            f"same sampled id (device offline) cas_id {g.cas_id[:16]}")
        print(f"{len(g.copies)} copies of {human_size(g.size)} on {count(len({c.device_id for c in g.copies}), 'device')}"
              f" {how}")  # fmt: skip
        for c in g.copies:
            print(f"  {names[c.device_id]}{' (offline)' if c.device_id in g.offline else ''}: {display(c.path)}")
    print(f"{count(len(groups), 'content')} on more than one device")
