"""``translate serve``: a small web page to try a trained model, on the standard library's HTTP server.

The page (``serve_page.py``: plain HTML, CSS and JavaScript, no external assets) offers what the model's
exports allow: the direction of an image -> image model (CycleGAN, UNIT: ``a2b``, ``b2a``), the target
labels or domain of an image + target -> image model (StarGAN), the seed and class of a noise -> image
model (the GAN family). Every image goes through the Python API (``Translator.__call__``,
``Sampler.sample``): there is no second inference path.

Endpoints: ``GET /`` the page, ``GET /api/model`` what the page shows (JSON), ``POST /api/translate`` an
image (multipart field ``image``, or the raw image as the body) with ``export`` and ``target`` (form fields
or query parameters) -> the translated image, ``POST /api/sample`` ``export``, ``seed``, ``label``,
``count`` -> a PNG grid. Errors are ``text/plain`` one-liners: 413 for an upload above ``max_bytes`` or an
image above ``max_pixels``, 400 for anything that is not a readable image or a bad choice.

Nothing is written to disk: uploads and results stay in memory (images above ``TILE_ABOVE_PIXELS`` are
translated in tiles, whose passes use a temporary folder that is removed afterwards). Binds 127.0.0.1 by
default; while bound to a loopback address, requests must name a loopback host (no DNS rebinding).
"""

from __future__ import annotations

