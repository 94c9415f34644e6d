"""One HTTP request of a download, in steps: the resume headers, the request, what the response allows
(append after a ``206`` from the right byte, rewrite after a ``200``), the body into the ``.part`` file.

``translate.catalog.download.fetch`` calls ``stream`` until the file is complete: ``Interrupted`` (a cut
connection) resumes, ``Restart`` (a changed file, a range from elsewhere) starts from zero.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from translate.catalog.disk import disk_full, is_disk_full
from translate.errors import DataError

log = logging.getLogger("translate")

CHUNK = 1 << 20


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


class Interrupted(Exception):
    """The connection broke mid-file: the partial file is kept and the download can resume."""


class Restart(Exception):
    """The partial file cannot be resumed (changed file, unexpected range): start from zero."""


def manual_hint(entry: Downloadable, source: str) -> str:
    """How to fetch ``source`` by hand: the end of a failed download's one-line error."""
    filename = urllib.parse.urlparse(source).path.rsplit("/", 1)[-1] or entry.filename
    command = getattr(entry, "download_command", "translate datasets download")
    return (
        f"download {source} yourself (browser, wget, a mirror) and run "
        f"`{command} {entry.name} --url /path/to/{filename}`"
    )


def read_meta(path: Path) -> dict:
    """The ``.part.json`` beside a partial file (``url``, ``validator``, ``total``); {} when unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(start, total)`` from ``bytes START-END/TOTAL`` or ``bytes */TOTAL``."""
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def stream(
    entry: Downloadable, url: str, part: Path, meta_file: Path, progress: bool, timeout: float
) -> int | None:
    """One HTTP request: append to or (re)write ``part``.

    Args:
        entry: what is downloaded (its name for the bar and the errors).
        url: an http(s) URL.
        part: the partial file, resumed when it has bytes and ``meta_file`` names the same URL.
        meta_file: the ``.part.json`` beside it, rewritten with the URL, validator and total size.
        progress: show a tqdm bar.
        timeout: seconds to wait for the server to answer.

    Returns:
        The total size the server announced (None when it did not).

    Raises:
        Interrupted: the connection broke (the bytes so far stay in ``part``).
        Restart: ``part`` cannot be resumed (another URL, a changed file, a range from elsewhere).
        DataError: an HTTP error or an unreachable host, with how to fetch the file by hand.
        StorageError: the disk filled up (the bytes so far stay in ``part``, to resume).
    """
    have, headers = _resume_headers(url, part, meta_file)
    response = _open(entry, url, headers, have, timeout)
    if response is None:  # the partial file is complete already
        return have
    with response:
        have, mode, total = _resume_mode(entry, url, response, have)
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if mode == "wb" or validator:
            meta_file.write_text(json.dumps({"url": url, "validator": validator, "total": total}))
        _copy_body(response, part, mode, have, total, entry.name, progress)
    size = part.stat().st_size
    if total is not None and size < total:
        raise Interrupted(f"connection closed at byte {size} of {total}")
    return total


def _resume_headers(url: str, part: Path, meta_file: Path) -> tuple[int, dict[str, str]]:
    """``(bytes already in part, request headers)``: a ``Range`` (and ``If-Range``) to resume ``part``.

    Raises ``Restart`` when ``part`` came from another URL.
    """
    meta = read_meta(meta_file)
    have = part.stat().st_size if part.exists() else 0
    if have and meta.get("url") != url:
        raise Restart(f"the partial file {part} came from another URL")
    headers = {"User-Agent": "translate-datasets/1", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    return have, headers


def _open(
    entry: Downloadable, url: str, headers: dict[str, str], have: int, timeout: float
) -> http.client.HTTPResponse | None:
    """The response to the request; None when the server says the ``have`` bytes are the whole file.

    Raises ``Restart`` when the server cannot resume, DataError for HTTP errors and unreachable hosts.
    """
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: complete already, or a different file
            _, total = content_range(exc.headers.get("Content-Range"))
            if total == have:
                return None
            raise Restart("the server cannot resume this partial file") from None
        raise DataError(f"HTTP {exc.code} {exc.reason} from {url}; {manual_hint(entry, url)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"cannot reach {url} ({reason}); {manual_hint(entry, url)}") from None


def _resume_mode(
    entry: Downloadable, url: str, response: http.client.HTTPResponse, have: int
) -> tuple[int, str, int | None]:
    """``(bytes kept, file mode, total size)`` from the response: append after a 206 that starts at
    ``have``, rewrite after a 200. Raises ``Restart`` for a range from elsewhere, DataError otherwise."""
    status = response.status
    if have and status == 206:
        start, total = content_range(response.headers.get("Content-Range"))
        if start != have:
            raise Restart(f"the server sent a range from byte {start}, not {have}")
        return have, "ab", total
    if status == 200:
        if have:
            log.info(
                "%s: the server does not resume (no range support or a changed file); starting over",
                entry.name,
            )
        length = response.headers.get("Content-Length")
        return 0, "wb", int(length) if length and length.isdigit() else None
    raise DataError(f"unexpected HTTP {status} from {url}; {manual_hint(entry, url)}")


def _copy_body(
    response: http.client.HTTPResponse,
    part: Path,
    mode: str,
    have: int,
    total: int | None,
    name: str,
    progress: bool,
) -> None:
    """Write the response body to ``part`` in chunks with a tqdm bar; a cut connection is ``Interrupted``,
    a full disk a ``StorageError``."""
    try:
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while chunk := _read(response):
                out.write(chunk)
                bar.update(len(chunk))
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        saved = part.stat().st_size if part.exists() else 0
        then = f"{saved} bytes are saved in {part}: free some space and run the same command to resume"
        raise disk_full(part.parent, f"downloading {name}", then) from None


def _read(response: http.client.HTTPResponse) -> bytes:
    """The next chunk of the body (b"" at its end); a broken connection is ``Interrupted``."""
    try:
        return response.read(CHUNK)
    except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
        raise Interrupted(str(exc) or type(exc).__name__) from None
