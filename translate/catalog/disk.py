"""A full disk said as such: downloads, extraction and ``datasets combine`` turn ``ENOSPC`` (and a full
quota, ``EDQUOT``) into a one-line ``StorageError`` that names the folder and its free space, instead of
a traceback or a guess at a corrupt archive."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from translate.errors import StorageError

DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that failed for want of space (or quota)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def free_text(folder: Path) -> str:
    """The free space of ``folder``'s file system, e.g. ``"12.3 MB"`` (``"?"`` when it cannot be read)."""
    for candidate in (folder, *folder.parents):
        try:
            free = shutil.disk_usage(candidate).free
        except OSError:
            continue
        return f"{free / 1e9:.1f} GB" if free >= 1e9 else f"{free / 1e6:.1f} MB"
    return "?"


def disk_full(folder: Path, doing: str, then: str) -> StorageError:
    """The error for a full disk: ``disk full while DOING (N MB free in FOLDER); THEN``."""
    return StorageError(f"disk full while {doing} ({free_text(folder)} free in {folder}); {then}")
