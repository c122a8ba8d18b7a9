"""A person manages a headless core with nothing but OpenSSH: the explorer on a pty, `sd` commands, refusals."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore.net.admin_sessions import MAX_SESSIONS_PER_CONNECTION
from sdcore.sshlib import asyncssh
from tests.functional.ssh_support import SD, SSH, ServedCore, Terminal, independent_sessions

pytestmark = pytest.mark.skipif(SSH is None, reason="OpenSSH's client (ssh) is not installed")


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServedCore]:
    """`sd serve` with folders one/ (hello.txt, zebra.txt) and two/ in its home; the laptop paired with full trust
    (or what `@pytest.mark.parametrize("served", [...], indirect=True)` says)."""
    core = ServedCore(tmp_path, trust=getattr(request, "param", "full"))
    (core.home / "one").mkdir()
    (core.home / "two").mkdir()
    (core.home / "one" / "hello.txt").write_text("hello\n")
    (core.home / "one" / "zebra.txt").write_text("stripes\n")
    try:
        yield core
    finally:
        core.stop()


def until(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_explorer_over_ssh_shows_the_servers_files_moves_and_copies_with_f5_then_quits(served: ServedCore) -> None:
    term = Terminal(served.ssh("sdtui", "one", "two", tty=True), 100, 30)
    try:
        term.wait_for("hello.txt")
        assert "~/one" in term.text and "~/two" in term.text  # the panes' titles: the server's home folders
        left = term.row_of("hello.txt")
        term.pump(0.3)
        assert left in term.cursor_rows(40)
        term.press("down")
        term.until(lambda: term.row_of("zebra.txt") in term.cursor_rows(40))
        term.press("f5")
        term.wait_for("copied zebra.txt")
        assert (served.home / "two" / "zebra.txt").read_text() == "stripes\n"
        term.press("q")
        assert term.wait_exit() == 0
    finally:
        term.close()
    until(lambda: not served.children())
    assert "device laptop from 127.0.0.1" in served.log() and "ended sdtui one two: exit 0" in served.log()


def test_a_resized_client_terminal_redraws_the_explorer_at_the_new_width(served: ServedCore) -> None:
    term = Terminal(served.ssh(tty=True), 80, 24)
    try:
        term.wait_for("one/")  # no folder asked: the explorer opens in the server's home
        assert term.screen.display[0].rstrip().endswith("╮") and len(term.screen.display[0].rstrip()) == 80
        term.resize(132, 30)
        term.until(lambda: term.screen.display[0][131] == "╮" and "one/" in term.text)
        assert term.screen.display[29].strip(), "the bottom row of the taller window is drawn too"
    finally:
        term.close()


def test_two_sessions_at_once_keep_their_own_cursors(served: ServedCore) -> None:
    first = Terminal(served.ssh("sdtui", "one", tty=True), 100, 30)
    second = Terminal(served.ssh("sdtui", "one", tty=True), 100, 30)
    try:
        for term in (first, second):
            term.wait_for("zebra.txt")
        first.press("down")
        first.until(lambda: first.row_of("zebra.txt") in first.cursor_rows(40))
        second.pump(0.5)
        assert second.row_of("hello.txt") in second.cursor_rows(40)  # untouched by the other person's key
        assert len(served.children()) == 2
        second.press("q")
        assert second.wait_exit() == 0
        first.press("down")  # the first session lives on
        first.pump(0.3)
        assert first.proc.poll() is None and "zebra.txt" in first.text
    finally:
        first.close()
        second.close()
    until(lambda: not served.children())


def test_three_sessions_keep_their_own_cursors_and_share_the_cores_jobs_and_events(served: ServedCore) -> None:
    independent_sessions(served, 3)  # tests/bench/bench_ssh_admin.py --sessions-at-once 20 runs twenty
    until(lambda: not served.children())


def test_sd_over_ssh_runs_against_the_served_core_with_its_output_and_exit_status(served: ServedCore) -> None:
    added = served.run("sd", "location", "add", "one")  # relative: in the server's home, as in a login shell
    assert added.returncode == 0, added.stderr
    listed = served.run("sd", "location", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [loc["path"] for loc in json.loads(listed.stdout)] == [str(served.home / "one")]
    wrong = served.run("sd", "location", "nosuch")
    assert wrong.returncode == 2 and "No such command 'nosuch'" in wrong.stderr and "Usage: sd " in wrong.stderr
    log = served.log()
    assert "device laptop from 127.0.0.1" in log and "ended sd location list --json: exit 0" in log


def test_sd_over_ssh_calls_itself_sd_in_its_help_and_usage(served: ServedCore) -> None:
    """`ssh HOST sd --help` (and `sd --device NAME` with no command) began "Usage: python -m sdtui.cli.sd"."""
    for args in (("sd", "--help"), ("sd",)):
        shown = served.run(*args)
        assert "Usage: sd [OPTIONS] COMMAND" in shown.stdout + shown.stderr, shown
        assert "python" not in shown.stdout + shown.stderr


def test_sd_over_ssh_reads_its_answers_from_the_clients_stdin(served: ServedCore) -> None:
    assert served.run("sd", "library", "create", "scratch").returncode == 0
    kept = subprocess.run(served.ssh("sd", "library", "delete", "scratch"), input="n\n", capture_output=True, text=True, timeout=60)
    assert kept.returncode != 0 and "scratch" in served.run("sd", "library", "list").stdout
    gone = subprocess.run(served.ssh("sd", "library", "delete", "scratch"), input="y\n", capture_output=True, text=True, timeout=60)
    assert gone.returncode == 0, gone.stderr
    assert "scratch" not in served.run("sd", "library", "list").stdout


def test_without_a_terminal_or_a_command_ssh_gets_one_usage_line(served: ServedCore) -> None:
    bare = served.run()
    assert bare.returncode == 2 and bare.stdout == ""
    assert bare.stderr.count("\n") == 1 and "ssh HOST sd COMMAND" in bare.stderr


@pytest.mark.parametrize(
    "command",
    ["bash", "sd ls; touch pwned", "sd ls && touch pwned", "sd ls | tee pwned", "sd ls > pwned", 'sd ls "$(touch pwned)"',
     "sd ls `touch pwned`", "sd --data-dir=elsewhere job list", "sdtui one"],
)  # fmt: skip
def test_anything_but_one_sd_command_is_refused_in_one_line_and_logged(served: ServedCore, command: str) -> None:
    refused = served.run(command)
    assert refused.returncode == 1 and refused.stdout == "", refused
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert not (served.home / "pwned").exists() and not (served.tmp / "pwned").exists()
    assert not served.children()
    assert "refused device laptop from 127.0.0.1" in served.log()


def test_a_name_with_shell_characters_goes_through_in_single_quotes(served: ServedCore) -> None:
    (served.home / "a;b & c").mkdir()
    (served.home / "a;b & c" / "inside.txt").write_text("x")
    listed = served.run("sd ls '~/a;b & c'".replace("~", str(served.home)))
    assert listed.returncode == 0 and "inside.txt" in listed.stdout, listed.stderr


@pytest.mark.parametrize("served", ["shared"], indirect=True)
def test_a_shared_device_gets_no_explorer_and_no_command(served: ServedCore) -> None:
    for command in [(), ("sd", "job", "list")]:
        refused = served.run(*command)
        assert refused.returncode == 1 and "for admins only" in refused.stderr, refused
    term = Terminal(served.ssh(tty=True), 80, 24)
    try:
        assert term.wait_exit() == 1 and "for admins only" in term.text
    finally:
        term.close()
    assert not served.children()
    assert "device laptop, not an admin" in served.log()


def test_an_unknown_key_is_refused_before_any_session(served: ServedCore) -> None:
    key = served.tmp / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    refused = served.run("sd", "job", "list", key=key)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    assert not served.children()


def test_killing_the_ssh_client_mid_copy_leaves_the_job_running_to_the_end(served: ServedCore) -> None:
    big = served.home / "one" / "big.bin"
    block = os.urandom(1 << 20)
    with big.open("wb") as f:
        for _ in range(768):
            f.write(block)
    for attempt in range(3):  # a quiet moment may copy 768 MiB before the kill: then again, into a new folder
        target = served.home / f"two{attempt}"
        target.mkdir()
        term = Terminal(served.ssh("sdtui", "one", target.name, tty=True), 100, 30)
        try:
            term.wait_for("big.bin")
            term.until(lambda t=term: t.row_of("big.bin") in t.cursor_rows(40))
            term.press("f5")
            term.wait_for("copy ")  # the jobs strip: the copy runs in the core
            term.proc.kill()  # the client dies mid-copy: the explorer's session ends with it
            term.proc.wait()
            copied = target / "big.bin"
            cut_short = not copied.exists() or copied.stat().st_size < big.stat().st_size
        finally:
            term.close()
        until(lambda: not served.children(), timeout=10)
        if cut_short:
            break
    assert cut_short, "the copy ended before the kill, three times"
    until(lambda: copied.exists() and copied.stat().st_size == big.stat().st_size, timeout=120)
    assert f"ended sdtui one {target.name}: connection closed" in served.log()
    jobs = served.run("sd", "job", "list", "--json")
    assert jobs.returncode == 0, jobs.stderr
    until(lambda: all(j["state"] == "completed" for j in json.loads(served.run("sd", "job", "list", "--json").stdout)))


def opened(served: ServedCore) -> list[str]:
    """What the server holds open, but its library's database (the core keeps a connection per worker thread,
    threading.local in Library, so busier moments open a few more, bounded by the thread pool) and the mount table
    (watched once, from the first explorer that lists the volumes, for as long as the core runs)."""
    return [f for f in served.fds() if ".sdlibrary/database.db" not in f and not f.endswith("/mountinfo")]


def test_60_connect_disconnect_cycles_leave_no_child_process_and_no_pty_behind(served: ServedCore) -> None:
    """Sixty cycles, half cut at once and half after the explorer's first bytes: every descriptor is counted, so
    one leaked by any cycle fails; more cycles (200 once) only repeat the same two moments of a cut."""
    assert served.run("sd", "location", "list").returncode == 0  # the server as it settles: its library open
    until(lambda: not served.all_children())  # a device that runs a command has no explorer started for it
    first = Terminal(served.ssh(tty=True), 80, 24)
    try:
        first.wait_for("one")
        first.press("q")
        assert first.wait_exit() == 0
    finally:
        first.close()
    until(lambda: len(served.all_children()) == 1)  # after an explorer session, a spare waits for the next one
    time.sleep(1)
    before = collections.Counter(opened(served))
    for _ in range(6):
        terms = [Terminal(served.ssh(tty=True), 80, 24) for _term in range(10)]
        for i, term in enumerate(terms):
            if i % 2:  # half of them get as far as the first bytes of the explorer, half are cut at once
                term.pump(0.3)
            term.proc.kill()
        for term in terms:
            term.close()
    until(lambda: not served.children(), timeout=30)
    try:  # nothing more open than before (a spare explorer's socket may be starting again, or not)
        until(lambda: not collections.Counter(opened(served)) - before, timeout=30)
    except AssertionError:
        raise AssertionError(f"open before: {before}\nopen now: {served.fds()}") from None
    assert "/dev/ptmx" not in served.fds()
    started = served.log().count("started sdtui")
    assert started > 15 and served.log().count("ended sdtui") == started


def test_one_connection_holds_a_bounded_number_of_sessions(served: ServedCore) -> None:
    async def scenario() -> str:
        async with asyncssh.connect(
            "127.0.0.1", served.port, username="sd", client_keys=[str(served.key)], known_hosts=None,
            agent_path=None, config=None,
        ) as conn:  # fmt: skip
            waiting = [
                await conn.create_process("sd library delete nosuch-library-asks-first")
                for _ in range(MAX_SESSIONS_PER_CONNECTION)
            ]
            until_children = time.monotonic() + 60
            while len(served.children()) < MAX_SESSIONS_PER_CONNECTION and time.monotonic() < until_children:
                await asyncio.sleep(0.1)
            one_more = await conn.run("sd job list", check=False)
            for process in waiting:
                process.close()
            return str(one_more.stderr)

    assert "this connection has 8 sessions open already" in asyncio.run(scenario())
    until(lambda: not served.children())


def test_unpairing_the_device_ends_its_open_explorer(served: ServedCore) -> None:
    term = Terminal(served.ssh("sdtui", "one", tty=True), 80, 24)
    try:
        term.wait_for("hello.txt")
        unpaired = subprocess.run(
            [*SD, "--data-dir", str(served.data_dir), "network", "unpair", "laptop"],
            capture_output=True, text=True, timeout=60, env=served.env,
        )  # fmt: skip
        assert unpaired.returncode == 0, unpaired.stderr
        assert term.wait_exit() != 0
    finally:
        term.close()
    until(lambda: not served.children(), timeout=10)
    assert served.run("sd", "job", "list").returncode == 255  # its key opens nothing any more


def _copy_over_ssh_then(served: ServedCore, stop: str) -> tuple[int | None, str]:
    """`sd cp big.bin two/` over SSH without a terminal, stopped mid-copy by `stop`: "signal" or "disconnect"."""
    with (served.home / "big.bin").open("wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(1024):
            f.write(block)

    def copying() -> bool:
        jobs = json.loads(served.run("sd", "job", "list", "--json").stdout or "[]")
        return any(j["state"] == "running" for j in jobs)

    async def scenario() -> tuple[int | None, str]:
        async with asyncssh.connect(
            "127.0.0.1", served.port, username="sd", client_keys=[str(served.key)], known_hosts=None,
            agent_path=None, config=None,
        ) as conn:  # fmt: skip
            process = await conn.create_process("sd cp big.bin two/")
            deadline = time.monotonic() + 60
            while not await asyncio.to_thread(copying):
                assert time.monotonic() < deadline and process.exit_status is None, "the copy never ran"
            if stop == "disconnect":
                conn.abort()
                return None, ""
            process.send_signal("INT")  # what `ssh` sends for Ctrl-C when asked to (and asyncssh does)
            _, said = await asyncio.wait_for(process.communicate(), 30)
            return process.exit_status, str(said)

    return asyncio.run(scenario())


def test_an_interrupt_sent_over_ssh_pauses_the_commands_job_as_ctrl_c_does(served: ServedCore) -> None:
    status, said = _copy_over_ssh_then(served, "signal")
    assert status == 130 and "paused" in said, said
    assert " paused " in served.run("sd", "job", "list").stdout
    until(lambda: not served.children())


def test_a_dropped_connection_interrupts_its_command(served: ServedCore) -> None:
    _copy_over_ssh_then(served, "disconnect")
    until(lambda: not served.children())
    assert " paused " in served.run("sd", "job", "list").stdout
    assert "ended sd cp big.bin two/: connection closed" in served.log()


def test_a_clients_odd_terminal_type_and_sizes_neither_reach_the_explorer_nor_break_the_server(served: ServedCore) -> None:
    async def scenario() -> None:
        async with asyncssh.connect(
            "127.0.0.1", served.port, username="sd", client_keys=[str(served.key)], known_hosts=None,
            agent_path=None, config=None,
        ) as conn:  # fmt: skip
            process = await conn.create_process(
                term_type="xterm\x1b]0;owned\x07", term_size=(1 << 31, 1 << 20), encoding=None
            )
            seen = bytearray()

            async def until_drawn(what: bytes) -> None:  # a 1000x1000 screen takes a while on a loaded machine
                deadline = time.monotonic() + 90
                while what not in seen:
                    assert process.exit_status is None, f"the session ended: {bytes(seen[-300:])!r}"
                    assert time.monotonic() < deadline, f"the explorer drew no {what!r}: {bytes(seen[-300:])!r}"
                    with contextlib.suppress(TimeoutError):
                        seen.extend(await asyncio.wait_for(process.stdout.read(1 << 16), 1))

            await until_drawn(b"one")  # the explorer, on the server's home
            seen.clear()
            process.change_terminal_size(70000, 70000)
            process.change_terminal_size(100, 30)
            await until_drawn(b"one")  # the session lives on: drawn again at the last size
            assert served.children()
            process.close()

    asyncio.run(scenario())
    until(lambda: not served.children())
    assert "\x1b" not in served.log() and "on a pty (xterm 1000x1000)" in served.log()  # the size the pty got
    assert str(1 << 31) not in served.log()
    assert served.run("sd", "--version").returncode == 0
