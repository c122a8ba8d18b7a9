"""The explorer on a device that is switched off: its pane lists the catalogue, and its title says how old it is."""

from __future__ import annotations

import re
from pathlib import Path

from tui_support import (  # noqa: F401 (own_home: autouse)
    answer_prompt,
    app_for,
    explorer,
    library_of,
    names,
    own_home,
    settle,
    shown_text,
    wait_for,
)

from sdcore.core import Core
from sdcore.events import DeviceRenamed
from sdcore.sdpath import SdPath
from sdcore.sync import catalogue
from sdtui.screens.conflict import ConflictScreen
from sdtui.widgets.inspector import Inspector
from sdtui.widgets.sidebar import Sidebar
from tests.functional.test_catalogue import device, index, make_photos, sync


async def alpha_catalogued(tmp_path: Path) -> Path:
    """alpha's photos, indexed there and its catalogue synced to this device ("here", tmp_path/data); alpha then off."""
    photos = make_photos(tmp_path / "on-alpha")
    async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "data", "here")) as here:
        a = alpha.library()
        await index(a, a.locations.add(str(photos)))
        sync(a, here.library())
    return photos


async def test_a_pane_on_an_offline_device_lists_its_catalogue_marked_offline(tmp_path: Path) -> None:
    photos = await alpha_catalogued(tmp_path)

    app = app_for(tmp_path, f"alpha:{photos}")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await wait_for(pilot, lambda: names(pane) == ["2024", "notes.txt"])
        await wait_for(pilot, lambda: "offline, as of" in str(pane.border_title))
        assert str(pane.border_title).startswith(f"alpha:{photos}")


async def test_the_explorers_search_finds_an_offline_devices_files_and_says_it_is_offline(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "beach-towel.txt").write_text("blue")
    async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "data", "here")) as here:
        a, b = alpha.library(), here.library()
        await index(a, a.locations.add(str(photos)))
        await index(b, b.locations.add(str(mine)))
        sync(a, b)

    app = app_for(tmp_path, mine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        await answer_prompt(pilot, app, "ctrl+f", "beach")
        pane = explorer(app).active
        await wait_for(pilot, lambda: pane.results is not None and len(names(pane)) == 2)
        assert sorted(names(pane)) == [f"alpha:{photos}/2024/summer/beach.jpg", "~/mine/beach-towel.txt"]
        assert "alpha offline, as of" in str(pane.border_title)


async def test_the_sidebar_lists_another_devices_location_under_that_device(tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    mine = tmp_path / "mine"
    mine.mkdir()
    async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "data", "here")) as here:
        a, b = alpha.library(), here.library()
        await index(a, a.locations.add(str(photos)))  # (a disk's location taken over by alpha is shown so too)
        await index(b, b.locations.add(str(mine)))
        sync(a, b)
        alpha_id = alpha.device.id

    app = app_for(tmp_path, mine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        sidebar = app.screen.query_one(Sidebar)
        await wait_for(pilot, lambda: len([p for p in sidebar._places if p.startswith("loc-")]) == 2)
        shown = {label: path for label, path, kind in sidebar._places.values() if kind == "location"}
        assert shown["photos on alpha"] == SdPath(alpha_id, str(photos), shown["photos on alpha"].library_id)
        assert shown["mine"].device_id == app.core.device.id


async def test_a_pane_on_an_offline_device_lists_the_catalogue_file_kept_of_it(tmp_path: Path) -> None:
    """Its catalogue kept as a file (sdcore.sync.catalogue_store): the pane lists the file, which is newer here than
    the rows the library's tables hold of it (a file added on alpha after they were synced)."""
    from sdcore.sync.catalogue_file import make
    from sdcore.sync.catalogue_store import keep, staging_path

    photos = make_photos(tmp_path / "on-alpha")
    async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "data", "here")) as here:
        a, b = alpha.library(), here.library()
        await index(a, a.locations.add(str(photos)))
        sync(a, b)
        (photos / "roll.txt").write_text("36 frames")
        await index(a, a.locations.get(str(photos)))
        make(a, staging_path(b, alpha.device.id))
        keep(b, alpha.device.id)

    app = app_for(tmp_path, f"alpha:{photos}")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await wait_for(pilot, lambda: names(pane) == ["2024", "notes.txt", "roll.txt"])
        await wait_for(pilot, lambda: "offline, as of" in str(pane.border_title))


