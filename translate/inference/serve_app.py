"""The model behind ``translate serve``'s page: each export of a model, as a ``Translator`` or ``Sampler``.

``ServeApp`` decodes an upload within its byte and pixel limits, runs it through the Python API
(``Translator.__call__``, ``Sampler.sample``: there is no second inference path) and encodes the result;
which controls each export offers comes from its kind (``translate.kinds``). The HTTP side is
``translate.inference.serve``.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from translate.data.io import ImageTooLargeError, check_header_pixels, pixel_limit_problem
from translate.engine.grid import grid_image
from translate.errors import CheckpointError, ConfigError, DataError
from translate.inference.convert import ImageSizeError
from translate.inference.sampler import Sampler
from translate.inference.translator import Translator
from translate.kinds import KINDS, kind_of, kinds_with

log = logging.getLogger("translate")

DEFAULT_MAX_BYTES = 20_000_000
"""Largest upload (one image), in bytes: ``--max-upload-mb 20``."""
DEFAULT_MAX_PIXELS = 25_000_000
"""Largest image, in pixels: ``--max-megapixels 25``."""
MAX_SAMPLES = 64
"""Most images one ``/api/sample`` draws."""
MAX_STYLES = 16
"""Most styles one ``/api/translate`` of a style model draws for an image."""
STYLE_GAP = 2
"""Pixels of white between the styles of one image, side by side."""


_CONTROL = {c: None for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]}
"""Control characters (C0, DEL, C1, Unicode line and paragraph separators)."""


def without_controls(text: str) -> str:
    """``text`` without control characters: what a file name from a request may carry into a response
    header or a log line (``a\r\nSet-Cookie: ...`` must never become a header of its own)."""
    return str(text).translate(_CONTROL)


def loggable(text: str) -> str:
    """``text`` for one log line: control characters written as ``\\xNN`` escapes, never as themselves."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) in _CONTROL else c for c in str(text))


