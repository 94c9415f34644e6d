"""One image file checked from its header, as ``translate datasets inspect`` does for every image.

``check_image(path)`` returns an ``ImageInfo``: ``usable`` False with an error for a file the loaders cannot
read (zero bytes, not an image, corrupt or truncated, a broken symlink); warnings for what they convert
(16-bit, 32-bit or float pixels, CMYK, EXIF rotation) or what looks wrong (a symlink, an A|B image that is
not twice as wide as high, smaller than ``min_size``, an extension that does not match the content).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from translate.data.io import exif_orientation

EXIF_ORIENTATION = 0x0112
FORMAT_EXTENSIONS = {
    "JPEG": {".jpg", ".jpeg", ".jpe", ".jfif"},
    "MPO": {".jpg", ".jpeg"},
    "PNG": {".png"},
    "BMP": {".bmp"},
    "WEBP": {".webp"},
    "TIFF": {".tif", ".tiff"},
    "GIF": {".gif"},
    "PPM": {".ppm", ".pgm", ".pbm", ".pnm"},
}
_TAIL = 1024


@dataclass
class Problem:
    """One file that is a problem, and why."""

    path: Path
    reason: str
    severity: str = "error"  # "error": unusable; "warning": used, but converted or suspicious


@dataclass
class ImageInfo:
    """What the header check found for one file (``usable`` false: the loaders will skip it)."""

    path: Path
    usable: bool
    size: tuple[int, int] | None = None  # (width, height)
    mode: str | None = None
    format: str | None = None
    bits: int = 8
    problems: list[Problem] = field(default_factory=list)


def _head_tail(path: Path) -> tuple[bytes, bytes]:
    with open(path, "rb") as f:
        head = f.read(64)
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(max(0, end - _TAIL))
        return head, f.read()


def check_image(path: Path, min_size: int = 32, pair: bool = False, deep: bool = False) -> ImageInfo:
    """Check one image file from its header and its PNG chunks' CRCs.

    Args:
        path: the file.
        min_size: a smaller side (of each half, with ``pair``) under this is a ``tiny`` warning.
        pair: the file should be an A|B pair (width = 2 x height).
        deep: decode the whole image too (slower; finds damage inside the pixel data).

    Returns:
        What was found: ``usable`` False with an error when the loaders cannot read the file; warnings
        for what they convert or what looks wrong.
    """
    info = ImageInfo(path, usable=False)
    reason = _file_problem(path, info)
    orientation = 1
    if reason is None:
        reason, orientation = _read_header(path, info, deep)
    if reason is not None:
        info.problems.append(Problem(path, reason, "error"))
        return info
    info.usable = True
    info.problems += [Problem(path, w, "warning") for w in _conversion_warnings(info, orientation)]
    info.problems += [Problem(path, w, "warning") for w in _shape_warnings(info, min_size, pair)]
    return info


def _file_problem(path: Path, info: ImageInfo) -> str | None:
    """Why the file itself is unusable (broken link, not a regular file, zero bytes), or None.

    A working symbolic link adds a warning to ``info``.
    """
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            try:
                st = os.stat(path)
            except OSError:
                return f"broken symbolic link (to {target})"
            info.problems.append(Problem(path, f"symbolic link (to {target})", "warning"))
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size == 0:
        return "zero-byte file"
    return None


def _read_header(path: Path, info: ImageInfo, deep: bool) -> tuple[str | None, int]:
    """Open the image with Pillow and fill ``info``'s format, mode, size and bits.

    Returns ``(why it is unusable or None, EXIF orientation)``.
    """
    orientation = 1
    try:
        head, tail = _head_tail(path)
        with Image.open(path) as image:
            info.format, info.mode, info.size = image.format, image.mode, image.size
            if image.mode == "P" and "transparency" in image.info:
                info.mode = "P+alpha"
            if image.format == "TIFF":
                orientation = image.tag_v2.get(EXIF_ORIENTATION, 1)
            else:  # the EXIF block parsed at open (reading more would spoil verify())
                exif = image.info.get("exif", b"")
                orientation = exif_orientation(exif) if isinstance(exif, bytes) else 1
            if deep:
                image.load()
            else:
                image.verify()
    except UnidentifiedImageError:
        return "not an image (content not recognised)", orientation
    except PermissionError as exc:
        return f"cannot read: {exc.strerror}", orientation
    except Exception as exc:  # Pillow raises many types on corrupt data
        what = f"corrupt {info.format}" if info.format else "corrupt"
        return f"{what}: {' '.join(str(exc).split()) or type(exc).__name__}", orientation
    if info.format in ("JPEG", "MPO") and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)", orientation
    if info.format == "PNG" and head[12:16] == b"IHDR":
        info.bits = head[24]
    elif info.mode and info.mode.startswith("I;16"):
        info.bits = 16
    return None, orientation


def _conversion_warnings(info: ImageInfo, orientation: object) -> list[str]:
    """What the loaders convert when they read this usable image (bit depth, colours, rotation)."""
    warnings = []
    if info.bits == 16:
        warnings.append(f"16-bit {info.format} (scaled to 8 bits when read)")
    if info.mode in ("I", "F"):
        kind = "32-bit integer" if info.mode == "I" else "floating-point"
        warnings.append(f"{kind} pixels (scaled to 8 bits when read)")
    if info.mode == "CMYK":
        warnings.append("CMYK colours (converted to RGB when read)")
    if isinstance(orientation, int) and orientation not in (0, 1):
        warnings.append(f"EXIF orientation {orientation} (rotated upright when read)")
    return warnings


def _shape_warnings(info: ImageInfo, min_size: int, pair: bool) -> list[str]:
    """What looks wrong about a usable image's size or name (not a pair, tiny, a mismatched suffix)."""
    warnings = []
    width, height = info.size
    if pair and width != 2 * height:
        warnings.append(f"not an A|B pair: {width}x{height} (width should be 2 x height)")
    side = min(width // 2 if pair else width, height)
    if side < min_size:
        warnings.append(f"tiny: {width}x{height} (under {min_size} px)")
    expected = FORMAT_EXTENSIONS.get(info.format or "")
    suffix = info.path.suffix
    if expected and suffix.lower() not in expected:
        warnings.append(f"{info.format} data in a {suffix or 'suffix-less'} file")
    return warnings
