"""`sd tag ...`, `sd note`, `sd fav`, `sd search` and `sd dupes`: organize and find files."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import typer

from sdcore import dedup, search, tags
from sdcore.api import human_size
from sdcore.errors import SdError
from sdcore.library import entries
from sdcore.sdpath import SdPath, display
from sdtui.cli.common import JsonOpt, here, library_of, print_json, print_table, run, run_api

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
    """The paths as typed, each known to the library: a file of a location that the index has not reached yet
    is indexed first (and said so)."""
    entries = api.library().entries
    targets = []
    for text in paths:
        target = await api.resolve(here(text))
        try:
            await entries.at(target)
        except SdError:  # not indexed yet, else the same error again, with what to do
            await entries.at(target, index=True)
            print(f"indexed {display(target.path)}", file=sys.stderr)
        targets.append(target)
    return targets


def _when(mtime: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime)) if mtime else ""


# -- tags ----------------------------------------------------------------------------------------------


def _tag_json(t: tags.Tag) -> dict:
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
        count = await api.library().tags[name].delete(recursive)
        print(f"deleted {count} tag(s)")

    run_api(body)


@tag_app.command("add")
def tag_add(tag: str, paths: list[str] = PathsArg, content: bool = ContentOpt) -> None:
    """Tag files or folders."""

    async def body(api: Any) -> None:
        tagging = api.library().tags[tag]
        await tagging.get()  # made by `sd tag create`, not by a typo here
        count = await tagging.add(*await _indexed(api, paths), content=content)
        print(f"tagged {count} {'content(s)' if content else 'entr' + ('y' if count == 1 else 'ies')} with {tag}")

    run_api(body)


@tag_app.command("rm")
def tag_rm(tag: str, paths: list[str] = PathsArg, content: bool = ContentOpt) -> None:
    """Take a tag off files or folders."""

    async def body(api: Any) -> None:
        count = await api.library().tags[tag].remove(*await _indexed(api, paths), content=content)
        print(f"removed {tag} from {count} {'content(s)' if content else 'entr' + ('y' if count == 1 else 'ies')}")

    run_api(body)


@tag_app.command("show")
def tag_show(
    tag: str,
    json: bool = JsonOpt,
    exact: bool = typer.Option(False, "--exact", help="Only this tag, not the tags nested below it."),
) -> None:
    """List the files carrying a tag (or a tag nested below it), directly or through their content."""

    async def body(core: Any) -> None:
        library = library_of(core)
        found = tags.entries(library, tag, nested=not exact)
        paths = entries.paths_of(library, [t.entry_id for t in found])
        rows = [(paths[t.entry_id], t.tag, "content" if t.via_content else "file") for t in found if t.entry_id in paths]
        rows.sort()
        if json:
            print_json([{"path": p, "tag": t, "via": via} for p, t, via in rows])
        else:
            print_table(("path", "tag", "on"), rows)

    run(body)


# -- notes and favourites ------------------------------------------------------------------------------


def note(
    path: str = typer.Argument(..., help="A file or folder."),
    text: str = typer.Argument(None, help="The note; without it the note is shown."),
    clear: bool = typer.Option(False, "--clear", help="Remove the note."),
) -> None:
    """Write, show or clear the note of a file (notes are searched with names)."""

    async def body(api: Any) -> None:
        notes = api.library().notes
        [target] = await _indexed(api, [path])
        if clear or text is not None:
            await notes.set(target, None if clear else text)
            print(f"{'cleared the note of' if clear else 'noted'} {path}")
        elif (current := await notes.get(target)) is not None:
            print(current)

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
            count = await favourites.set(*await _indexed(api, paths), favourite=not remove)
            print(f"{'unmarked' if remove else 'marked'} {count} favourite(s)")
            return
        listed = await favourites.list()
        if json:
            print_json([{"entry_id": e.entry_id, "path": e.path.path} for e in listed])
        else:
            for e in listed:
                print(display(e.path.path))

    run_api(body)


# -- search --------------------------------------------------------------------------------------------


def _many(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for value in values or () for v in value.split(",") if v.strip())


def _hit_json(h: search.Hit) -> dict:
    return {
        "entry_id": h.entry_id, "path": h.path, "name": h.name, "location_id": h.location_id, "kind": h.kind,
        "object_kind": h.object_kind, "size": h.size, "mtime": h.mtime, "device_id": str(h.device_id),
    }


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
    device: str = typer.Option(None, "--device", help="Search the library of this paired device instead."),
    json: bool = JsonOpt,
) -> None:
    """Search the library: any part of a name or path, and notes; filters combine.

    `sd search sched core` finds names and paths holding both words; `sd search '*.c'` (quoted, or the shell
    expands it) matches names by a glob.
    """

    async def body(core: Any) -> None:
        library: Any = library_of(core) if device is None or saved or forget or run_saved or save else None
        if saved:
            listed = search.saved(library)
            if json:
                print_json([{"name": s.name, "query": s.query.to_json(), "created": s.created} for s in listed])
            else:
                print_table(("name", "search"), ((s.name, _describe(s.query)) for s in listed))
            return
        if forget:
            search.forget(library, forget)
            print(f"deleted saved search {forget}")
            return
        if run_saved:
            q = search.get_saved(library, run_saved).query
        else:
            q = search.Query(
                " ".join(words or ()), _many(ext), _many(kind), _many(tag),
                search.parse_size(min_size) if min_size is not None else None,
                search.parse_size(max_size) if max_size is not None else None,
                _checked_when(modified_after), _checked_when(modified_before),
                location, favorites, sort, reverse, limit,
            )
        if device is None:
            hits = search.run(library, q)
        else:
            asked = core.net().resolve(device)  # its hits are on the device asked, whatever they say
            found = await core.net().call(asked.id, "search", query=q.to_json())
            hits = [search.Hit(**{**h, "device_id": asked.id}) for h in found]
        if save:
            search.save(library, save, q)
        if json:
            print_json([_hit_json(h) for h in hits])
        else:
            print_table(
                ("name", "kind", "size", "modified", "folder"),
                (
                    (h.name + ("/" if h.kind == "dir" else ""), h.object_kind or h.kind,
                     "" if h.kind == "dir" else human_size(h.size), _when(h.mtime), os.path.dirname(h.path))
                    for h in hits
                ),
            )
            if save:
                print(f"saved as {save!r}", file=sys.stderr)
            if not hits and device is None and not library.locations.list():
                print("the library has no location yet: search looks in what `sd location add PATH` indexes",
                      file=sys.stderr)
        if device is None:
            for line in search.incomplete(library):
                print(line, file=sys.stderr)

    run(body)


def _checked_when(text: str | None) -> str | None:
    if text is not None:
        search.parse_when(text)  # a bad date fails now, not when a saved search runs
    return text


def _describe(q: search.Query) -> str:
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
    json: bool = JsonOpt,
) -> None:
    """Find files with the same content (by cas_id, proven with a full BLAKE3) and the space they waste.

    Without PATHs, the library's locations (fast: the content index is there); with PATHs, those folders
    straight from disk, indexed or not.
    """

    async def body(core: Any) -> None:
        size = search.parse_size(min_size)
        if paths:
            targets = [core.resolve(here(p)) for p in paths]
            remote = [t for t in targets if not core.is_local(t)]
            if remote:
                raise SdError(f"{display(remote[0].path)} is on another device; index it there, or check it with `sd dupes` there")
            found = await asyncio.to_thread(dedup.find_in, [t.path for t in targets], size, include_empty)
        else:
            found = await asyncio.to_thread(dedup.find, library_of(core), location, size, include_empty)
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
            for g in found.groups:
                print(f"{len(g.files)} copies of {human_size(g.size)} ({human_size(g.wasted)} wasted) blake3 {g.full_hash[:16]}")
                for f in g.files:
                    links = f"  (hard links: {', '.join(display(x) for x in f.links)})" if f.links else ""
                    print(f"  {display(f.path)}{links}")
            print(f"{len(found.groups)} group(s), {human_size(found.wasted)} wasted")
        if found.changed:
            print(
                f"{len(found.changed)} file(s) changed since they were indexed and were left out; "
                "`sd location rescan` their location and run this again",
                file=sys.stderr,
            )

    run(body)
