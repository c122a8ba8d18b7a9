"""A flood of refused logins costs the log a few lines a minute, each saying how many it stands for."""

from __future__ import annotations

import logging

import pytest

from sdcore.net.refusals import LINES_PER_WINDOW, SOURCES, WINDOW, RefusalLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def refusals(clock: Clock) -> RefusalLog:
    return RefusalLog(logging.getLogger("test.refusals"), clock)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.refusals"]


def test_a_stranger_knocking_all_day_gets_one_line_a_minute_with_the_count(
    refusals: RefusalLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "test.refusals")
    for _ in range(24 * 60):  # a refused login a second for a day, 86,400 in all
        for _ in range(60):
            refusals.refused("203.0.113.9", "refused login from %s:%d", "203.0.113.9", 4000)
            clock.now += 1
    logged = lines(caplog)
    assert len(logged) == 24 * 60  # one a minute: a few hundred kilobytes a day, the rest of the log stays
    assert logged[0] == "refused login from 203.0.113.9:4000"
    assert logged[1] == "refused login from 203.0.113.9:4000 (59 more refused from 203.0.113.9 not logged since its last line)"
    assert sum(int(line.split("(")[1].split()[0]) for line in logged[1:]) + len(logged) == 86_400 - 59  # every one counted


def test_many_sources_at_once_share_a_few_lines_a_minute(
    refusals: RefusalLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "test.refusals")
    for i in range(10_000):  # a botnet: each address knocks once
        refusals.refused(f"10.0.{i // 256}.{i % 256}", "refused login from %s", f"10.0.{i // 256}.{i % 256}")
    assert len(lines(caplog)) == LINES_PER_WINDOW
    clock.now += WINDOW
    refusals.refused("192.0.2.1", "refused login from %s", "192.0.2.1")
    last = lines(caplog)[-1]
    forgotten = 10_000 - LINES_PER_WINDOW - SOURCES + 1  # what the sources no longer remembered had counted
    assert last == f"refused login from 192.0.2.1 ({forgotten} more refused from other sources not logged)"


def test_a_source_is_logged_again_once_its_minute_is_over(
    refusals: RefusalLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "test.refusals")
    refusals.refused("fe80::1%eth0", "refused login from %s", "fe80::1%eth0")  # a % in the source is no format
    refusals.refused("fe80::1%eth0", "refused login from %s", "fe80::1%eth0")
    clock.now += WINDOW
    refusals.refused("fe80::1%eth0", "refused login from %s", "fe80::1%eth0")
    assert lines(caplog) == [
        "refused login from fe80::1%eth0",
        "refused login from fe80::1%eth0 (1 more refused from fe80::1%eth0 not logged since its last line)",
    ]
