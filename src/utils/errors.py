"""Errors caused by user input. Entry points print their message alone (no traceback)."""


class UserError(Exception):
    pass


class ConfigError(UserError, ValueError):
    """A bad configuration value."""


class DataError(UserError, RuntimeError):
    """Missing, truncated or corrupt data."""


class CheckpointError(UserError, RuntimeError):
    """A missing, unreadable or unsuitable checkpoint."""


class TrainingError(UserError, RuntimeError):
    """Training diverged (a NaN or infinite loss)."""
