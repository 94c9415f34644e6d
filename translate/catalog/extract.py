"""Safe extraction of a dataset archive (tar of any compression, zip) into ``root/NAME``.

Refused as a whole: an absolute path, a ``..`` component, a path that resolves outside the target, any
symlink or hardlink, a device file or FIFO, an encrypted member. Extraction happens in a hidden temporary
folder inside ``root`` that is renamed to ``root/NAME`` only once complete and checked against the
catalog's layout, so a failure never leaves a half-written dataset folder. macOS and Windows junk
(``__MACOSX``, ``.DS_Store``, ``._*``, ``Thumbs.db``) is left out.
"""

from __future__ import annotations

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
from translate.errors import DataError

CHUNK = 1 << 20
EXTRACT_PREFIX = ".extract-"
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")


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


def _write(source: IO[bytes], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)


def _tar_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        if member.issym() or member.islnk():
            raise DataError(f"{member.name!r} is a link (to {member.linkname!r}); links are not extracted")
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise DataError(f"{member.name!r} is a device file or FIFO")
        if not (member.isfile() or member.isdir()):
            raise DataError(f"{member.name!r} has an unsupported type ({member.type!r})")
        yield member


def _extract_tar(archive: Path, dest: Path, bar: tqdm) -> None:
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
                _write(source, path)
            bar.update(1)


def _extract_zip(archive: Path, dest: Path, bar: tqdm) -> None:
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
        bar.reset(total=sum(1 for i in members if not i.is_dir()))
        for info in members:
            if _is_junk(info.filename):
                continue
            path = safe_member_path(dest, info.filename)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as source:
                _write(source, path)
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


def extract_dataset(archive: Path, entry: DatasetEntry, root: Path, progress: bool = True) -> Path:
    """Extract ``archive`` safely; move the dataset to ``root/entry.name`` once complete and well laid out.

    Args:
        archive: a tar (any compression) or zip file.
        entry: the catalog entry: its name and the layout (``entry.layout``) the dataset must have.
        root: the folder that receives ``entry.name/``.
        progress: show a tqdm bar of the files extracted.

    Returns:
        ``root/entry.name``.

    Raises:
        DataError: a refused member, a corrupt archive, or a dataset of another layout; nothing is kept.
    """
    from translate.data.layout import detect_layout  # imports translate.data (torch)

    target = root / entry.name
    kind = _archive_kind(archive)
    tmp = Path(tempfile.mkdtemp(prefix=f"{EXTRACT_PREFIX}{entry.name}-", dir=root))
    try:
        with tqdm(desc=f"extracting {entry.name}", unit=" files", disable=not progress, leave=False) as bar:
            try:
                (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp, bar)
            except DataError as exc:
                raise DataError(f"refusing to extract {archive.name}: {exc}; nothing was kept") from None
            except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                raise DataError(
                    f"cannot extract {archive.name} ({exc}): a corrupt or truncated archive?"
                ) from None
        top = _dataset_top(tmp)
        try:
            layout = detect_layout(top, prefer=entry.layout)
        except DataError as exc:
            raise DataError(f"{archive.name} does not hold a dataset: {exc}") from None
        if layout.kind != entry.layout:
            raise DataError(
                f"{archive.name} holds a {layout.kind} dataset ({layout.description}), "
                f"not the {entry.layout} layout expected for {entry.name}"
            )
        try:
            top.rename(target)
        except OSError:
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
                top.rename(target)
            else:
                raise DataError(f"{target} appeared while extracting; not overwriting it") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