import errno
import io
import ipaddress
import json
import logging
import math
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from translate.errors import CheckpointError, ConfigError, DataError, TranslateError
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
FORM_SLACK = 64 * 1024
"""What a multipart request may carry beyond the image (boundaries, headers, the other fields)."""
DRAIN_BYTES = 256 * 2**20
DRAIN_SECONDS = 10.0
"""After refusing a too large upload: how much of it is still read (and dropped), so that the client
gets to read the 413 instead of a reset connection."""
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


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
    ``checkpoint``: ``best``, ``latest`` (default) or a step. Inference runs one request at a time.
    """

    def __init__(
        self,
        path: str | Path,
        device: str | torch.device = "cpu",
        checkpoint: str | int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        title: str | None = None,
    ) -> None:
        if max_bytes < 1 or max_pixels < 1:
            raise ConfigError(f"upload limits must be positive; got {max_bytes} bytes, {max_pixels} pixels")
        self.path = Path(path)
        self.max_bytes, self.max_pixels = int(max_bytes), int(max_pixels)
        self.entries = self._load(device, checkpoint)
        self.title = title or self._default_title
        self.lock = threading.Lock()

    # ------------------------------------------------------------------------------------ loading
    def _load(self, device: str | torch.device, checkpoint: str | int | None) -> dict[str, Entry]:
        from translate.inference.model import model_exports
        from translate.inference.portable import is_exported

        if is_exported(self.path):  # ONNX / TorchScript: one image export, its contract in the file
            translator = Translator.from_run(self.path, device=device, checkpoint=checkpoint)
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
                # plain: a page answers each upload at once (the fast path compiles per new image size)
                translator = Translator.from_run(file, name, device, fast=False)
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
        try:
            image.load()
        except Exception as exc:  # truncated or corrupt
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise RequestError(f"the image cannot be decoded: {reason}") from None
        return image

    def translate(
        self, data: bytes, filename: str = "image", export: str | None = None, target: str | None = None
    ) -> Result:
        """Translate one uploaded image with export ``export`` (to ``target``, for conditional models)."""
        entry = self.entry(export, kinds_with("image"))
        image = self.open_image(data)
        translator: Translator = entry.runner  # type: ignore[assignment]
        takes_target = "target" in kind_of(entry.kind).controls
        if not takes_target and target:
            raise RequestError(f"{entry.name} translates to one fixed domain: it takes no target")
        if takes_target and not (target or "").strip():
            raise RequestError(f"choose a target: {translator.labels.describe()}")  # type: ignore[union-attr]
        start = time.perf_counter()
        with self.lock:
            try:
                result = translator(image, target=target or None)
            except TranslateError:
                raise
            except (RuntimeError, ValueError) as exc:  # what the network cannot take (too small ...)
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise RequestError(
                    f"the model cannot translate this {image.width}x{image.height} px image: {reason}"
                ) from None
        seconds = time.perf_counter() - start
        log.info(
            "translated %s (%dx%d px, %s%s) in %.2f s",
            filename,
            image.width,
            image.height,
            entry.name,
            f" to {target}" if target else "",
            seconds,
        )
        jpeg = image.format == "JPEG"  # JPEG stays JPEG (quality 95, as translate apply); else lossless PNG
        data, media = encode(result, jpeg)
        stem = Path(filename).stem or "image"
        return Result(data, media, f"{stem}-{entry.name}.{'jpg' if jpeg else 'png'}", seconds)

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
def grid_image(images: torch.Tensor, columns: int) -> Image.Image:
    """``(N, C, H, W)`` in ``[-1, 1]`` as one PIL image, ``columns`` to a row (as ``save_grid``)."""
    from torchvision.utils import make_grid

    grid = make_grid(images.float().cpu() * 0.5 + 0.5, nrow=columns, padding=2, pad_value=1.0)
    array = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if images.shape[1] == 1 else array)


def encode(image: Image.Image, jpeg: bool) -> tuple[bytes, str]:
    """A PIL image as JPEG at quality 95 (full-resolution colour) or lossless PNG, in memory."""
    buffer = io.BytesIO()
    if jpeg and image.mode in ("RGB", "L"):
        image.save(buffer, format="JPEG", quality=95, subsampling=0)
        return buffer.getvalue(), "image/jpeg"
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue(), "image/png"


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1_000_000 else f"{size / 1e3:.1f} kB"


# ------------------------------------------------------------------------------------ forms
@dataclass
class Part:
    """One field of a multipart form: its bytes, and the file name for a file field."""

    data: bytes
    filename: str | None = None


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """``"multipart/form-data; boundary=x"`` -> ``("multipart/form-data", {"boundary": "x"})``."""
    message = Message()
    message["content-type"] = value
    params = message.get_params() or []
    main = params[0][0].lower() if params else ""
    values = {}
    for key, _ in params[1:]:
        param = message.get_param(key)
        values[key.lower()] = collapse_rfc2231_value(param) if param else ""
    return main, values


def parse_multipart(body: bytes, boundary: str) -> dict[str, Part]:
    """The fields of a ``multipart/form-data`` body (RFC 7578); the first of fields named twice."""
    if not boundary or len(boundary) > 200:
        raise RequestError("a multipart upload without a valid boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    fields: dict[str, Part] = {}
    closed = False
    for piece in pieces[1:]:  # pieces[0]: the preamble
        if piece.startswith(b"--"):
            closed = True
            break
        head, separator, content = piece.partition(b"\r\n\r\n")
        if not separator:
            raise RequestError("a malformed multipart upload (a part without headers)")
        headers = Message()
        for line in head.decode("utf-8", "replace").split("\r\n")[1:]:  # [0]: padding after the boundary
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip()] = value.strip()
        disposition = headers.get("content-disposition", "")
        _, params = header_params(f"form-data; {disposition.partition(';')[2]}")
        name = params.get("name")
        if name and name not in fields:
            fields[name] = Part(content, params.get("filename"))
    if not closed:
        raise RequestError("a truncated multipart upload (no closing boundary)")
    return fields


# ------------------------------------------------------------------------------------ HTTP
class Handler(BaseHTTPRequestHandler):
    """The page, its model description and its two actions; errors as one-line ``text/plain``."""

    server: PageServer
    server_version = "translate-serve"
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds a connection may stay silent (a stalled upload, an idle keep-alive)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    # --------------------------------------------------------------------------------- dispatch
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch(
            {
                "/": self._page,
                "/index.html": self._page,
                "/api/model": self._model,
                "/favicon.ico": self._icon,
            }
        )

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch({"/api/translate": self._translate, "/api/sample": self._sample})

    def _dispatch(self, routes: dict[str, Callable[[], None]]) -> None:
        url = urllib.parse.urlsplit(self.path)
        self.query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            self._check_host()
            route = routes.get(url.path)
            if route is None:
                other = "POST" if self.command == "GET" else "GET"
                if url.path in self.server.routes[other]:
                    raise RequestError(f"{url.path} takes {other} requests", HTTPStatus.METHOD_NOT_ALLOWED)
                raise RequestError(f"no such page: {url.path}", HTTPStatus.NOT_FOUND)
            route()
        except RequestError as exc:
            self._text(exc.status, str(exc))
        except TranslateError as exc:  # a bad target, a class the model does not know ...
            self._text(HTTPStatus.BAD_REQUEST, str(exc))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: say so in one line, log the traceback
            log.exception("serve: %s %s failed", self.command, url.path)
            self._text(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}: {exc}")

    def _check_host(self) -> None:
        """While bound to a loopback address, answer only requests that name a loopback host: a web
        page elsewhere cannot reach the model through a DNS name it points at 127.0.0.1."""
        if not self.server.loopback:
            return
        host = (self.headers.get("Host") or "").strip().lower()
        name = host[1 : host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        if name not in LOOPBACK_NAMES | {self.server.host.lower()}:
            raise RequestError(
                f"this server answers requests to localhost only, not to {host or 'no host'}",
                HTTPStatus.FORBIDDEN,
            )

    # --------------------------------------------------------------------------------- responses
    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status: int, message: str) -> None:
        self._send(status, (" ".join(message.split()) + "\n").encode(), "text/plain; charset=utf-8")

    def _page(self) -> None:
        from translate.inference.serve_page import render_page

        headers = {
            "Content-Security-Policy": "default-src 'none'; img-src 'self' blob: data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self' blob:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer",
        }
        page = render_page(self.server.app.describe())
        self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8", headers)

    def _model(self) -> None:
        body = json.dumps(self.server.app.describe()).encode()
        self._send(HTTPStatus.OK, body, "application/json")

    def _icon(self) -> None:
        self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")

    def _result(self, result: Result) -> None:
        quoted = urllib.parse.quote(result.filename)
        ascii_name = result.filename.encode("ascii", "replace").decode().replace('"', "_")
        headers = {
            "Content-Disposition": f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}",
            "X-Seconds": f"{result.seconds:.3f}",
        }
        self._send(HTTPStatus.OK, result.data, result.content_type, headers)

    # --------------------------------------------------------------------------------- actions
    def _body(self, limit: int) -> bytes:
        """The request body, refused with 413 above ``limit`` bytes before it is read."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise RequestError("send the upload with a Content-Length", HTTPStatus.LENGTH_REQUIRED)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            raise RequestError("a bad Content-Length") from None
        if length > limit:
            self.close_connection = True
            self._drain_later = length
            app = self.server.app
            raise RequestError(
                f"the upload is {megabytes(length)}; this page takes images up to "
                f"{megabytes(app.max_bytes)} (translate serve --max-upload-mb)",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        return self.rfile.read(length) if length else b""

    def _form(self, limit: int) -> tuple[dict[str, str], Part | None]:
        """The request's fields (query parameters, then form fields over them) and its file, if any."""
        body = self._body(limit)
        fields, upload = dict(self.query), None
        media, params = header_params(self.headers.get("Content-Type") or "application/octet-stream")
        if media == "multipart/form-data":
            for name, part in parse_multipart(body, params.get("boundary", "")).items():
                if part.filename is not None or name == "image":
                    if name == "image" or upload is None:
                        upload = part
                else:
                    fields[name] = part.data.decode("utf-8", "replace")
        elif media == "application/x-www-form-urlencoded":
            text = body.decode("utf-8", "replace")
            fields.update({k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()})
        elif body:  # the raw image as the body: curl --data-binary @photo.jpg
            upload = Part(body, self.query.get("filename"))
        return fields, upload

    def _translate(self) -> None:
        fields, upload = self._form(self.server.app.max_bytes + FORM_SLACK)
        if upload is None:
            raise RequestError("no image was sent: upload one in the field 'image'")
        filename = Path(upload.filename or "image").name
        result = self.server.app.translate(upload.data, filename, fields.get("export"), fields.get("target"))
        self._result(result)

    def _sample(self) -> None:
        fields, _ = self._form(FORM_SLACK)
        try:
            seed = int(fields.get("seed") or 0)
            count = int(fields.get("count") or 1)
        except ValueError:
            raise RequestError("seed and count are whole numbers") from None
        if not 0 <= seed < 2**63:
            raise RequestError(f"the seed must be between 0 and 2**63 - 1; got {seed}")
        result = self.server.app.sample(fields.get("export"), seed, fields.get("label") or None, count)
        self._result(result)

    def handle_one_request(self) -> None:
        self._drain_later = 0
        super().handle_one_request()
        if self._drain_later:
            drain(self.connection, self.rfile, self._drain_later)


def drain(connection: socket.socket, stream: Any, length: int) -> None:
    """Read and drop up to ``length`` bytes (at most ``DRAIN_BYTES``, ``DRAIN_SECONDS``) of a refused
    upload: closing a socket with unread data resets it, and the client would not see the answer."""
    deadline = time.monotonic() + DRAIN_SECONDS
    remaining = min(length, DRAIN_BYTES)
    try:
        connection.shutdown(socket.SHUT_WR)  # the answer is complete
        while remaining > 0 and time.monotonic() < deadline:
            connection.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = stream.read1(min(remaining, 2**20))
            if not chunk:
                break
            remaining -= len(chunk)
    except OSError:
        pass


class PageServer(ThreadingHTTPServer):
    """A threading HTTP server holding the ``ServeApp``; requests run in daemon threads."""

    daemon_threads = True
    allow_reuse_address = True
    routes = {
        "GET": {"/", "/index.html", "/api/model", "/favicon.ico"},
        "POST": {"/api/translate", "/api/sample"},
    }

    def __init__(self, app: ServeApp, host: str, port: int) -> None:
        self.app, self.host = app, host
        self.loopback = is_loopback(host)
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        if str(host) in ("0.0.0.0", "::"):
            shown = "127.0.0.1"
        return f"http://{shown}:{port}/"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(app: ServeApp, host: str = "127.0.0.1", port: int = 8000) -> PageServer:
    """The server for ``app`` bound to ``host:port`` (port 0: a free one; ``server.url`` says which),
    not yet serving: call ``serve_forever()`` (in a thread for tests), then ``shutdown()``."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535; got {port}")
    try:
        return PageServer(app, host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use: choose another with --port") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"no permission to bind port {port}: choose one above 1023 with --port"
            ) from None
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"cannot bind {host}: not an address of this machine (--host)") from None
        raise


def serve(
    app: ServeApp, host: str = "127.0.0.1", port: int = 8000, ready: Callable[[str], None] | None = None
) -> None:
    """Serve ``app`` until Ctrl-C; ``ready(url)`` is called once the port is bound."""
    server = make_server(app, host, port)
    if not server.loopback:
        log.warning("serving on %s: anyone who can reach this machine can use the page", host)
    if ready is not None:
        ready(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
