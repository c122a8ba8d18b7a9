"""The core API: the one typed surface front ends use, in-process (`Api(core)`) or over the control socket.

Handles are plain objects made at once; what they name is looked up when a leaf is awaited. Every leaf is
`async def` (one answer) or an async iterator (a stream), and takes and returns typed records only
(`sdcore.api.records`), so the same surface works from another process.

    api = Api(core)                                  api.device -> DeviceInfo(id, name)
    await api.health() -> Health(device, pid, ssh)   (`sd health`: the core answers; its SSH server's address)
    await api.resolve("laptop:/docs") -> SdPath      await api.label(sdpath) -> "laptop:/docs"
    async for batch in api.browse(sdpath)            list[Entry], straight from the device (offline: its catalogue here)
    await api.offline(sdpath) -> Offline | None      a device out of reach, listed from its catalogue: .describe()
    await api.stat(sdpath, cas_id=False) -> Entry    async for chunk in api.read(sdpath, offset=0)
    (an archive file of this device browses as a read-only folder: `a.zip/inner/file`; is_archive_name(name))
    await api.peek(sdpath, limit) -> (list[Entry], complete)   a preview's glance: an archive read no further
    await api.preview(sdpath, width, height) -> Preview   a picture as pixels, a PDF's first page, a recording's facts
                                                     (made on the file's device; previewable(name) says which have one)
    async for batch in api.usage(folder, apparent=False)   its children with what each holds (ncdu): disk blocks as du
                                                     counts them, walked; apparent: index totals, else walked
    async for event in api.events()                  every Event the core publishes
    async for change in api.watch(directory)         EntriesChanged of one directory while iterated
    await api.volumes() -> list[Volume]              mounted volumes by identity; VolumesChanged follows from then on
    await api.eject(name) -> Volume                  unmounted (mount point, label, device or id), or why not

    lib = api.library(name=None)                     await lib.info() -> LibraryInfo
    await lib.entries.at(sdpath, index=True) -> Entry   (a file of a location not indexed yet: indexed first)
    await lib.entries.find(*paths, index=False) -> list[Entry]    await lib.entries.details(sdpath) -> EntryDetails
    await lib.entries.make_known(*paths) -> list[Location]   (indexed first; a file in no location: its folder added)
    await lib.tags.list() -> list[Tag]               await lib.tags.create(name, color=None) -> Tag
    await lib.tags["work/acme"].add(*paths) -> int   .remove(*paths)  .files() -> list[Entry]  .rename(new)  .delete()
    await lib.tags["work"].tagged(nested=True) -> list[TaggedFile]      (itself or through its content)
    await lib.notes.get(sdpath) -> str | None        await lib.notes.set(sdpath, text)
    await lib.notes.history(sdpath) -> list[NoteVersion]   .restore(sdpath, number) -> str | None  (nothing is lost)
    await lib.tags.history(sdpath) -> list[TagChange]      (tags put on and taken off, on any device of the library)
    await lib.favourites.list() -> list[Entry]       .set(*paths, favourite=True) -> int   .toggle(*paths) -> bool
    await lib.search(text_or_query) -> list[Entry]   await lib.incomplete() -> list[str]
    await lib.holds_files_of(device_id) -> bool      (its catalogue is here: tags on its files are written here)
    await lib.saved.list() -> list[SavedSearch]      .get(name)  .save(name, query)  .run(name) -> list[Entry]  .forget(name)
    await lib.duplicates(location=None, min_size=1) -> Duplicates    await api.duplicates_in(folders) (from disk)
    duplicates_on_disk(paths, min_size=1) -> Duplicates   (this device's folders from disk, blocking: no core needed)
    await lib.duplicates_across_devices(min_size=1) -> list[CrossDeviceGroup]   (on several devices, proven by full hash)
    await lib.devices() -> list[DeviceInfo]          the other devices whose catalogue the library holds
    await lib.locations.list() -> list[Location]     .add(path, mode="content", name=None, ignore=(), index=False)
    await lib.locations.get(key) -> Location         .containing(sdpath) -> Location | None  .remove(key)
    await lib.locations.index(key, scope="recursive", below=None, confirm_drop=False) -> JobRecord   .set_mode(key, mode)
                                                     .set_ignore(key, globs)   (confirm_drop: a disk's location that waits for a decision)
    await lib.jobs.list() -> list[JobRecord]         .get(id)  .wait(id)  .route(id) -> JobRoute
    await lib.jobs.pause(job_id)                     .resume(id)  .cancel(id)

    job = await api.ops.copy(sources, dest, on_conflict="fail") -> JobRecord     .move(...) -> JobRecord
        (sources inside an archive are unpacked, refused first when it would escape its folder or explode)
        done = await api.library().jobs.wait(job.id); done.result -> CopyResult (files, bytes, skipped...)
    await api.ops.trash(paths) -> list[Trashed]      await api.ops.restore(trashed) -> list[SdPath]
    await api.ops.delete(paths)   .rename(path, new_name) -> SdPath   .mkdir(path, parents=False)
    await api.ops.start_delete(paths, permanent=False) -> JobRecord   .start_rename(path, new_name)  .start_mkdir(path)

    await api.trash.list() -> list[Trashed]          .restore(path_or_name, to=None) -> SdPath   .empty(older_than=None) -> Emptied

    await lib.sharing.list() -> list[LibraryDevice]  .share(device) -> LibraryDevice  .unshare(device)   (who holds it)
    await api.devices.keep_in_sync()                 (pull the shared libraries from their devices, push changes)
    await api.devices.attach()                       await api.devices.list() -> list[PairedDevice]
    await api.devices.label(sdpath) -> str           await api.devices.places(device_id) -> list[Entry]
    await api.devices.connect(device_id)             await api.devices.listen("0.0.0.0:0") -> address
    await api.devices.pair_code() -> str             .wait_paired() / .pair_join(code, host) -> PairedDevice
    await api.devices.send(device, paths)            await api.devices.answer(drop_id, accept)
    await api.devices.spacedrop_dir() -> SdPath      await api.devices.address() -> str | None
    await api.devices.pair_code(trust="shared")      .pair_join(code, host, trust="shared") -> PairedDevice
    await api.devices.unpair(device) -> PairedDevice await api.devices.rename_this(name) -> Renamed
    await api.devices.shares() -> list[str]          .share(path) -> SharedFolder   .unshare(path)
    await api.devices.check_code(words) -> str       (the 12 words checked before any device is asked)
    await api.devices.search(device, query) -> list[Entry]   (its library)   await api.devices.default_port() -> int
    await api.admins.list() -> list[AdminKey]        .allow(public_key_text, name=None, file_name=None) -> AdminKey
    await api.admins.revoke(name_or_fingerprint) -> AdminKey   (its open SSH sessions end at once)

A paired device's core, when it trusts this device fully: `await core.net().api_of(device)` -> RemoteApi, this
same surface over SSH (subsystem sd-api, the control socket's protocol); Disconnected once the link drops.

Errors are SdError subclasses; `NotInLibrary` (a path outside every location) and `NotIndexed` are exported here.
Pure helpers that need no core: `human_size`, `count`, `name_order`, `display`, `label`, `shorten_home`, `check_index_mode`,
`parse_age`, `parse_size` ("1.5M"); and, imported when first asked for (a first screen needs none of them): `Query`
(a search with filters), `parse_when` ("2024-05-01", "3d"), `duplicates_on_disk`.
"""

