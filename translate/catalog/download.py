"""Download a catalog dataset, verify it, extract it safely and leave the layout ``translate train`` reads.

``download_dataset("facades", Path("data"))`` gives ``data/facades/{train,val,test}/`` (pix2pix A|B
pairs); a CycleGAN set gives ``data/horse2zebra/{trainA,trainB,testA,testB}/``.

- Source: the catalog URL, or ``url=`` a mirror (http/https) or a local copy (a path or ``file://`` URL).
- Download: streamed with urllib into ``root/.partial/NAME.EXT.part`` with a tqdm bar; a partial file is
  resumed with an HTTP ``Range`` request (``If-Range`` guards against a changed file; a server that
  ignores ranges makes it start over); a cut connection is retried ``retries`` times from where it stopped.
- Checks: the size the server announced, and the catalog's size/md5/sha256 when known; a mismatch deletes
  the download and raises DataError with the expected and actual values.
- Extraction (``translate.catalog.extract``; tar of any compression, zip): refused as a whole for an
  absolute path, a ``..`` component, a path that resolves outside the target, any symlink or hardlink, a
  device file or FIFO, an encrypted member, or more bytes than ``max_extracted_ratio`` times the
  catalog's stated size (a decompression bomb). It happens in a hidden temporary folder inside ``root``
  that is renamed to ``root/NAME`` only once complete and checked against the catalog's layout, so a
  failure never leaves a half-written dataset folder (only the ``.part`` file stays, to resume).
- A full disk, while downloading or extracting, is a ``StorageError`` that says so; the bytes downloaded
  so far (or the whole archive) stay, to resume.
- Offline (connection refused, DNS failure, timeout): fails within ``timeout`` seconds with one line
  naming the URL and how to fetch it by hand (``--url /path/to/file``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

from translate.catalog.catalog import DatasetEntry, get_entry
from translate.catalog.extract import (
    ExtractionTooLarge,
    extract_dataset,
    remove_stale_extractions,
    safe_member_path,
)
from translate.catalog.transfer import CHUNK, Downloadable, Interrupted, Restart, read_meta, stream
from translate.errors import DataError, StorageError

# The safe extraction lives in translate.catalog.extract, one HTTP request in translate.catalog.transfer;
# extract_dataset, safe_member_path and Downloadable are still importable from here.
__all__ = [
    "CONNECT_TIMEOUT",
    "Downloadable",
    "ManualDownloadError",
    "download_dataset",
    "extract_dataset",
    "fetch",
    "local_source",
    "obtain",
    "remove_download",
    "safe_member_path",
    "verify_file",
]

log = logging.getLogger("translate")

CONNECT_TIMEOUT = 15.0
PARTIAL_DIR = ".partial"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")


class ManualDownloadError(DataError):
    """The dataset needs an account or a licence agreement: ``steps`` says how to get it."""

    def __init__(self, entry: DatasetEntry) -> None:
        self.entry = entry
        self.steps = entry.manual_steps_text()
        super().__init__(
            f"{entry.name} cannot be downloaded automatically "
            f"({entry.licence or 'licence agreement required'}); get it by hand "
            f"(steps: `translate datasets download {entry.name}`) or pass --url with your own archive"
        )


def download_dataset(
    name: str | DatasetEntry,
    root: str | Path,
    url: str | None = None,
    progress: bool = True,
    *,
    retries: int = 3,
    timeout: float = CONNECT_TIMEOUT,
    retry_wait: float = 1.0,
    keep_archive: bool = False,
    max_extracted_ratio: float | None = None,
) -> Path:
    """Fetch, verify and extract dataset ``name`` into ``root/name`` (already there: left as it is).

    Args:
        name: a catalog name or entry.
        root: the folder that receives ``name/`` (and ``.partial/`` while downloading).
        url: instead of the catalog URL: a mirror (http/https) or a local archive (path or ``file://``).
        progress: show tqdm bars.
        retries: how many times a cut connection is resumed before giving up (the ``.part`` file stays).
        timeout: seconds to wait for the server to answer.
        retry_wait: seconds before the first retry (then twice that, three times...).
        keep_archive: keep the downloaded archive in ``root/.partial`` after extraction.
        max_extracted_ratio: refuse an archive that unpacks to more than this many times the catalog's
            stated size (default ``translate.catalog.extract.max_ratio()``: 4, or
            ``$TRANSLATE_MAX_EXTRACTED_RATIO``).

    Returns:
        The dataset folder ``root/name``.

    Raises:
        ManualDownloadError: the dataset needs an account and no ``url`` was given.
        StorageError: the disk filled up (the downloaded archive is kept to extract next time).
        DataError: every other failure, with a one-line message.
    """
    entry = name if isinstance(name, DatasetEntry) else get_entry(name)
    root = Path(root).expanduser()
    target = root / entry.name
    if target.is_dir() and any(target.iterdir()):
        log.info("%s is already in %s (delete that folder to download it again)", entry.name, target)
        return target
    if target.exists() and not target.is_dir():
        raise DataError(f"{target} exists and is not a folder; move it away to download {entry.name}")
    source = url or entry.url
    if not source:
        raise ManualDownloadError(entry)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_extractions(root, entry.name)
    if local_source(source) is None:
        _warn_if_little_space(root, entry)
    fetching = {"retries": retries, "timeout": timeout, "retry_wait": retry_wait}
    archive, downloaded = obtain(entry, source, root, "an archive or an http(s) URL", progress, **fetching)
    try:
        extract_dataset(archive, entry, root, progress=progress, max_extracted_ratio=max_extracted_ratio)
    except (ExtractionTooLarge, StorageError) as exc:
        kept = f"; the archive stays in {archive} for the next try" if downloaded else ""
        raise type(exc)(f"{exc}{kept}") from None
    except DataError:
        if downloaded:  # a corrupt or hostile archive: fetch it again next time rather than reuse it
            remove_download(archive)
        raise
    if downloaded and not keep_archive:
        remove_download(archive)
    return target


def obtain(
    entry: Downloadable,
    source: str,
    root: Path,
    what: str,
    progress: bool = True,
    *,
    retries: int = 3,
    timeout: float = CONNECT_TIMEOUT,
    retry_wait: float = 1.0,
) -> tuple[Path, bool]:
    """The file of ``entry`` from ``source``, verified.

    Args:
        entry: a dataset or zoo model (``Downloadable``).
        source: a local path or ``file://`` URL (used where it is), or an http(s) URL (fetched into
            ``root/.partial/``, resuming a ``.part`` file there).
        what: what ``--url`` must name, for the error about a local path that is no file.
        progress, retries, timeout, retry_wait: as for ``download_dataset``.

    Returns:
        ``(path, downloaded)``: ``downloaded`` is False for a local source.
    """
    local = local_source(source)
    if local is not None:
        if not local.is_file():
            raise DataError(f"{local} is not a file (--url for {entry.name} must name {what})")
        verify_file(local, entry, delete=False)
        return local, False
    try:
        path = fetch(
            entry,
            source,
            root / PARTIAL_DIR,
            progress=progress,
            retries=retries,
            timeout=timeout,
            retry_wait=retry_wait,
        )
    except DataError:
        with contextlib.suppress(OSError):
            (root / PARTIAL_DIR).rmdir()  # nothing to resume: leave no empty folder behind
        raise
    return path, True


def remove_download(archive: Path) -> None:
    """Delete a downloaded ``archive``, its ``.part.json`` and its folder when that is left empty."""
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + ".part.json").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        archive.parent.rmdir()  # only when empty


# --- sources -----------------------------------------------------------------------------------------


def local_source(source: str) -> Path | None:
    """The local file a source names.

    Args:
        source: a path, a ``file://`` URL or an http(s) URL.

    Returns:
        The path, or None for http(s). Raises DataError for other schemes and remote ``file://`` URLs.
    """
    parsed = urllib.parse.urlparse(source)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DataError(f"cannot read {source}: file:// URLs must name a local file")
        return Path(urllib.request.url2pathname(parsed.path))
    if scheme == "" or len(scheme) == 1:  # a plain path, or a Windows drive letter
        return Path(source).expanduser()
    raise DataError(f"unsupported URL scheme {scheme!r} in {source}: use http(s)://, file:// or a path")


def _archive_suffix(source: str, entry: Downloadable) -> str:
    tail = urllib.parse.urlparse(source).path.rsplit("/", 1)[-1].lower()
    for suffix in ARCHIVE_SUFFIXES:
        if tail.endswith(suffix):
            return suffix
    return f".{entry.archive}" if entry.archive else ".archive"


def _warn_if_little_space(root: Path, entry: DatasetEntry) -> None:
    size = entry.size_bytes or (entry.size_mb * 1e6 if entry.size_mb else None)
    if size is None:
        return
    free = shutil.disk_usage(root).free
    if free < 2.2 * size:  # the archive plus its extracted images
        log.warning(
            "%s needs about %.1f GB (archive + images); %.1f GB free in %s",
            entry.name,
            2.2 * size / 1e9,
            free / 1e9,
            root,
        )


# --- download ----------------------------------------------------------------------------------------


def fetch(
    entry: Downloadable,
    url: str,
    partial_dir: Path,
    progress: bool = True,
    retries: int = 3,
    timeout: float = CONNECT_TIMEOUT,
    retry_wait: float = 1.0,
) -> Path:
    """Download ``url`` to ``partial_dir/NAME.EXT``, resuming ``NAME.EXT.part``, and verify it.

    Args:
        entry: what is downloaded (its name, archive type, size and checksums).
        url: an http(s) URL.
        partial_dir: where the ``.part`` file, its ``.part.json`` and the finished file go.
        progress, retries, timeout, retry_wait: as for ``download_dataset``.

    Returns:
        The verified file.
    """
    partial_dir.mkdir(parents=True, exist_ok=True)
    suffix = _archive_suffix(url, entry)
    done = partial_dir / f"{entry.name}{suffix}"
    part = partial_dir / f"{entry.name}{suffix}.part"
    meta_file = partial_dir / f"{entry.name}{suffix}.part.json"
    if _earlier_download(done, meta_file, entry, url):
        return done
    total = _stream_with_retries(entry, url, part, meta_file, progress, timeout, retries, retry_wait)
    verify_file(part, entry, expected_size=total, delete=True)
    os.replace(part, done)
    return done


def _earlier_download(done: Path, meta_file: Path, entry: Downloadable, url: str) -> bool:
    """Whether ``done`` is a verified download of ``url`` by an earlier run that stopped before extracting;
    any other ``done`` file is deleted."""
    if not done.is_file():
        return False
    meta = read_meta(meta_file)
    if meta.get("url") == url:
        try:
            verify_file(done, entry, expected_size=meta.get("total"), delete=True)
            return True
        except DataError as exc:
            log.warning("%s; downloading it again", exc)
    done.unlink(missing_ok=True)
    return False


def _stream_with_retries(
    entry: Downloadable,
    url: str,
    part: Path,
    meta_file: Path,
    progress: bool,
    timeout: float,
    retries: int,
    retry_wait: float,
) -> int | None:
    """``stream`` until ``part`` is complete: from zero after a ``Restart``, resumed after each of at most
    ``retries`` cut connections. Returns the total size the server announced."""
    attempt = 0
    while True:
        try:
            return stream(entry, url, part, meta_file, progress, timeout)
        except Restart as exc:
            log.warning("%s: %s; downloading from the start", entry.name, exc)
            part.unlink(missing_ok=True)
            meta_file.unlink(missing_ok=True)
        except Interrupted as exc:
            attempt += 1
            have = part.stat().st_size if part.exists() else 0
            if attempt > retries:
                raise DataError(
                    f"download of {entry.name} from {url} interrupted ({exc}) with {have} bytes saved; "
                    f"run the same command again to resume from {part}"
                ) from None
            log.warning(
                "%s: %s; resuming at byte %d (retry %d of %d)", entry.name, exc, have, attempt, retries
            )
            time.sleep(retry_wait * attempt)


# --- verification ------------------------------------------------------------------------------------


def _digests(path: Path, names: list[str]) -> dict[str, str]:
    hashes = {n: hashlib.new(n) for n in names}
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            for h in hashes.values():
                h.update(block)
    return {n: h.hexdigest() for n, h in hashes.items()}


def verify_file(
    path: Path, entry: Downloadable, expected_size: int | None = None, delete: bool = True
) -> None:
    """Check ``path`` against the announced size and the catalog's size/md5/sha256 (where known).

    Args:
        path: the downloaded or local file.
        entry: its ``size_bytes``, ``md5`` and ``sha256`` (each None when unknown).
        expected_size: the size the server announced.
        delete: delete the file (and its ``.part.json``) on a mismatch.

    Raises:
        DataError: naming the expected and actual values of each mismatch.
    """
    size = path.stat().st_size
    problems = []
    for expected, origin in ((entry.size_bytes, "catalog"), (expected_size, "server")):
        if expected is not None and size != expected:
            problems.append(f"size: expected {expected} bytes ({origin}), got {size}")
    if not problems:
        wanted = {n: getattr(entry, n) for n in ("md5", "sha256") if getattr(entry, n)}
        if wanted:
            got = _digests(path, list(wanted))
            problems += [f"{n}: expected {wanted[n]}, got {got[n]}" for n in wanted if got[n] != wanted[n]]
    if problems:
        if delete:
            path.unlink(missing_ok=True)
            path.with_name(path.name.removesuffix(".part") + ".part.json").unlink(missing_ok=True)
        what = "deleted it; run the command again" if delete else "it is not the expected archive"
        raise DataError(f"{entry.name}: {path.name} failed verification ({'; '.join(problems)}); {what}")