async def test_go_to_a_folder_or_a_file_of_an_offline_device_opens_it_from_its_catalogue(tmp_path: Path) -> None:
    """Ctrl+L `alpha:/…/2024` with alpha switched off said "cannot reach alpha" (its stat went to the device); the
    pane now opens it from the catalogue, and a file's folder opens with the cursor on it (a favourite too)."""
    photos = make_photos(tmp_path / "on-alpha")
    mine = tmp_path / "mine"
    mine.mkdir()
    async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "data", "here")) as here:
        a = alpha.library()
        await index(a, a.locations.add(str(photos)))
        sync(a, here.library())

    app = app_for(tmp_path, mine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await answer_prompt(pilot, app, "ctrl+l", f"alpha:{photos}/2024")
        await wait_for(pilot, lambda: names(pane) == ["summer", "winter.jpg"])
        assert "offline, as of" in str(pane.border_title)
        await answer_prompt(pilot, app, "ctrl+l", f"alpha:{photos}/notes.txt")
        await wait_for(pilot, lambda: pane.file_list.current is not None and pane.file_list.current.name == "notes.txt")
        assert pane.path is not None and pane.path.path == str(photos)
        inspector = explorer(app).query_one(Inspector)  # (it said "cannot reach alpha (…: Connect call failed …)")
        await wait_for(pilot, lambda: "alpha is offline, as of" in shown_text(inspector).replace("\n", " "))
        assert "Errno" not in shown_text(inspector)
        compact = re.sub(r"[\s│]", "", shown_text(inspector))  # (the path folds over several lines)
        assert re.search(r"path[0-9a-f-]+:/tmp/", compact)  # its device named (it read as this device's path)


async def test_f5_from_a_device_switched_off_says_so_before_asking_anything(tmp_path: Path) -> None:
    """F5 of an offline device's file asked whether to keep both names (the other pane on the same folder), then
    failed with "cannot reach alpha (…: Connect call failed …)"; now it says at once that alpha is offline."""
    photos = await alpha_catalogued(tmp_path)

    app = app_for(tmp_path, f"alpha:{photos}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await wait_for(pilot, lambda: names(pane) == ["2024", "notes.txt"])
        await wait_for(pilot, lambda: pane.footer_text().endswith(" · offline"))  # (at 80 columns the title is cut)
        pane.put_cursor_on("notes.txt")
        await pilot.press("f5")
        status = explorer(app).query_one("#status")
        await wait_for(pilot, lambda: "offline, as of" in str(status.render()))
        assert not isinstance(app.screen, ConflictScreen) and "Errno" not in str(status.render())


async def test_a_pane_on_an_offline_device_renamed_meanwhile_is_titled_by_its_new_name(tmp_path: Path) -> None:
    """alpha renamed itself orchard (told by its hello: the sync service wrote the name into the library, the network
    told the explorer): the title of the pane on its catalogue names it orchard at once."""
    photos = await alpha_catalogued(tmp_path)

    app = app_for(tmp_path, f"alpha:{photos}")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await wait_for(pilot, lambda: str(pane.border_title).startswith(f"alpha:{photos} — offline, as of"))
        library = await library_of(app)
        [alpha] = catalogue.devices(library)
        catalogue.renamed(library, alpha, "orchard")
        app.core.bus.publish(DeviceRenamed(alpha, "orchard"))
        await wait_for(pilot, lambda: str(pane.border_title).startswith(f"orchard:{photos} — offline, as of"))
