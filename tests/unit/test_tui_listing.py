"""Unit tests of the TUI's plain parts: arranging rows, sizes, mounts, config and themes, key labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdcore.fs.base import EntryInfo
from sdtui.config import BUILTIN_THEMES, ConfigError, load_config, load_themes, theme_from_file
from sdtui.screens.help import key_label
from sdtui.screens.tag_picker import rank
from sdtui.widgets.jobs_strip import JobView
from sdtui.widgets.listing import (
    Arrangement,
    arrange,
    arrange_tree,
    fit_name,
    human_size,
    kind_marker,
    shorten_home,
    shorten_home_in,
)


def entry(name: str, kind: str = "file", size: int = 0, mtime: float = 0.0) -> EntryInfo:
    return EntryInfo(name, kind, size, mtime, 0, 0o100644)


ENTRIES = [
    entry("b.txt", size=30, mtime=3),
    entry("A.md", size=10, mtime=2),
    entry("zdir", "dir", mtime=1),
    entry(".hidden", size=5, mtime=9),
    entry("adir", "dir", mtime=5),
    entry("c.TXT", size=20, mtime=1),
]


def names(rows: list[EntryInfo]) -> list[str]:
    return [e.name for e in rows]


TREE = [
    entry("src", "dir"), entry("README", size=3), entry("src/b.py", size=1), entry("src/a.py", size=9),
    entry("src/lib", "dir"), entry("src/lib/x.c", size=2), entry("src/.cache", "dir"), entry("src/.cache/junk"),
    entry("docs", "dir"), entry("docs/guide.md"),
]  # fmt: skip


def test_a_tree_shows_each_open_folders_children_under_it_arranged_as_a_folder_is() -> None:
    assert names(arrange_tree(TREE, Arrangement(), frozenset())) == ["docs", "src", "README"]
    assert names(arrange_tree(TREE, Arrangement(), frozenset({"src"}))) == [
        "docs", "src", "src/lib", "src/a.py", "src/b.py", "README"]  # fmt: skip
    assert names(arrange_tree(TREE, Arrangement(sort="size"), frozenset({"src", "src/lib", "docs"}))) == [
        "docs", "docs/guide.md", "src", "src/lib", "src/lib/x.c", "src/a.py", "src/b.py", "README"]  # fmt: skip
    shown = arrange_tree(TREE, Arrangement(show_hidden=True), frozenset({"src", "src/.cache"}))
    assert names(shown)[:4] == ["docs", "src", "src/.cache", "src/.cache/junk"]
    # the filter keeps what matches and the folders leading to it, open or not
    assert names(arrange_tree(TREE, Arrangement(filter="*.c"), frozenset({"src", "src/lib"}))) == ["src", "src/lib", "src/lib/x.c"]
    assert names(arrange_tree(TREE, Arrangement(filter="*.c"), frozenset({"src"}))) == []


def test_directories_come_first_then_names_without_regard_to_case() -> None:
    assert names(arrange(ENTRIES, Arrangement())) == ["adir", "zdir", "A.md", "b.txt", "c.TXT"]


def test_numbers_in_names_sort_by_their_value_as_file_managers_list_them() -> None:
    numbered = [entry(n) for n in ("note-10.txt", "note-2.txt", "Note-1.txt", "IMG_10.jpg", "IMG_9.jpg", "v1.10", "v1.9")]
    assert names(arrange(numbered, Arrangement())) == [
        "IMG_9.jpg", "IMG_10.jpg", "Note-1.txt", "note-2.txt", "note-10.txt", "v1.9", "v1.10"]  # fmt: skip
    assert [n for n in names(arrange(numbered, Arrangement(sort="ext"))) if n.endswith(".jpg")] == ["IMG_9.jpg", "IMG_10.jpg"]
    tree = [entry("d", "dir"), entry("d/p10"), entry("d/p9")]
    assert names(arrange_tree(tree, Arrangement(), frozenset({"d"}))) == ["d", "d/p9", "d/p10"]


def test_hidden_files_show_only_when_asked() -> None:
    assert ".hidden" in names(arrange(ENTRIES, Arrangement(show_hidden=True)))


def test_the_filter_is_a_case_insensitive_substring() -> None:
    assert names(arrange(ENTRIES, Arrangement(filter="TX"))) == ["b.txt", "c.TXT"]
    assert names(arrange(ENTRIES, Arrangement(filter="nothing"))) == []


def test_the_filter_takes_a_glob_of_the_whole_name_or_a_regular_expression_after_re() -> None:
    assert names(arrange(ENTRIES, Arrangement(filter="*.txt"))) == ["b.txt", "c.TXT"]
    assert names(arrange(ENTRIES, Arrangement(filter="?dir"))) == ["adir", "zdir"]
    assert names(arrange(ENTRIES, Arrangement(filter="*.t"))) == []  # a glob fits the whole name
    assert names(arrange(ENTRIES, Arrangement(filter="re:^[ab]"))) == ["adir", "A.md", "b.txt"]
    assert names(arrange(ENTRIES, Arrangement(filter="re:dir$|md$"))) == ["adir", "zdir", "A.md"]
    assert len(arrange(ENTRIES, Arrangement(filter="re:(di"))) == 5  # not written to the end yet: all stay


@pytest.mark.parametrize(
    ("sort", "reverse", "files"),
    [
        ("size", False, ["b.txt", "c.TXT", "A.md"]),  # largest first, as `sd ls --sort size`
        ("size", True, ["A.md", "c.TXT", "b.txt"]),
        ("mtime", False, ["b.txt", "A.md", "c.TXT"]),  # newest first
        ("ext", False, ["A.md", "b.txt", "c.TXT"]),
    ],
)
def test_sort_orders_keep_directories_first(sort: str, reverse: bool, files: list[str]) -> None:
    rows = arrange(ENTRIES, Arrangement(sort=sort, reverse=reverse))
    assert [e.kind for e in rows[:2]] == ["dir", "dir"]
    assert names(rows[2:]) == files


def test_arrangement_describes_itself_for_the_footer() -> None:
    assert Arrangement().describe() == "name↓"
    assert (
        Arrangement(sort="size", reverse=True, filter="x", show_hidden=True).describe()
        == "size↑ /x hidden shown"
    )


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5K"), (20 * 1024**2, "20M"), (5 * 1024**3, "5.0G")],
)
def test_human_sizes(size: int, text: str) -> None:
    assert human_size(size) == text


def test_kind_markers_like_ls_f() -> None:
    assert [kind_marker(entry("x", k)) for k in ("dir", "symlink", "fifo", "file")] == ["/", "@", "|", ""]


def test_home_is_shown_as_tilde(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/ann")
    assert shorten_home("/home/ann/docs") == "~/docs"
    assert shorten_home("/home/anna") == "/home/anna"
    assert shorten_home_in("/home/ann/x: no such file") == "~/x: no such file"


def test_config_keys_and_theme(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('theme = "sdtui-light"\n[keys]\ncursor_down = "down,ctrl+n"\n')
    config = load_config(path)
    assert config.theme == "sdtui-light"
    assert config.keys == {"cursor_down": "down,ctrl+n"}


def test_a_missing_default_config_is_empty_but_a_named_one_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config().keys == {}
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_keys_must_be_strings(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[keys]\ncursor_down = 3\n")
    with pytest.raises(ConfigError, match=r"\[keys\]"):
        load_config(path)


def test_the_three_theme_files_load() -> None:
    themes = {t.name: t for t in load_themes(BUILTIN_THEMES)}
    assert {"sdtui-dark", "sdtui-light", "sdtui-high-contrast"} <= set(themes)
    assert themes["sdtui-dark"].dark and not themes["sdtui-light"].dark
    assert themes["sdtui-high-contrast"].background == "#000000"


def test_a_theme_without_a_primary_colour_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n')
    with pytest.raises(ConfigError, match="primary"):
        theme_from_file(bad)


def test_key_labels_read_as_people_write_keys() -> None:
    assert key_label("down,j") == "↓ j"
    assert key_label("f5,ctrl+d,alt+left,full_stop") == "F5 ctrl+d alt+← ."


def test_tag_picker_ranks_fuzzy_matches() -> None:
    assert rank(["work/acme", "music", "work"], "wac") == ["work/acme"]
    assert rank(["b", "a"], "") == ["b", "a"]


def test_job_amounts_in_bytes_or_items() -> None:
    assert JobView("1", "copy", done=3 << 20, total=8 << 20, unit="bytes").amount() == "3.0M/8.0M"
    assert JobView("2", "index", done=5, total=10, unit="files").amount() == "5/10 files"


def test_the_preview_lexer_comes_from_the_name_alone() -> None:
    from sdtui.widgets.inspector import lexer_for

    assert [lexer_for(n) for n in ("alpha.py", "notes.MD", "q.sql", "Makefile", "x.h")] == [
        "py",
        "md",
        "sql",
        "make",
        "c",
    ]
    assert [lexer_for(n) for n in ("README", "Gamma.log", "a.tar.unknownext", ".hidden")] == ["text"] * 4


def test_a_huge_directory_preview_says_it_read_only_part_of_it() -> None:
    from sdtui.widgets.inspector import PREVIEW_SCAN, listing_preview

    rows = [EntryInfo(f"f{i}", "file", 0, 0.0, 0, 0) for i in range(3)]
    assert "and 7 more" in str(listing_preview(rows, 10))
    assert str(listing_preview(rows, None)).startswith(f"{PREVIEW_SCAN:,} of more (the first read")


def test_big_listings_are_kept_from_full_collections_while_any_is_shown() -> None:
    import gc

    from sdtui import gcfreeze

    left, right = object(), object()
    gcfreeze.hold(left)
    gcfreeze.hold(right)
    assert gc.get_freeze_count() > 0
    gcfreeze.release(left)
    assert gc.get_freeze_count() > 0  # the right pane still shows one
    gcfreeze.release(right)
    assert gc.get_freeze_count() == 0
    gcfreeze.release(right)  # releasing twice is harmless


@pytest.mark.parametrize(
    ("name", "width", "path", "shown"),
    [
        ("~/src/linux/kernel/sched/core.c", 20, True, "…kernel/sched/core.c"),
        ("~/src/linux/Documentation/admin-guide/kernel-parameters.txt", 20, True, "kernel-par…eters.txt"),
        ("kernel-parameters.txt", 15, False, "kernel-…ers.txt"),
        ("a-very-long-directory-name/", 12, False, "a-very…name/"),
        ("short.txt", 20, False, "short.txt"),
    ],
)
def test_a_name_too_long_for_its_row_keeps_its_start_and_its_end(name: str, width: int, path: bool, shown: str) -> None:
    assert fit_name(name, width, path=path) == shown


def test_a_paired_devices_job_is_shown_as_text_that_cannot_drive_the_terminal() -> None:
    from textual.widgets._data_table import default_cell_formatter

    from sdcore.jobs.manager import JobRecord
    from sdtui.screens.jobs import job_row

    hostile = JobRecord("j1", "[/]copy", "failed", 1, 2, "files", "\x1b[2J", "\x1b]0;owned\x07 gone", None, 0.0, 0.0)
    cells = [default_cell_formatter(cell) for cell in job_row(hostile, device="nas")]  # as the jobs table draws them
    shown = [cell.plain for cell in cells if hasattr(cell, "plain")]
    assert shown[0] == "[/]copy"  # its kind as written, not markup (which stopped the jobs screen)
    assert not any("\x1b" in text or "\x07" in text for text in shown)
