"""User-facing errors: each carries a one-line message that the CLI prints without a traceback."""

from __future__ import annotations

import signal


class TranslateError(Exception):
    """Base class of every error caused by the user's input (config, data, checkpoint, names)."""

    exit_code = 1
    """The command line's exit status for this error."""


class ConfigError(TranslateError):
    """A config file, key, value or component name is wrong."""


class DataError(TranslateError):
    """A data folder is missing, empty, unreadable or in an unknown layout."""


class CheckpointError(TranslateError):
    """A run folder or checkpoint is missing, corrupt or belongs to another model."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file is truncated or damaged: its content no longer matches its recorded hash, or it
    cannot be parsed. Resuming skips such checkpoints for the newest intact one."""


class ImportMismatch(CheckpointError):
    """A file given to an importer (``translate import stargan``) fits no network of that format: its tensor
    names, counts or shapes say which one it is not."""


class StorageError(TranslateError):
    """Writing a run's files failed (disk full, read-only or missing folder, quota); what was written
    before is intact."""


class RunLockedError(TranslateError):
    """Another process trains in the run folder (or its lock file names another host)."""


class TrainingDiverged(TranslateError):
    """A loss or weight became NaN or infinite; nothing non-finite was saved."""


class TrainingInterrupted(TranslateError):
    """Training stopped early on Ctrl-C (SIGINT) or SIGTERM, after saving a checkpoint to resume from.

    ``exit_code`` is the shell's convention for the signal: 130 after SIGINT, 143 after SIGTERM."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)
