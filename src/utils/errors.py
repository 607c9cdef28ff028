"""Errors caused by user input. Entry points print their message alone (no traceback)."""

from hydra.errors import CompactHydraException


class UserError(Exception):
    pass


class ConfigError(UserError, ValueError):
    """A bad configuration value."""


class DataError(UserError, RuntimeError):
    """Missing, truncated or corrupt data."""


class CheckpointError(UserError, RuntimeError):
    """A missing, unreadable or unsuitable checkpoint."""


class InputError(UserError, ValueError):
    """A file given to src.predict that it cannot use."""


class ExportError(UserError, RuntimeError):
    """An exported network that does not give the checkpoint's answers."""


class SweepError(UserError, RuntimeError):
    """A sweep that cannot be resumed as asked."""


class TrainingError(UserError, RuntimeError):
    """Training diverged (a NaN or infinite loss)."""


def exception_message(traceback_text: str) -> str:
    """The exception a traceback ends with, on one line: its type and whole message. (Its last line
    alone can be a detail, e.g. Hydra's `full_key: trainer` under the message that says what failed.)"""
    lines = [line for line in traceback_text.splitlines() if line.strip()]
    if not lines:
        return "failed (empty error.txt)"
    # The frames are indented; the exception starts at the first unindented line after the last of them.
    start = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=-1) + 1
    message = [line.strip() for line in lines[start:] if not line.startswith("full_key:")] or [lines[-1].strip()]
    return " ".join(message)


class SweepJobFailed(CompactHydraException):
    """A failed job of a sweep, raised again by Hydra when the sweep ends: it prints the message alone."""