from typing import TYPE_CHECKING, Any

from sdcore.api.records import (
    AdminKey,
    DeviceId,
    DeviceInfo,
    Emptied,
    Entry,
    EntryDetails,
    Health,
    JobRoute,
    LibraryInfo,
    NoteVersion,
    Offline,
    PairedDevice,
    Preview,
    TagChange,
    TaggedFile,
    Trashed,
)
from sdcore.api.text import count, display, human_size, label, name_order, parse_age, parse_size, shorten_home

if TYPE_CHECKING:
    from sdcore.api.root import Api
    from sdcore.dedup import Duplicates
    from sdcore.dedup import find_in as duplicates_on_disk
    from sdcore.fs.archive_path import is_archive_name
    from sdcore.jobs.manager import JobRecord
    from sdcore.library.entries import NotIndexed, NotInLibrary
    from sdcore.library.locations import check_mode as check_index_mode
    from sdcore.preview import previewable

__all__ = [
    "AccessDenied",
    "AdminKey",
    "Api",
    "DeviceId",
    "DeviceInfo",
    "Duplicates",
    "Emptied",
    "Entry",
    "EntryDetails",
    "Health",
    "JobRecord",
    "JobRoute",
    "LibraryInfo",
    "NotInLibrary",
    "NotIndexed",
    "Offline",
    "PairedDevice",
    "Preview",
    "TaggedFile",
    "NoteVersion",
    "TagChange",
    "Trashed",
    "check_index_mode",
    "count",
    "display",
    "duplicates_on_disk",
    "human_size",
    "name_order",
    "is_archive_name",
    "label",
    "parse_age",
    "parse_size",
    "previewable",
    "shorten_home",
]

_LATER = {
    "Api": ("sdcore.api.root", "Api"), "JobRecord": ("sdcore.jobs.manager", "JobRecord"),
    "NotIndexed": ("sdcore.library.entries", "NotIndexed"), "NotInLibrary": ("sdcore.library.entries", "NotInLibrary"),
    "check_index_mode": ("sdcore.library.locations", "check_mode"),
    "Query": ("sdcore.search", "Query"), "parse_when": ("sdcore.search", "parse_when"),
    "is_archive_name": ("sdcore.fs.archive_path", "is_archive_name"), "previewable": ("sdcore.preview", "previewable"),
    "Duplicates": ("sdcore.dedup", "Duplicates"), "duplicates_on_disk": ("sdcore.dedup", "find_in"),
    "AccessDenied": ("sdcore.fs.base", "AccessDenied"),
}  # fmt: skip
"""What is imported on first use: the Api and the core behind it (0.2 s), which `sd health`, `sd --version`,
`attach()` and the wire's modules (`sdcore.api.wire`, `.client`, `.records`) do not need."""


def __getattr__(name: str) -> Any:
    if name not in _LATER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attribute = _LATER[name]
    return getattr(importlib.import_module(module), attribute)

