"""Download a catalog dataset, verify it, extract it safely and leave the layout ``translate train`` reads.

``download_dataset("facades", Path("data"))`` gives ``data/facades/{train,val,test}/`` (pix2pix A|B
pairs); a CycleGAN set gives ``data/horse2zebra/{trainA,trainB,testA,testB}/``.

- Source: the catalog URL, or ``url=`` a mirror (http/https) or a local copy (a path or ``file://`` URL).
- Download: streamed with urllib into ``root/.partial/NAME.EXT.part`` with a tqdm bar; a partial file is
  resumed with an HTTP ``Range`` request (``If-Range`` guards against a changed file; a server that
  ignores ranges makes it start over); a cut connection is retried ``retries`` times from where it stopped.
- Checks: the size the server announced, and the catalog's size/md5/sha256 when known; a mismatch deletes
  the download and raises DataError with the expected and actual values.
- Extraction (tar of any compression, zip): refused as a whole for an absolute path, a ``..`` component,
  a path that resolves outside the target, any symlink or hardlink, a device file or FIFO, an encrypted
  member. It happens in a hidden temporary folder inside ``root`` that is renamed to ``root/NAME`` only
  once complete and checked against the catalog's layout, so a failure never leaves a half-written
  dataset folder (only the ``.part`` file stays, to resume).
- Offline (connection refused, DNS failure, timeout): fails within ``timeout`` seconds with one line
  naming the URL and how to fetch it by hand (``--url /path/to/file``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from tqdm import tqdm

from translate.catalog.catalog import DatasetEntry, get_entry
from translate.data.layout import detect_layout, is_image_name
from translate.errors import DataError

log = logging.getLogger("translate")

CONNECT_TIMEOUT = 15.0
CHUNK = 1 << 20
PARTIAL_DIR = ".partial"
EXTRACT_PREFIX = ".extract-"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")


class Downloadable(Protocol):
    """What ``fetch`` and ``verify_file`` read of a catalog entry: a ``DatasetEntry``, or a model of the zoo
    (``translate.catalog.zoo.ModelEntry``). ``download_command`` (optional) is the command that the
    by-hand hint of a failed download names (default ``translate datasets download``)."""

    name: str
    archive: str | None
    size_bytes: int | None
    md5: str | None
    sha256: str | None

    @property
    def filename(self) -> str: ...


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


class _Interrupted(Exception):
    """The connection broke mid-file: the partial file is kept and the download can resume."""


class _Restart(Exception):
    """The partial file cannot be resumed (changed file, unexpected range): start from zero."""


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
) -> Path:
    """Fetch dataset ``name`` into ``root/name`` and return that folder (already there: returned as is).

    ``url`` overrides the catalog URL: a mirror (http/https) or a local archive (path or ``file://``).
    ``retries``: how many times a cut connection is resumed before giving up (the ``.part`` file stays).
    ``keep_archive``: keep the downloaded archive in ``root/.partial`` after extraction.
    Raises ``ManualDownloadError`` for datasets that need an account (without ``url``), and
    ``DataError`` for every other failure, with a one-line message.
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
    _remove_stale_extractions(root, entry.name)
    if local_source(source) is None:
        _warn_if_little_space(root, entry)
    archive, downloaded = obtain(
        entry,
        source,
        root,
        "an archive or an http(s) URL",
        progress,
        retries=retries,
        timeout=timeout,
        retry_wait=retry_wait,
    )
    try:
        extract_dataset(archive, entry, root, progress=progress)
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
    """The file of ``entry`` from ``source``: ``(path, downloaded)``. A local ``source`` (path or
    ``file://``) is checked and used where it is (``downloaded`` False); a URL is fetched into
    ``root/.partial/`` (resuming a ``.part`` file there) and verified. ``what``: what ``--url`` must name,
    for the error about a local path that is no file."""
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
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + ".part.json").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        archive.parent.rmdir()  # only when empty


# --- sources -----------------------------------------------------------------------------------------


def local_source(source: str) -> Path | None:
    """The local file a source names (a path or ``file://`` URL), or None for http(s)."""
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