class RequestError(DataError):
    """A request the page cannot serve: a one-line message shown to the person, with its HTTP status."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = int(status)


@dataclass
class Result:
    """An image to send back: its encoded bytes, media type and a file name for downloading it."""

    data: bytes
    content_type: str
    filename: str
    seconds: float = 0.0


@dataclass
class StyleChoice:
    """The style a translate request asks of a style model: ``count`` random styles drawn from ``seed``,
    or the style of the image ``reference`` (encoded bytes, file name ``reference_name``)."""

    count: int | None = None
    seed: int = 0
    reference: bytes | None = None
    reference_name: str = "reference"


@dataclass
class Entry:
    """One export the page offers: its name, kind, a title for people and the API object that runs it."""

    name: str
    kind: str
    title: str
    runner: Translator | Sampler
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        controls = list(kind_of(self.kind).controls)
        return {"name": self.name, "kind": self.kind, "controls": controls, "title": self.title, **self.info}


class ServeApp:
    """The model behind the page: each of its exports of ``KINDS`` as a ``Translator`` or ``Sampler``.

    ``path``: a run folder, checkpoint folder, ``model.safetensors`` or a file of ``translate export``;
    ``checkpoint``: ``best``, ``latest`` (default) or a step; ``fast``, ``precision``: the Translators' (off
    by default: the fast path compiles per new image size, and a page should answer each upload at once).
    Inference runs one request at a time.
    """

    def __init__(
        self,
        path: str | Path,
        device: str | torch.device = "cpu",
        checkpoint: str | int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        title: str | None = None,
        fast: bool = False,
        precision: str = "auto",
    ) -> None:
        if max_bytes < 1 or max_pixels < 1:
            raise ConfigError(f"upload limits must be positive; got {max_bytes} bytes, {max_pixels} pixels")
        self.path = Path(path)
        self.max_bytes, self.max_pixels = int(max_bytes), int(max_pixels)
        self.entries = self._load(device, checkpoint, {"fast": fast, "precision": precision})
        self.title = title or self._default_title
        self.lock = threading.Lock()
        takes_two = any("style" in kind_of(e.kind).controls for e in self.entries.values())
        self.upload_limit = self.max_bytes * (2 if takes_two else 1)
        """The bytes of images one translate request may carry: a style model's image and reference."""

    # ------------------------------------------------------------------------------------ loading
    def _load(
        self, device: str | torch.device, checkpoint: str | int | None, options: dict[str, Any]
    ) -> dict[str, Entry]:
        from translate.inference.model import model_exports
        from translate.inference.portable import is_exported

        if is_exported(self.path):  # ONNX / TorchScript: one image export, its contract in the file
            translator = Translator.from_run(self.path, device=device, checkpoint=checkpoint, **options)
            contract = translator.generator.contract  # every exported file carries its contract
            name = contract.get("export") or "translate"
            self._default_title = f"{contract.get('task', 'model')} {name} ({self.path.name})"
            kind = contract["kind"]
            options = contract.get("options", {})
            return {name: self._translator_entry(name, kind, options, translator)}
        from translate.engine.checkpoint import load_model_checkpoint, resolve_model_file

        file = resolve_model_file(self.path, checkpoint)  # every export from this one file
        loaded = load_model_checkpoint(file)
        exports = model_exports(loaded)
        usable = {name: export for name, export in exports.items() if export.kind in KINDS}
        if not usable:
            kinds = ", ".join(sorted({e.kind for e in exports.values()}))
            raise CheckpointError(
                f"{self.path} is a {loaded.task} model of kind {kinds}: the page serves "
                f"{', '.join(KINDS)} models"
            )
        self._default_title = f"{loaded.task} ({self.path.name}, step {loaded.step})"
        entries = {}
        for name, export in usable.items():
            if "noise" in kind_of(export).controls:
                sampler = Sampler.from_run(file, name, device)
                info = {
                    "classes": sampler.classes,
                    "latent_dim": sampler.latent_dim,
                    "max_count": MAX_SAMPLES,
                }
                entries[name] = Entry(name, export.kind, f"samples ({name})", sampler, info)
            else:
                translator = Translator.from_run(file, name, device, **options)
                entries[name] = self._translator_entry(name, export.kind, export.options, translator)
        return entries

    @staticmethod
    def _translator_entry(name: str, kind: str, options: dict, translator: Translator) -> Entry:
        source, target = options.get("source"), options.get("target")
        title = f"{source} \u2192 {target} ({name})" if source and target else name
        info: dict[str, Any] = {"in_channels": translator.in_channels}
        if translator.labels is not None:
            info["labels"] = translator.labels.to_dict()
            info["reads_labels"] = translator.classifier is not None  # else a target names every label
        if translator.styles is not None:
            info["max_styles"] = MAX_STYLES
            info["reads_references"] = translator.styles.encoder is not None  # an exported file: none
        return Entry(name, kind, title, translator, info)

    def describe(self) -> dict[str, Any]:
        """What the page shows and offers (``GET /api/model``)."""
        return {
            "title": self.title,
            "exports": [entry.describe() for entry in self.entries.values()],
            "limits": {"max_bytes": self.max_bytes, "max_pixels": self.max_pixels},
        }

    def entry(self, name: str | None, kinds: tuple[str, ...]) -> Entry:
        """Export ``name`` (None: the first of ``kinds``); a RequestError when there is none such."""
        fitting = [e for e in self.entries.values() if e.kind in kinds]
        if not fitting:
            action = "draw samples" if kinds == kinds_with("noise") else "translate images"
            offered = ", ".join(f"{e.name} ({e.kind})" for e in self.entries.values())
            raise RequestError(f"this model does not {action}; it offers {offered}")
        if name in (None, ""):
            return fitting[0]
        found = self.entries.get(name)
        if found is None or found not in fitting:
            offered = ", ".join(e.name for e in fitting)
            raise RequestError(f"unknown export {name!r}; this request can use: {offered}")
        return found

    # ------------------------------------------------------------------------------------ requests
    def open_image(self, data: bytes) -> Image.Image:
        """The uploaded bytes as a decoded PIL image, within ``max_bytes`` and ``max_pixels``."""
        if len(data) > self.max_bytes:
            raise RequestError(
                f"the image is {megabytes(len(data))}; this page takes images up to "
                f"{megabytes(self.max_bytes)} (translate serve --max-upload-mb)",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        if not data:
            raise RequestError("no image was sent (an empty upload)")
        try:
            check_header_pixels("the upload", data)  # the limit of every image read, before Pillow's own
        except ImageTooLargeError as exc:
            raise RequestError(
                f"the image is too large: {exc.reason}", HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            ) from None
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise RequestError(
                f"the image is too large: {exc}", HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            ) from None
        except Exception:  # Pillow raises many types on data that is not an image
            raise RequestError(
                "the upload is not an image this page can read (JPEG, PNG, WebP, BMP, TIFF, GIF ...)"
            ) from None
        width, height = image.size
        if width * height > self.max_pixels:
            raise RequestError(
                f"the image is {width}x{height} px ({width * height / 1e6:.4g} MP); this page takes images "
                f"up to {self.max_pixels / 1e6:.4g} MP (translate serve --max-megapixels)",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        problem = pixel_limit_problem(width, height)  # the limit of every image read, as apply's
        if problem is not None:
            raise RequestError(f"the image is too large: {problem}", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            image.load()
        except Exception as exc:  # truncated or corrupt
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise RequestError(f"the image cannot be decoded: {reason}") from None
        return image

    def translate(
        self,
        data: bytes,
        filename: str = "image",
        export: str | None = None,
        target: str | None = None,
        style: StyleChoice | None = None,
    ) -> Result:
        """Translate one uploaded image with export ``export`` (to ``target``, for conditional models; in
        ``style``, for style models: several random styles side by side, or a reference's style)."""
        filename = without_controls(filename) or "image"
        entry = self.entry(export, kinds_with("image"))
        image = self.open_image(data)
        translator: Translator = entry.runner  # type: ignore[assignment]
        takes_target = "target" in kind_of(entry.kind).controls
        if not takes_target and target:
            raise RequestError(f"{entry.name} translates to one fixed domain: it takes no target")
        if takes_target and not (target or "").strip():
            raise RequestError(f"choose a target: {translator.labels.describe()}")  # type: ignore[union-attr]
        asked, described = self._style_arguments(entry, style)
        start = time.perf_counter()
        with self.lock:
            try:
                result = translator(image, target=target or None, **asked)
            except ImageSizeError as exc:  # the Translator's size rule: the line translate apply prints
                raise RequestError(str(exc)) from None
        seconds = time.perf_counter() - start
        log.info(
            "translated %s (%dx%d px, %s%s%s) in %.2f s",
            filename,
            image.width,
            image.height,
            entry.name,
            f" to {target}" if target else "",
            described.replace("-", " ", 1),
            seconds,
        )
        if isinstance(result, list):  # the styles of one image
            result = side_by_side(result)
        jpeg = image.format == "JPEG"  # JPEG stays JPEG (quality 95, as translate apply); else lossless PNG
        data, media = encode(result, jpeg)
        stem = Path(filename).stem or "image"
        return Result(data, media, f"{stem}-{entry.name}{described}.{'jpg' if jpeg else 'png'}", seconds)

    def _style_arguments(self, entry: Entry, style: StyleChoice | None) -> tuple[dict[str, Any], str]:
        """The Translator's style arguments for ``style`` and the suffix that names them in the result's
        file name (``-seed0-styles4``, ``-style-REF``); a RequestError for a model without styles, a
        count out of range or both a count and a reference."""
        if style is None or (style.count is None and style.reference is None):
            return {}, ""
        if "style" not in kind_of(entry.kind).controls:
            raise RequestError(
                f"{entry.name} ({entry.kind}) takes no style: styles and references are for "
                f"{' and '.join(kinds_with('style'))} models"
            )
        if style.count is not None and style.reference is not None:
            raise RequestError("send a number of styles or a reference image, not both")
        if style.reference is not None:
            reference = self.open_image(style.reference)
            stem = Path(without_controls(style.reference_name)).stem or "reference"
            return {"style_from": reference}, f"-style-{stem}"
        if not 1 <= style.count <= MAX_STYLES:  # type: ignore[operator]
            raise RequestError(f"the number of styles must be between 1 and {MAX_STYLES}; got {style.count}")
        return {"styles": style.count, "seed": style.seed}, f"-seed{style.seed}-styles{style.count}"

    def sample(
        self, export: str | None = None, seed: int = 0, label: str | None = None, count: int = 1
    ) -> Result:
        """``count`` images drawn with ``seed`` (of class ``label``: index or name; None cycles through
        the classes), as one PNG grid (``Sampler.sample``, laid out as ``translate sample`` lays it)."""
        entry = self.entry(export, kinds_with("noise"))
        sampler: Sampler = entry.runner  # type: ignore[assignment]
        if not 1 <= count <= MAX_SAMPLES:
            raise RequestError(f"the number of images must be between 1 and {MAX_SAMPLES}; got {count}")
        start = time.perf_counter()
        with self.lock:
            images = sampler.sample(count, seed=seed, label=label or None)
        seconds = time.perf_counter() - start
        cycling = sampler.num_classes and not label and sampler.num_classes <= count
        columns = sampler.num_classes if cycling else max(1, math.isqrt(count))
        grid = grid_image(images, int(columns))
        data, media = encode(grid, jpeg=False)
        what = f"-{label}" if label else ""
        return Result(data, media, f"samples-seed{seed}{what}.png", seconds)


# ------------------------------------------------------------------------------------ images
def encode(image: Image.Image, jpeg: bool) -> tuple[bytes, str]:
    """A PIL image as JPEG at quality 95 (full-resolution colour) or lossless PNG, in memory."""
    buffer = io.BytesIO()
    if jpeg and image.mode in ("RGB", "L"):
        image.save(buffer, format="JPEG", quality=95, subsampling=0)
        return buffer.getvalue(), "image/jpeg"
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue(), "image/png"


def side_by_side(images: list[Image.Image], gap: int = STYLE_GAP) -> Image.Image:
    """Images of one size in a row, ``gap`` white (or, with alpha, transparent) pixels apart."""
    first = images[0]
    width = sum(image.width for image in images) + gap * (len(images) - 1)
    row = Image.new(first.mode, (width, first.height), "white" if first.mode != "RGBA" else (0, 0, 0, 0))
    left = 0
    for image in images:
        row.paste(image, (left, 0))
        left += image.width + gap
    return row


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1_000_000 else f"{size / 1e3:.1f} kB"
