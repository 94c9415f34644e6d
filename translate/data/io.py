"""Finding and reading images: OpenCV first (fast), Pillow for what OpenCV cannot decode.

``read_image`` always returns ``uint8`` RGB ``(H, W, 3)`` or grayscale ``(H, W, 1)``: EXIF orientation
applied, alpha composited onto white, 16-bit and float images scaled to 8 bits, CMYK converted;
``read_image_and_alpha`` also returns the alpha channel. Every image read (training data, ``apply``,
evaluation) is first checked against one pixel limit (``max_pixels``: ``TRANSLATE_MAX_PIXELS``, default
179 MP) from its header, before anything is decoded: a small file can describe a huge image (a 1 MB PNG of
20000x20000 px would make OpenCV allocate 1.2 GB and more); one above it is an ``ImageTooLargeError`` (an
unreadable image: training and ``apply`` skip it with one line). ``write_image`` writes a result whole
(temporary name, then rename) in the format its suffix names, at full quality.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageOps, features

from translate.errors import ConfigError, DataError

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".bmp",
        ".webp",
        ".tif",
        ".tiff",
        ".gif",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)
"""Lower-case suffixes that ``list_images`` treats as images."""

WRITE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    **({".webp": "WEBP"} if features.check("webp") else {}),
}
"""Lower-case suffixes ``write_image`` writes, and their formats (WebP when Pillow was built with it)."""

EXIF_ORIENTATION = 0x0112

DEFAULT_MAX_PIXELS = 178_956_970
"""The largest image read, in pixels (179 MP: Pillow's own decompression-bomb limit, twice its
``Image.MAX_IMAGE_PIXELS``); ``TRANSLATE_MAX_PIXELS`` (``set_max_pixels``) changes it."""
MAX_PIXELS_ENV = "TRANSLATE_MAX_PIXELS"
"""The environment variable of the pixel limit: set in the environment, it reaches data loader workers and
every training process too."""

log = logging.getLogger("translate")
T = TypeVar("T")

# OpenCV's IMREAD_UNCHANGED (needed for alpha and 16 bits) ignores EXIF orientation for these
# formats, so it is applied here; its TIFF decoder applies the orientation tag itself.
_MAGIC_WITH_EXIF = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF")


class UnreadableImageError(DataError):
    """An image file is missing, empty, corrupt, truncated or not an image."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # one line
        super().__init__(f"cannot read image {self.path}: {self.reason}")

    def __reduce__(self) -> tuple:  # picklable across DataLoader worker processes
        return type(self), (self.path, self.reason)


class ImageTooLargeError(UnreadableImageError):
    """An image whose header gives more pixels than the limit (``max_pixels``): never decoded."""


