"""Safe extraction of a dataset archive (tar of any compression, zip) into ``root/NAME``.

Refused as a whole: an absolute path, a ``..`` component, a path that resolves outside the target, any
symlink or hardlink, a device file or FIFO, an encrypted member. Extraction happens in a hidden temporary
folder inside ``root`` that is renamed to ``root/NAME`` only once complete and checked against the
catalog's layout, so a failure never leaves a half-written dataset folder. macOS and Windows junk
(``__MACOSX``, ``.DS_Store``, ``._*``, ``Thumbs.db``) is left out.

Size: the bytes written may not exceed ``ratio`` times the catalog's stated size (or the archive's own
size when that is larger or nothing is stated): ``DEFAULT_RATIO`` (4; image datasets barely compress),
``$TRANSLATE_MAX_EXTRACTED_RATIO`` or the caller's ``max_ratio``. A zip is checked on its declared sizes
before anything is written, every archive on the bytes actually written, so a decompression bomb stops
at the limit. A full disk is a ``StorageError`` that says so.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from tqdm import tqdm

from translate.catalog.catalog import DatasetEntry
from translate.catalog.disk import disk_full, is_disk_full
from translate.errors import ConfigError, DataError

CHUNK = 1 << 20
EXTRACT_PREFIX = ".extract-"
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")
DEFAULT_RATIO = 4.0
RATIO_ENV = "TRANSLATE_MAX_EXTRACTED_RATIO"


class ExtractionTooLarge(DataError):
    """The archive unpacks to more than its limit (a decompression bomb, or a mislabelled archive)."""


def max_ratio(override: float | None = None) -> float:
    """How many times the stated size an archive may unpack to: ``override``, else ``$RATIO_ENV``, else
    ``DEFAULT_RATIO`` (``inf`` turns the cap off).

    Raises:
        ConfigError: the variable is not a positive number.
    """
    if override is not None:
        return float(override)
    text = os.environ.get(RATIO_ENV, "").strip()
    if not text:
        return DEFAULT_RATIO
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{RATIO_ENV} must be a positive number (inf: no cap); got {text!r}")
    return value


def stated_size(entry: DatasetEntry) -> int | None:
    """The archive size the catalog states, in bytes: exact, else approximate; None when it states none."""
    if entry.size_bytes:
        return int(entry.size_bytes)
    return int(float(entry.size_mb) * 1e6) if entry.size_mb else None


def _mb(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


class Budget:
    """The bytes an extraction may still write; ``charge`` raises ``ExtractionTooLarge`` past ``limit``."""

    def __init__(self, entry: DatasetEntry, archive: Path, ratio: float) -> None:
        stated = stated_size(entry)
        own = archive.stat().st_size
        base = max(stated or 0, own)
        self.limit = math.inf if math.isinf(ratio) else int(ratio * base)
        stated_wins = stated is not None and stated >= own
        what = f"the {entry.size_text} stated for {entry.name}" if stated_wins else "the archive's size"
        self.explained = f"{ratio:g} x {what}"
        self.used = 0

    def check(self, total: int) -> None:
        if total > self.limit:
            raise ExtractionTooLarge(
                f"it unpacks to more than {_mb(self.limit)} ({self.explained}): a decompression bomb? "
                f"If the archive is genuine, raise the cap with --max-extracted-ratio or {RATIO_ENV}"
            )

    def charge(self, size: int) -> None:
        self.used += size
        self.check(self.used)


def safe_member_path(dest: Path, name: str) -> Path:
    """Where archive member ``name`` goes under ``dest``.

    Args:
        dest: the extraction folder.
        name: the member's path in the archive (``/`` or ``\\`` separators).

    Returns:
        The path under ``dest``.

    Raises:
        DataError: an absolute path, a drive letter, a NUL byte, a ``..`` component, or a path that
            resolves outside ``dest``.
    """
    clean = name.replace("\\", "/")
    if not clean or clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or "\x00" in clean:
        raise DataError(f"absolute or invalid path {name!r}")
    parts = [p for p in PurePosixPath(clean).parts if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"path {name!r} climbs out of the target folder ('..')")
    path = dest.joinpath(*parts) if parts else dest
    resolved, base = path.resolve(), dest.resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise DataError(f"path {name!r} resolves outside the target folder")
    return path


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(p in JUNK for p in parts) or (bool(parts) and parts[-1].startswith("._"))


def _write(source: IO[bytes], path: Path, budget: Budget) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        while block := source.read(CHUNK):
            budget.charge(len(block))
            out.write(block)


def _tar_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        if member.issym() or member.islnk():
            raise DataError(f"{member.name!r} is a link (to {member.linkname!r}); links are not extracted")
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise DataError(f"{member.name!r} is a device file or FIFO")
        if not (member.isfile() or member.isdir()):
            raise DataError(f"{member.name!r} has an unsupported type ({member.type!r})")
        yield member


def _extract_tar(archive: Path, dest: Path, bar: tqdm, budget: Budget) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in _tar_members(tar):
            path = safe_member_path(dest, member.name)  # checked for junk too: a hostile name is refused
            if _is_junk(member.name):
                continue
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - regular members always have data
                continue
            with source:
                _write(source, path, budget)
            bar.update(1)


def _extract_zip(archive: Path, dest: Path, bar: tqdm, budget: Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:  # check everything before writing anything
            safe_member_path(dest, info.filename)
            mode = info.external_attr >> 16
            if info.create_system == 3 and mode:  # unix permissions and file type
                if stat.S_ISLNK(mode):
                    raise DataError(f"{info.filename!r} is a symbolic link; links are not extracted")
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    raise DataError(f"{info.filename!r} is a device file, FIFO or socket")
            if info.flag_bits & 0x1:
                raise DataError(f"{info.filename!r} is encrypted")
        budget.check(sum(info.file_size for info in members))
        bar.reset(total=sum(1 for i in members if not i.is_dir()))
        for info in members:
            if _is_junk(info.filename):
                continue
            path = safe_member_path(dest, info.filename)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as source:
                _write(source, path, budget)
            bar.update(1)


def _archive_kind(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DataError(f"{path} is neither a tar nor a zip archive (an HTML error page instead of the file?)")


def _dataset_top(folder: Path) -> Path:
    """Descend through single wrapping folders (``facades/``, ``horse2zebra/horse2zebra/``) to the dataset."""
    from translate.data.layout import is_image_name  # imports translate.data (torch)

    while True:
        entries = [e for e in folder.iterdir() if e.name not in JUNK and not e.name.startswith(".")]
        dirs = [e for e in entries if e.is_dir()]
        images = [e for e in entries if not e.is_dir() and is_image_name(e.name)]
        if len(dirs) == 1 and not images:  # a README or licence file beside the folder stays behind
            folder = dirs[0]
        else:
            return folder


def remove_stale_extractions(root: Path, name: str) -> None:
    """Delete the hidden extraction folders of ``name`` that an interrupted run left in ``root``."""
    for stale in root.glob(f"{EXTRACT_PREFIX}{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def extract_dataset(
    archive: Path,
    entry: DatasetEntry,
    root: Path,
    progress: bool = True,
    max_extracted_ratio: float | None = None,
) -> Path:
    """Extract ``archive`` safely; move the dataset to ``root/entry.name`` once complete and well laid out.

    Args:
        archive: a tar (any compression) or zip file.
        entry: the catalog entry: its name, its stated size and the layout (``entry.layout``) the dataset
            must have.
        root: the folder that receives ``entry.name/``.
        progress: show a tqdm bar of the files extracted.
        max_extracted_ratio: the cap on the bytes written, in times the stated size (``max_ratio``).

    Returns:
        ``root/entry.name``.

    Raises:
        ExtractionTooLarge: the archive unpacks to more than the cap; nothing is kept.
        StorageError: the disk filled up; nothing is kept.
        DataError: a refused member, a corrupt archive, or a dataset of another layout; nothing is kept.
    """
    target = root / entry.name
    kind = _archive_kind(archive)
    budget = Budget(entry, archive, max_ratio(max_extracted_ratio))
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{EXTRACT_PREFIX}{entry.name}-", dir=root))
    except OSError as exc:
        raise _extraction_error(exc, archive, root) from None
    try:
        _unpack(archive, kind, tmp, budget, progress, entry.name)
        top = _dataset_top(tmp)
        _check_layout(top, archive, entry)
        _move(top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _unpack(archive: Path, kind: str, tmp: Path, budget: Budget, progress: bool, name: str) -> None:
    with tqdm(desc=f"extracting {name}", unit=" files", disable=not progress, leave=False) as bar:
        try:
            (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp, bar, budget)
        except DataError as exc:
            raise type(exc)(f"refusing to extract {archive.name}: {exc}; nothing was kept") from None
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise _extraction_error(exc, archive, tmp.parent) from None


def _extraction_error(exc: Exception, archive: Path, root: Path) -> Exception:
    """A full disk said as such; anything else that breaks extraction is a damaged archive."""
    if is_disk_full(exc):
        return disk_full(root, f"extracting {archive.name}", "free some space or pass --root on another disk")
    return DataError(f"cannot extract {archive.name} ({exc}): a corrupt or truncated archive?")


def _check_layout(top: Path, archive: Path, entry: DatasetEntry) -> None:
    from translate.data.layout import detect_layout  # imports translate.data (torch)

    try:
        layout = detect_layout(top, prefer=entry.layout)
    except DataError as exc:
        raise DataError(f"{archive.name} does not hold a dataset: {exc}") from None
    if layout.kind != entry.layout:
        raise DataError(
            f"{archive.name} holds a {layout.kind} dataset ({layout.description}), "
            f"not the {entry.layout} layout expected for {entry.name}"
        )


def _move(top: Path, target: Path) -> None:
    try:
        top.rename(target)
    except OSError:
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
            top.rename(target)
        else:
            raise DataError(f"{target} appeared while extracting; not overwriting it") from None
