"""IDX files, the MNIST / Fashion-MNIST format: a 4-byte magic number (two zero bytes, a type code, the
number of dimensions), one big-endian ``uint32`` size per dimension, then the raw array. Read gzipped or
not.

``train-images-idx3-ubyte[.gz]`` holds the ``(N, H, W)`` training images, ``train-labels-idx1-ubyte``
their ``(N,)`` labels; ``t10k-`` or ``test-`` files hold the test split.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from translate.errors import DataError

IDX_PATTERN = re.compile(r"^(?P<split>.+?)[-.]?(?P<kind>images|labels)[-.]idx(?P<ndim>\d)-ubyte(?:\.gz)?$")
"""An IDX file name: ``split`` (``train``, ``t10k``...), ``kind`` (``images`` or ``labels``), ``ndim``."""
IDX_TYPES = {
    0x08: ("uint8", 1),
    0x09: ("int8", 1),
    0x0B: (">i2", 2),
    0x0C: (">i4", 4),
    0x0D: (">f4", 4),
    0x0E: (">f8", 8),
}
"""The type code of the magic number -> ``(numpy dtype, bytes per item)``."""


def open_idx(path: Path) -> BinaryIO:
    """Open an IDX file for reading, gunzipping a ``.gz`` one.

    Args:
        path: the file.

    Returns:
        A binary file object at the start of the header.
    """
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def read_idx_header(path: Path) -> tuple[str, tuple[int, ...]]:
    """The type and shape an IDX file declares (only its header is read).

    Args:
        path: an IDX file, gzipped or not.

    Returns:
        ``(numpy dtype, shape)``, e.g. ``("uint8", (60000, 28, 28))``.

    Raises:
        DataError: the file cannot be read or is not an IDX file.
    """
    try:
        with open_idx(path) as f:
            return _idx_header(f, path)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX header ({exc})") from None


def read_idx(path: Path) -> np.ndarray:
    """The whole array of an IDX file, read at once.

    Args:
        path: an IDX file, gzipped or not.

    Returns:
        The array, of the shape and dtype of its header (``(N, H, W)`` ``uint8`` for MNIST images).

    Raises:
        DataError: naming the file, when it is not an IDX file, is corrupt, or holds fewer or more bytes
            of data than its header declares.
    """
    try:
        with open_idx(path) as f:
            dtype, shape = _idx_header(f, path)
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: corrupt or truncated IDX file ({exc})") from None
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(data) != expected:
        match = IDX_PATTERN.match(path.name)
        what = {"images": "image", "labels": "label"}[match.group("kind")] if match else "IDX"
        size = "x".join(map(str, shape))
        raise DataError(
            f"{path}: {'truncated' if len(data) < expected else 'too long'}: expected {expected} bytes of "
            f"{what} data ({size} {dtype}), found {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _idx_header(f: BinaryIO, path: Path) -> tuple[str, tuple[int, ...]]:
    """Read the magic number and dimensions from the start of an open IDX file."""
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or not 1 <= head[3] <= 4:
        raise DataError(f"{path} is not an IDX file (magic number {head.hex() or 'missing'})")
    ndim = head[3]
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: IDX header truncated")
    return IDX_TYPES[head[2]][0], struct.unpack(f">{ndim}I", dims)


def find_idx_files(root: Path) -> dict[str, Path]:
    """The files named like IDX files in ``root`` and in ``root/raw`` (torchvision's folder).

    Args:
        root: the dataset folder.

    Returns:
        ``{path relative to root: path}``, sorted by name within each folder, ``root`` first.
    """
    found: dict[str, Path] = {}
    for folder in (root, root / "raw"):
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.is_file())
        except OSError:
            continue
        for name in names:
            if IDX_PATTERN.match(name):
                found[(folder / name).relative_to(root).as_posix()] = folder / name
    return found


def idx_split(name: str) -> str:
    """The split an IDX file belongs to, from its name.

    Args:
        name: a file name or path matching ``IDX_PATTERN``.

    Returns:
        ``"train"``, ``"test"`` (for ``t10k-`` and ``test-``), or the file's own prefix, lower case.
    """
    prefix = IDX_PATTERN.match(Path(name).name).group("split").lower()
    return "test" if prefix in ("t10k", "test") else "train" if prefix == "train" else prefix
