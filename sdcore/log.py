"""The log: a rotated file in the data dir, set up once per process by the front end (`sd`, `sdtui`)."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
from pathlib import Path

from sdcore.privacy import create_private, make_private_dir
from sdcore.sdpath import display

LOG_FILE = "sdtui.log"
MAX_BYTES = 1 << 20  # a megabyte a file, the last three kept: enough for a bug report, never a full disk
BACKUPS = 3
MAX_MESSAGE = 2000  # characters of one record's message: a peer's long text cannot roll the others out of the log

_path: Path | None = None
_handler: logging.Handler | None = None


class _Handler(logging.handlers.RotatingFileHandler):
    """The log file, opened at the first record (a command that logs nothing leaves no trace, not even its
    data dir); a log that cannot be written never stops the program."""

    def _open(self) -> io.TextIOWrapper:
        path = Path(self.baseFilename)
        make_private_dir(path.parent)
        create_private(path)  # owner-only like all of the data dir, whatever the umask
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class _Formatter(logging.Formatter):
    """One line a record: its message escaped (a peer's command or name, logged by us or by a library, can
    neither drive the terminal that shows the log nor forge a line of it) and cut short; a traceback stays as it is."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = display(record.message)
        if len(message) > MAX_MESSAGE:
            message = f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE} more characters)"
        return super().formatMessage(logging.makeLogRecord({**record.__dict__, "message": message}))


def setup(data_dir: Path, program: str) -> Path:
    """Log to DATA_DIR/sdtui.log (rotated) from now on; returns the file's path.

    Called at start; a second call for the same data dir (a core running a forwarded `sd` command) keeps
    the first, one for another data dir (an app opened on it in the same process) moves the log there."""
    global _path, _handler
    path = data_dir / LOG_FILE
    if _path == path:
        return path
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
    _handler = _Handler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    _handler.setFormatter(
        _Formatter(f"%(asctime)s {program}[%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(_handler)
    root.setLevel(logging.INFO)
    # asyncssh says several lines per connection and channel at INFO: a health probe every 10 s would push the
    # log's own lines (logins, sessions, refusals: sdcore.net.admin) out of the rotated files within days
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    _path = path
    return path


def where() -> str:
    """Where the details of an unexpected failure are: the log file, as a user would type it."""
    if _path is None:
        return "the log (it is not set up in this process)"
    home = os.path.expanduser("~").rstrip("/") + "/"
    text = str(_path)
    return display("~/" + text[len(home) :] if text.startswith(home) else text)


def unexpected(exc: BaseException, what: str) -> str:
    """Log an unexpected failure with its traceback; a sentence for the user that names the log.

    `what` is what failed, for the sentence: "the copy", "sd ls"."""
    logging.getLogger("sdcore").error("%s failed unexpectedly", what, exc_info=exc)
    if isinstance(exc, OSError) and exc.strerror:
        cause = (
            f"{display(str(exc.filename))}: {exc.strerror.lower()}" if exc.filename else exc.strerror.lower()
        )
        return f"{what} stopped: {cause} (details in {where()})"
    return f"{what} stopped on an unexpected error; the details are in {where()}"
