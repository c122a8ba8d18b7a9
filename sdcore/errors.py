"""The base of every error a user can cause; its message says what to do."""


class SdError(Exception):
    """An error with a message fit to show a person as it is (the CLI and TUI print it, no traceback)."""


class NotFound(SdError):
    """A path, library, location, job, tag or device that does not exist."""


class AlreadyExists(SdError):
    """Something with that name or path exists already."""


class CoreRunning(SdError):
    """Another process serves this data dir's core already."""


class NotAdmin(SdError):
    """A paired device refused this one its core API: it does not trust this device fully (only its files)."""


class CannotUndo(SdError):
    """The last step of the undo history cannot be undone now (its file changed, its old name is taken): nothing
    was done."""


class Closing(SdError):
    """The core is shutting down: no new work on a library starts (the sync service says so)."""
