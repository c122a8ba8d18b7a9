"""The base of every error a user can cause; its message says what to do."""


class SdError(Exception):
    """An error with a message fit to show a person as it is (the CLI and TUI print it, no traceback)."""


class NotFound(SdError):
    """A path, library, location, job, tag or device that does not exist."""


class AlreadyExists(SdError):
    """Something with that name or path exists already."""


class CoreRunning(SdError):
    """Another process serves this data dir's core already."""
