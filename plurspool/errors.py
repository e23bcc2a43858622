"""One error hierarchy: every error carries its message, a hint and its exit code.

The CLI turns any `PlurspoolError` into `plurspool: <message>` + `hint: <hint>` on stderr and
exits with `exit_code`; nothing else is ever shown to a user as a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

# Exit status (plurspool(1), EXIT STATUS).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_NOT_FOUND = 4


class PlurspoolError(Exception):
    """Base class: message, hint (what to do next) and exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(PlurspoolError):
    """The configuration file or an account is unusable."""


class SpoolError(PlurspoolError):
    """The spool cannot be used (permissions, symlinked state dir, full disk...)."""


class DaemonError(PlurspoolError):
    """The daemon cannot start or be reached (e.g. another one holds the lock)."""


class Busy(DaemonError):
    """A post is claimed by another sender right now."""


class SendError(PlurspoolError):
    """A send could not be carried out."""


class GitError(PlurspoolError):
    """A git command failed or took too long (plurspool(1), "Reviewing and syncing with git")."""


class UsageError(PlurspoolError):
    """The command line itself is wrong."""

    exit_code = EXIT_USAGE


class InvalidInput(PlurspoolError):
    """A time, a post or a value given by the user is invalid."""

    exit_code = EXIT_INVALID


class TimeError(InvalidInput):
    """A time could not be understood, is in the past, or is ambiguous."""


class PostError(InvalidInput):
    """A post file is invalid; `line` is 1-based within the file when known."""

    def __init__(self, message: str, hint: str = "", line: int | None = None) -> None:
        super().__init__(message, hint)
        self.line = line

    def one_line(self) -> str:
        """The message, `line N: ` first when the line is known (and not said yet)."""
        if self.line and not self.message.startswith(f"line {self.line}:"):
            return f"line {self.line}: {self.message}"
        return self.message


class NotFound(PlurspoolError):
    """No post matches an ID, or an ID prefix is ambiguous."""

    exit_code = EXIT_NOT_FOUND


def did_you_mean(word: str, known: Sequence[str]) -> str | None:
    """The known name closest to a mistyped one, if one is close: for hints (config and post
    keys alike)."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1)
    return close[0] if close else None
