"""The ``SHA256SUMS`` beside a checkpoint's files: hashing a file, reading the list as ``sha256sum -c``
does, and checking a file against it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from translate.engine.run_folder import SUMS_FILE
from translate.errors import CorruptCheckpointError


def file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(file: Path) -> None:
    """Check ``file`` against the ``SHA256SUMS`` beside it; a mismatch is a CorruptCheckpointError.
    Files without one (checkpoints from before hashes were stored, a copied weights file) are not checked."""
    sums_file = file.parent / SUMS_FILE
    if not sums_file.is_file():
        return
    try:
        sums = parse_sums(sums_file.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptCheckpointError(f"{sums_file} is unreadable ({exc})") from None
    if file.name not in sums:
        raise CorruptCheckpointError(f"{sums_file} lists no hash for {file.name}")
    if file_sha256(file) != sums[file.name]:
        raise CorruptCheckpointError(
            f"{file} is corrupt: its content does not match the sha256 in {SUMS_FILE} (truncated or damaged)"
        )


SHA256_HEX = frozenset("0123456789abcdef")


def parse_sums(text: str) -> dict[str, str]:
    """The hashes of a ``SHA256SUMS`` file by file name, as ``sha256sum -c`` reads it: ``HASH  NAME`` or
    ``HASH *NAME`` (binary mode), hex digits in either case, a leading backslash for escaped names, the
    BSD form ``SHA256 (NAME) = HASH`` (``--tag``), blank lines and CRLF line ends.

    Args:
        text: the file's content.

    Returns:
        ``{name: lower-case hex sha256}``.

    Raises:
        ValueError: a line that is none of these.
    """
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        escaped = line.startswith("\\")
        body = line[1:] if escaped else line
        if body.startswith("SHA256 (") and ") = " in body:
            name, _, digest = body[len("SHA256 (") :].rpartition(") = ")
        else:
            digest, _, name = body.strip().partition(" ")
            name = name.strip().removeprefix("*")
        digest = digest.strip().lower()
        if not name or len(digest) != 64 or not set(digest) <= SHA256_HEX:
            raise ValueError(f"line {number} is not '<sha256>  <file name>'")
        if escaped:  # sha256sum writes a backslash as \\ and a newline as \n in such names
            name = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name)
        sums[name] = digest
    return sums
