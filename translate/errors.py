"""User-facing errors: each carries a one-line message that the CLI prints without a traceback."""


class TranslateError(Exception):
    """Base class of every error caused by the user's input (config, data, checkpoint, names)."""


class ConfigError(TranslateError):
    """A config file, key, value or component name is wrong."""


class DataError(TranslateError):
    """A data folder is missing, empty, unreadable or in an unknown layout."""


class CheckpointError(TranslateError):
    """A run folder or checkpoint is missing, corrupt or belongs to another model."""
