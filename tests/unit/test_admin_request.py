"""What an admin's SSH session may ask for: the explorer or one `sd` command, read as a shell would, never run by one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sdcore.net.admin_request import USAGE, Refused, Request, parse_request, terminal_type


@pytest.mark.parametrize(
    ("command", "pty", "expected"),
    [
        (None, True, Request("explorer", ())),
        ("", True, Request("explorer", ())),
        ("sd job list", False, Request("sd", ("job", "list"))),
        ("sd ls '/srv/a;b & c'", False, Request("sd", ("ls", "/srv/a;b & c"))),
        ('sd ls "/srv/my photos"', False, Request("sd", ("ls", "/srv/my photos"))),
        ("sd ls /srv/a\\;b", False, Request("sd", ("ls", "/srv/a;b"))),
        ("sd tag add '$HOME' x", False, Request("sd", ("tag", "add", "$HOME", "x"))),  # single quotes: no expansion
        ("sdtui /srv/photos -L work", True, Request("explorer", ("/srv/photos", "-L", "work"))),
    ],
)
def test_a_request_is_read_as_a_shell_would_quote_it(command: str | None, pty: bool, expected: Request) -> None:
    assert parse_request(command, pty) == expected


@pytest.mark.parametrize(
    ("command", "pty", "said"),
    [
        (None, False, USAGE),
        ("bash", False, "not a shell"),
        ("sd ls; rm -rf /", False, "';' is refused"),
        ("sd ls && rm -rf /", False, "'&' is refused"),
        ("sd ls | sh", False, "'|' is refused"),
        ("sd ls > /etc/passwd", False, "'>' is refused"),
        ('sd ls "$(rm -rf /)"', False, "'$' is refused"),  # double quotes still expand
        ("sd ls `rm -rf /`", False, "'`' is refused"),
        ("sd ls\nrm -rf /", False, "'\\n' is refused"),
        ("sd ls\0rm", False, "NUL"),
        ("sd ls 'unclosed", False, "cannot read the command"),
        ("sd --data-dir /tmp/other job list", False, "drop --data-dir"),
        ("sd --data-dir=/tmp/other job list", False, "drop --data-dir"),
        ("sdtui /srv", False, "needs a terminal"),
        ("sdtui --listen 0.0.0.0:1 /srv", True, "folders and -L LIBRARY only"),
        ("sdtui --config /etc/shadow", True, "folders and -L LIBRARY only"),
        ("sdtui a b c", True, "at most two folders"),
        ("/usr/bin/sd job list", False, "not a shell"),
    ],
)
def test_anything_else_is_refused_in_one_line_saying_what_to_type(command: str | None, pty: bool, said: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_request(command, pty)
    assert said in str(refused.value) and "\n" not in str(refused.value)
    assert refused.value.status == (2 if command is None else 1)


def test_the_explorers_folders_are_in_the_home_folder_as_in_a_login_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_request(None, True).arguments() == [os.path.join(tmp_path, ".")]
    request = parse_request("sdtui photos ~/music -L work", True)
    assert request.arguments() == ["-L", "work", str(tmp_path / "photos"), str(tmp_path / "music")]
    assert parse_request("sdtui /srv nas:/volume1", True).arguments() == ["/srv", "nas:/volume1"]


def test_a_terminal_type_is_a_name_or_plain_xterm() -> None:
    assert terminal_type("xterm-256color") == "xterm-256color"
    assert terminal_type("screen.xterm+256") == "screen.xterm+256"
    assert terminal_type("xterm\x1b]0;owned\x07") == "xterm"
    assert terminal_type("") == "xterm"
    assert terminal_type("x" * 200) == "xterm"