def max_pixels() -> int:
    """The pixel limit of every image read: ``TRANSLATE_MAX_PIXELS`` when set, else ``DEFAULT_MAX_PIXELS``.

    Raises:
        ConfigError: the variable is not a positive whole number.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{MAX_PIXELS_ENV} must be a positive whole number of pixels; got {text!r}")
    return value


def set_max_pixels(pixels: int | None) -> None:
    """Set the pixel limit (``--max-pixels``) for this process and the ones it starts (it is kept in
    ``TRANSLATE_MAX_PIXELS``); None goes back to the default.

    Raises:
        ConfigError: not a positive number.
    """
    if pixels is None:
        os.environ.pop(MAX_PIXELS_ENV, None)
        return
    if isinstance(pixels, bool) or int(pixels) != pixels or pixels < 1:
        raise ConfigError(f"the pixel limit must be a positive whole number; got {pixels!r}")
    os.environ[MAX_PIXELS_ENV] = str(int(pixels))


def pixel_limit_problem(width: int, height: int) -> str | None:
    """Why an image of ``width`` x ``height`` is not read (one line), or None when it is within the limit."""
    limit = max_pixels()
    if width * height <= limit:
        return None
    return (
        f"{width}x{height} px ({width * height / 1e6:.4g} MP) is above the limit of {limit / 1e6:.4g} MP "
        f"(raise it with --max-pixels or {MAX_PIXELS_ENV})"
    )


def check_header_pixels(path: str | Path, data: np.ndarray | bytes) -> None:
    """Check an encoded image against the pixel limit from its header alone (Pillow reads the size
    without decoding); formats Pillow cannot identify are left to the decoder.

    Raises:
        ImageTooLargeError: the header gives more pixels than ``max_pixels``.
    """
    encoded = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    try:
        with Image.open(io.BytesIO(encoded)) as header:
            width, height = header.size
    except Image.DecompressionBombError:  # above Pillow's own limit: its plugin reads the size alone
        size = _plugin_size(encoded)
        if size is None:
            raise ImageTooLargeError(path, "more pixels than Pillow's limit of decompression bombs") from None
        width, height = size
    except Exception:  # not a format Pillow knows (or a broken header): the decoders say what is wrong
        return
    problem = pixel_limit_problem(width, height)
    if problem is not None:
        raise ImageTooLargeError(path, problem)


def _plugin_size(encoded: bytes) -> tuple[int, int] | None:
    """The size in an image's header as Pillow's format plugin reads it, without ``Image.open``'s
    decompression-bomb check (which refuses the header of a huge image before saying its size)."""
    Image.init()
    for format_id in Image.ID:
        factory, accept = Image.OPEN[format_id]
        try:
            if accept is None or accept(encoded[:16]):
                return factory(io.BytesIO(encoded), "").size
        except Exception:
            continue
    return None


def walk_files(folder: str | Path, recursive: bool = True, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Every file under ``folder`` (dangling symlinks included), sorted; hidden entries skipped.

    Symlinked folders are followed, each real folder once; ``exclude`` names top-level sub-folders to
    leave out. A missing folder gives an empty list.
    """
    folder = Path(folder)
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    pending = [(folder, 0)]
    while pending:
        current, depth = pending.pop()
        try:
            stat = current.stat()
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:  # a permission problem
                is_dir = False
            if not is_dir:
                found.append(Path(entry.path))
            elif recursive and not (depth == 0 and entry.name in exclude):
                pending.append((Path(entry.path), depth + 1))
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def list_images(folder: str | Path, recursive: bool = True, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Image files under ``folder`` by extension (any case), sorted, as :func:`walk_files` finds them."""
    return [
        p
        for p in walk_files(folder, recursive, exclude)
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    ]


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image as ``uint8`` ``(H, W, 3)`` RGB, or ``(H, W, 1)`` grayscale for ``channels=1``.

    EXIF orientation is applied; RGBA/LA/palette transparency is composited onto white; 16-bit and float
    images are scaled to 8 bits; CMYK is converted. Raises ``UnreadableImageError`` (with the path) for
    anything that is not a readable image.
    """
    return read_image_and_alpha(path, channels)[0]


def read_image_and_alpha(path: str | Path, channels: int = 3) -> tuple[np.ndarray, np.ndarray | None]:
    """``read_image`` and the image's ``uint8`` ``(H, W)`` alpha channel (None when it has none)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise UnreadableImageError(path, exc.strerror if isinstance(exc, OSError) else exc) from None
    if data.size == 0:
        raise UnreadableImageError(path, "empty file (0 bytes)")
    check_header_pixels(path, data)
    image = _decode_opencv(data)
    if image is None:
        image = _decode_pillow(path, data)
    return split_alpha(image, channels)


def split_alpha(image: np.ndarray, channels: int = 3) -> tuple[np.ndarray, np.ndarray | None]:
    """Any decoded array (gray, gray+alpha, RGB, RGBA; any depth) -> ``uint8`` ``(H, W, channels)`` with
    transparency composited onto white (as training reads images), and the ``uint8`` ``(H, W)`` alpha
    channel or None."""
    if image.ndim == 2:
        image = image[:, :, None]
    image = _to_uint8(image)
    alpha = image[:, :, -1].copy() if image.shape[2] in (2, 4) else None
    return _to_channels(image, channels), alpha


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> Path:
    """Write ``uint8`` ``(H, W[, C])`` (C: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) in the format of the suffix
    of ``path`` (``WRITE_FORMATS``): JPEG at ``quality`` (full-resolution colour from 90 up; alpha composited
    onto white), WebP at ``quality`` (lossless at 100), PNG lossless. Written to a temporary name and
    renamed, so an interrupted run never leaves half an image; no EXIF (the pixels are upright)."""
    path = Path(path)
    image_format = WRITE_FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise DataError(f"cannot write {path.name}: use one of {', '.join(WRITE_FORMATS)}")
    if not 1 <= quality <= 100:
        raise DataError(f"quality must be between 1 and 100; got {quality}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    options: dict[str, object] = {}
    if image_format == "JPEG":
        if image.ndim == 3 and image.shape[2] in (2, 4):
            image = _composite_on_white(image)
            image = image[:, :, 0] if image.shape[2] == 1 else image
        options = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    elif image_format == "WEBP":
        options = {"quality": quality, "lossless": quality == 100}
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = name_max(path.parent)
    if len(os.fsencode(path.name)) > limit:
        raise DataError(
            f"cannot write {path}: its name is {len(os.fsencode(path.name))} bytes, longer than the "
            f"{limit} this file system allows"
        )
    partial = partial_path(path, limit)
    try:
        Image.fromarray(np.ascontiguousarray(image)).save(partial, format=image_format, **options)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return path


def name_max(folder: str | Path) -> int:
    """The longest file name (in bytes) the file system of ``folder`` takes (255 where it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def partial_path(path: Path, limit: int = 255) -> Path:
    """Where ``write_image`` writes ``path`` before renaming it: ``.NAME.partial`` beside it, or, for a name
    too long for that, ``.partial-<hash of the name><suffix>``: never longer than the file system allows."""
    partial = path.with_name(f".{path.name}.partial")
    if len(os.fsencode(partial.name)) <= limit:
        return partial
    digest = hashlib.sha1(os.fsencode(path.name)).hexdigest()[:16]
    return path.with_name(f".partial-{digest}{path.suffix[:16]}")


def _decode_opencv(data: np.ndarray) -> np.ndarray | None:
    """Decode with OpenCV into RGB(A) / gray(+alpha) order with orientation applied; None when it fails."""
    try:
        if hasattr(cv2, "imdecodeWithMetadata"):  # OpenCV >= 4.12: the EXIF block comes with the pixels
            image, kinds, blocks = cv2.imdecodeWithMetadata(data, cv2.IMREAD_UNCHANGED)
            exif = next((bytes(b) for k, b in zip(kinds, blocks) if k == cv2.IMAGE_METADATA_EXIF), b"")
        else:  # pragma: no cover - older OpenCV
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            exif = b""
    except cv2.error:
        return None
    if image is None or image.size == 0:
        return None
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    elif image.ndim != 2 and not (image.ndim == 3 and image.shape[2] in (1, 2)):
        return None
    head = data[:12].tobytes()
    if head.startswith(_MAGIC_WITH_EXIF) and (head[:4] != b"RIFF" or head[8:12] == b"WEBP"):
        if not exif and not hasattr(cv2, "imdecodeWithMetadata"):  # pragma: no cover - older OpenCV
            exif = _pillow_exif(data)
        image = apply_orientation(image, exif_orientation(exif))
    return image


def _pillow_exif(data: np.ndarray) -> bytes:  # pragma: no cover - only with OpenCV < 4.12
    try:
        with Image.open(io.BytesIO(data.tobytes())) as pil:
            return pil.getexif().tobytes()
    except Exception:
        return b""


def _decode_pillow(path: Path, data: np.ndarray) -> np.ndarray:
    """Decode with Pillow (what OpenCV lacks), orientation applied, as ``_decode_opencv`` does."""
    try:
        with Image.open(io.BytesIO(data.tobytes())) as pil:
            pil.load()
            return pil_to_array(ImageOps.exif_transpose(pil))
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError...) on bad data
        reason = str(exc) or type(exc).__name__
        if "cannot identify image file" in reason:
            reason = "not an image, or a format neither OpenCV nor Pillow can decode"
        raise UnreadableImageError(path, reason) from None


def pil_to_array(pil: Image.Image) -> np.ndarray:
    """A PIL image's pixels as gray, gray+alpha, RGB or RGBA, at their own depth (no orientation applied)."""
    has_alpha = pil.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in pil.info
    if pil.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F") and not has_alpha:
        return np.asarray(pil)
    if pil.mode in ("LA", "La", "L") or (pil.mode in ("P", "PA") and _palette_is_gray(pil)):
        return np.asarray(pil.convert("LA") if has_alpha else pil.convert("L"))
    return np.asarray(pil.convert("RGBA" if has_alpha else "RGB"))


def _palette_is_gray(pil: Image.Image) -> bool:
    colors = np.asarray(pil.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    return bool(colors.size) and bool((colors == colors[:, :1]).all())


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Any decoded array (gray, gray+alpha, RGB, RGBA; any depth) -> ``uint8`` ``(H, W, channels)``."""
    if image.ndim == 2:
        image = image[:, :, None]
    image = _to_uint8(image)
    if image.shape[2] in (2, 4):
        image = _composite_on_white(image)
    if channels == 3 and image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif channels == 1 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if image.dtype.kind == "u" and image.dtype.itemsize == 2:  # 16 bits, either byte order
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        scale = 255.0 if np.nanmax(image, initial=0.0) <= 1.0 else 1.0  # [0, 1] floats, else [0, 255]
        return np.clip(np.nan_to_num(image * scale) + 0.5, 0, 255).astype(np.uint8)
    # 32-bit integers (Pillow's "I"): 16-bit data in practice, or 8-bit values when small
    image = image.astype(np.int64)
    high = 65535 if image.max(initial=0) > 255 else 255
    return (np.clip(image, 0, high) * 255 // high).astype(np.uint8)


def _composite_on_white(image: np.ndarray) -> np.ndarray:
    """Gray+alpha or RGBA ``uint8`` -> gray or RGB over a white background."""
    color, alpha = image[:, :, :-1], image[:, :, -1:]
    if alpha.min() == 255:
        return np.ascontiguousarray(color)
    a = alpha.astype(np.uint16)
    # c * a + 255 * (1 - a) in 8-bit fixed point, rounded
    blended = (color.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return blended.astype(np.uint8)


def exif_orientation(exif: bytes) -> int:
    """The orientation tag (1..8) of a TIFF-structured EXIF block (``Exif\\0\\0`` prefix allowed), else 1."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if exif[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, offset)
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHI4s", exif, offset + 2 + 12 * i)
            if tag == EXIF_ORIENTATION:
                (orientation,) = struct.unpack_from(order + ("H" if kind == 3 else "I"), value)
                return orientation if 1 <= orientation <= 8 else 1
    except struct.error:
        pass
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an ``(H, W[, C])`` array upright given its EXIF orientation (1..8), like ``exif_transpose``."""
    if orientation == 2:
        image = image[:, ::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation == 4:
        image = image[::-1]
    elif orientation == 5:
        image = image.swapaxes(0, 1)
    elif orientation == 6:
        image = image.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        image = image.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        image = image.swapaxes(0, 1)[::-1]
    return np.ascontiguousarray(image)


class SkippingReader:
    """Loads ``files[index]``, moving on to the next index when a file is unreadable.

    Each bad file is logged once and remembered (``bad``: path -> reason), so it is not read again;
    ``max_consecutive`` failures in a row (a folder of bad files) raise a DataError. With DataLoader
    workers each worker keeps its own record.
    """

    def __init__(self, max_consecutive: int = 50) -> None:
        self.max_consecutive = max_consecutive
        self.bad: dict[Path, str] = {}

    @property
    def skipped(self) -> int:
        """How many distinct files were found unreadable so far."""
        return len(self.bad)

    def load(self, files: list[Path], index: int, loader: Callable[[Path], T]) -> tuple[T, Path]:
        """``loader(files[i])`` for the first readable ``i`` from ``index`` on (wrapping), and that path."""
        last = ""
        for step in range(min(len(files), self.max_consecutive)):
            path = files[(index + step) % len(files)]
            if path in self.bad:
                last = self.bad[path]
                continue
            try:
                return loader(path), path
            except UnreadableImageError as exc:
                self.bad[path] = last = exc.reason
                log.warning("skipping unreadable image %s: %s", path, exc.reason)
        folder = files[index % len(files)].parent
        raise DataError(
            f"{min(len(files), self.max_consecutive)} unreadable images in a row in {folder} "
            f"(last: {last}); are these image files?"
        )
