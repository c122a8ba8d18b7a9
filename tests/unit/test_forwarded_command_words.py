"""Which forwarded `sd` commands only follow the core: read after the global options, whatever they are named."""

from __future__ import annotations

from sdtui.cli.forward import _follows_the_core


def test_job_monitor_follows_the_core_whatever_the_library_is_called() -> None:
    assert _follows_the_core(["job", "monitor"])
    assert _follows_the_core(["--library", "job", "job", "monitor"])
    assert _follows_the_core(["--data-dir", "/tmp/d", "-L", "monitor", "job", "monitor", "--json"])


def test_other_commands_hold_the_core_even_when_an_option_value_reads_job_monitor() -> None:
    assert not _follows_the_core(["--library", "job", "monitor"])  # the command is `monitor`, not `job monitor`
    assert not _follows_the_core(["--library", "job", "job", "list"])
    assert not _follows_the_core(["--device", "job", "cp", "monitor", "x"])
    assert not _follows_the_core([])