def _manual_hint(entry: Downloadable, source: str) -> str:
    filename = urllib.parse.urlparse(source).path.rsplit("/", 1)[-1] or entry.filename
    command = getattr(entry, "download_command", "translate datasets download")
    return (
        f"download {source} yourself (browser, wget, a mirror) and run "
        f"`{command} {entry.name} --url /path/to/{filename}`"
    )


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
    """Download ``url`` to ``partial_dir/NAME.EXT`` (resuming ``.part``), verify it and return its path."""
    partial_dir.mkdir(parents=True, exist_ok=True)
    suffix = _archive_suffix(url, entry)
    done = partial_dir / f"{entry.name}{suffix}"
    part = partial_dir / f"{entry.name}{suffix}.part"
    meta_file = partial_dir / f"{entry.name}{suffix}.part.json"
    if done.is_file():  # downloaded by an earlier run that stopped before extracting
        meta = _read_meta(meta_file)
        if meta.get("url") == url:
            try:
                verify_file(done, entry, expected_size=meta.get("total"), delete=True)
                return done
            except DataError as exc:
                log.warning("%s; downloading it again", exc)
        done.unlink(missing_ok=True)
    attempt = 0
    while True:
        try:
            total = _stream(entry, url, part, meta_file, progress, timeout)
            break
        except _Restart as exc:
            log.warning("%s: %s; downloading from the start", entry.name, exc)
            part.unlink(missing_ok=True)
            meta_file.unlink(missing_ok=True)
        except _Interrupted as exc:
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
    verify_file(part, entry, expected_size=total, delete=True)
    os.replace(part, done)
    return done


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(start, total)`` from ``bytes START-END/TOTAL`` or ``bytes */TOTAL``."""
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _stream(
    entry: Downloadable, url: str, part: Path, meta_file: Path, progress: bool, timeout: float
) -> int | None:
    """One HTTP request: append to or (re)write ``part``; returns the total size the server announced."""
    meta = _read_meta(meta_file)
    have = part.stat().st_size if part.exists() else 0
    if have and meta.get("url") != url:
        raise _Restart(f"the partial file {part} came from another URL")
    headers = {"User-Agent": "translate-datasets/1", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: complete already, or a different file
            _, total = _content_range(exc.headers.get("Content-Range"))
            if total == have:
                return total
            raise _Restart("the server cannot resume this partial file") from None
        raise DataError(f"HTTP {exc.code} {exc.reason} from {url}; {_manual_hint(entry, url)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"cannot reach {url} ({reason}); {_manual_hint(entry, url)}") from None
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        if have and status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != have:
                raise _Restart(f"the server sent a range from byte {start}, not {have}")
            mode = "ab"
        elif status == 200:
            if have:
                log.info(
                    "%s: the server does not resume (no range support or a changed file); starting over",
                    entry.name,
                )
            have, mode = 0, "wb"
            total = int(length) if length and length.isdigit() else None
        else:
            raise DataError(f"unexpected HTTP {status} from {url}; {_manual_hint(entry, url)}")
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if mode == "wb" or validator:
            meta_file.write_text(json.dumps({"url": url, "validator": validator, "total": total}))
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=entry.name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                    raise _Interrupted(str(exc) or type(exc).__name__) from None
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Interrupted(f"connection closed at byte {size} of {total}")
    return total


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

    On a mismatch the file is deleted (``delete``) and DataError names the expected and actual values.
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


# --- safe extraction ---------------------------------------------------------------------------------


def safe_member_path(dest: Path, name: str) -> Path:
    """Where archive member ``name`` goes under ``dest``; DataError for absolute or escaping paths."""
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
    while True:
        entries = [e for e in folder.iterdir() if e.name not in JUNK and not e.name.startswith(".")]
        dirs = [e for e in entries if e.is_dir()]
        images = [e for e in entries if not e.is_dir() and is_image_name(e.name)]
        if len(dirs) == 1 and not images:  # a README or licence file beside the folder stays behind
            folder = dirs[0]
        else:
            return folder


def _remove_stale_extractions(root: Path, name: str) -> None:
    for stale in root.glob(f"{EXTRACT_PREFIX}{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def extract_dataset(archive: Path, entry: DatasetEntry, root: Path, progress: bool = True) -> Path:
    """Extract ``archive`` safely; move the dataset to ``root/entry.name`` once complete and well laid out."""
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
