"""The core API: the one typed surface front ends use, in-process (`Api(core)`) or over the control socket.

Handles are plain objects made at once; what they name is looked up when a leaf is awaited. Every leaf is
`async def` (one answer) or an async iterator (a stream), and takes and returns typed records only
(`sdcore.api.records`), so the same surface works from another process.

    api = Api(core)                                  api.device -> DeviceInfo(id, name)
    await api.resolve("laptop:/docs") -> SdPath      await api.label(sdpath) -> "laptop:/docs"
    async for batch in api.browse(sdpath)            list[Entry], straight from the device
    await api.stat(sdpath, cas_id=False) -> Entry    async for chunk in api.read(sdpath, offset=0)
    async for event in api.events()                  every Event the core publishes
    async for change in api.watch(directory)         EntriesChanged of one directory while iterated

    lib = api.library(name=None)                     await lib.info() -> LibraryInfo
    await lib.entries.at(sdpath, index=True) -> Entry   (a file of a location not indexed yet: indexed first)
    await lib.entries.find(*paths, index=False) -> list[Entry]    await lib.entries.details(sdpath) -> EntryDetails
    await lib.tags.list() -> list[Tag]               await lib.tags.create(name, color=None) -> Tag
    await lib.tags["work/acme"].add(*paths) -> int   .remove(*paths)  .files() -> list[Entry]  .rename(new)  .delete()
    await lib.notes.get(sdpath) -> str | None        await lib.notes.set(sdpath, text)
    await lib.favourites.list() -> list[Entry]       .set(*paths, favourite=True) -> int   .toggle(*paths) -> bool
    await lib.search(text_or_query) -> list[Entry]   await lib.incomplete() -> list[str]
    await lib.saved.list() -> list[SavedSearch]      .save(name, query)  .run(name) -> list[Entry]  .forget(name)
    await lib.locations.list() -> list[Location]     .add(path, mode="content", name=None, ignore=(), index=False)
    await lib.locations.get(key) -> Location         .containing(sdpath) -> Location | None  .remove(key)
    await lib.locations.index(key, scope="recursive", below=None) -> job id   .set_mode(key, mode)  .set_ignore(key, globs)
    await lib.jobs.list() -> list[JobRecord]         .get(id)  .wait(id)  .route(id) -> JobRoute
    await lib.jobs.pause(job_id)                     .resume(id)  .cancel(id)

    await api.ops.copy(sources, dest, on_conflict="fail") -> job id     .move(...) -> job id
    await api.ops.trash(paths) -> list[Trashed]      await api.ops.restore(trashed) -> list[SdPath]
    await api.ops.delete(paths)   .rename(path, new_name) -> SdPath   .mkdir(path, parents=False)
    await api.ops.start_delete(paths, permanent=False) -> job id   .start_rename(path, new_name)  .start_mkdir(path)

    await api.devices.attach()                       await api.devices.list() -> list[PairedDevice]
    await api.devices.label(sdpath) -> str           await api.devices.places(device_id) -> list[Entry]
    await api.devices.connect(device_id)             await api.devices.listen("0.0.0.0:0") -> address
    await api.devices.pair_code() -> str             .wait_paired() / .pair_join(code, host) -> PairedDevice
    await api.devices.send(device, paths)            await api.devices.answer(drop_id, accept)
    await api.devices.spacedrop_dir() -> SdPath      await api.devices.address() -> str | None
    await api.devices.pair_code(trust="shared")      .pair_join(code, host, trust="shared") -> PairedDevice
    await api.devices.unpair(device) -> PairedDevice await api.devices.rename_this(name) -> Renamed
    await api.devices.shares() -> list[str]          .share(path) -> real path   .unshare(path)

Errors are SdError subclasses; `NotInLibrary` (a path outside every location) and `NotIndexed` are exported here.
Pure helpers that need no core: `human_size`, `display`, `label`, `shorten_home`, `check_index_mode`.
"""

from sdcore.api.records import (
    DeviceId,
    DeviceInfo,
    Entry,
    EntryDetails,
    JobRoute,
    LibraryInfo,
    PairedDevice,
    Trashed,
)
from sdcore.api.root import Api
from sdcore.api.text import display, human_size, label, shorten_home
from sdcore.jobs.manager import JobRecord
from sdcore.library.entries import NotIndexed, NotInLibrary
from sdcore.library.locations import check_mode as check_index_mode

__all__ = [
    "Api",
    "DeviceId",
    "DeviceInfo",
    "Entry",
    "EntryDetails",
    "JobRecord",
    "JobRoute",
    "LibraryInfo",
    "NotInLibrary",
    "NotIndexed",
    "PairedDevice",
    "Trashed",
    "check_index_mode",
    "display",
    "human_size",
    "label",
    "shorten_home",
]

