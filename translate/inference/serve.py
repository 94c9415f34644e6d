"""``translate serve``: a small web page to try a trained model, on the standard library's HTTP server.

The page (``serve_page.py``: plain HTML, CSS and JavaScript, no external assets) offers what the model's
exports allow: the direction of an image -> image model (CycleGAN, UNIT: ``a2b``, ``b2a``), the target
labels or domain of an image + target -> image model (StarGAN), the number of random styles and their seed
or a reference image of an image + style -> image model (MUNIT), the seed and class of a noise -> image
model (the GAN family). Every image goes through the Python API (``Translator.__call__``,
``Sampler.sample``): there is no second inference path.

Endpoints: ``GET /`` the page, ``GET /api/model`` what the page shows (JSON), ``POST /api/translate`` an
image (multipart field ``image``, or the raw image as the body) with ``export`` and ``target`` (form fields
or query parameters) -> the translated image (style models: ``styles`` and ``seed`` -> the image's
translations in that many random styles, side by side; or a multipart field ``reference`` -> the
translation in the reference's style), ``POST /api/sample`` ``export``, ``seed``, ``label``, ``count`` -> a
PNG grid. Errors are ``text/plain`` one-liners: 413 for an upload above ``max_bytes`` or an
image above ``max_pixels``, 400 for anything that is not a readable image or a bad choice.

At most ``max_pending`` translate and sample requests are taken in at a time (they wait for the model, which
runs one at a time); one more is answered ``503`` with ``Retry-After`` at once, and the listen backlog
(``request_queue_size``) holds a burst of connections until they are answered, so none is reset. Values a
request carries into a response header or a log line lose their control characters (a file name
``a\r\nSet-Cookie: ...`` never becomes a header); a client that hangs up early is one log line.

Nothing is written to disk: uploads and results stay in memory (images above ``TILE_ABOVE_PIXELS`` are
translated in tiles, whose passes use a temporary folder that is removed afterwards). Binds 127.0.0.1 by
default; while bound to a loopback address, requests must name a loopback host (no DNS rebinding).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from translate.errors import ConfigError, TranslateError
from translate.inference.serve_app import (
    RequestError,
    Result,
    ServeApp,
    StyleChoice,
    loggable,
    megabytes,
    without_controls,
)

log = logging.getLogger("translate")

FORM_SLACK = 64 * 1024
"""What a multipart request may carry beyond the image (boundaries, headers, the other fields)."""
DRAIN_BYTES = 256 * 2**20
DRAIN_SECONDS = 10.0
"""After refusing a too large upload: how much of it is still read (and dropped), so that the client
gets to read the 413 instead of a reset connection."""
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
DEFAULT_MAX_PENDING = 16
"""Translate and sample requests taken in at once (running or waiting for the model); more get 503."""
BACKLOG = 512
"""Connections the kernel holds before they are accepted (the listen backlog)."""
RETRY_AFTER_SECONDS = 1
HEADER_SAFE = "!#$&+-.^_`|~"
"""The characters RFC 5987 lets stand unquoted in ``filename*=UTF-8''...``."""


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
        log.debug("%s %s", self.address_string(), loggable(format % args))

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
        self._dispatch(
            {"/api/translate": self._admitted(self._translate), "/api/sample": self._admitted(self._sample)}
        )

    def _admitted(self, action: Callable[[], None]) -> Callable[[], None]:
        """``action`` run when fewer than ``max_pending`` requests are in; else a 503 with Retry-After."""

        def run() -> None:
            slots = self.server.slots
            if not slots.acquire(blocking=False):
                self.close_connection = True
                with contextlib.suppress(ValueError):
                    self._drain_later = max(0, int(self.headers.get("Content-Length") or 0))
                raise RequestError(
                    f"the server is busy ({self.server.max_pending} requests in progress): try again in a "
                    "moment",
                    HTTPStatus.SERVICE_UNAVAILABLE,
                )
            try:
                action()
            finally:
                slots.release()

        return run

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
        except (ConnectionError, TimeoutError) as exc:
            self.close_connection = True
            dropped(self.client_address, exc)
        except Exception as exc:  # a bug: say so in one line, log the traceback
            log.exception("serve: %s %s failed", self.command, loggable(url.path))
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
            self.send_header(key, without_controls(value))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status: int, message: str) -> None:
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == HTTPStatus.SERVICE_UNAVAILABLE else {}
        body = (" ".join(without_controls(message.replace("\n", " ")).split()) + "\n").encode()
        self._send(status, body, "text/plain; charset=utf-8", retry)

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
        headers = {
            "Content-Disposition": content_disposition(result.filename),
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

    def _form(self, limit: int) -> tuple[dict[str, str], dict[str, Part]]:
        """The request's fields (query parameters, then form fields over them) and its files by field name:
        the image is ``image`` (the first file field of another name where none is called so, or the raw
        body), a style reference ``reference``."""
        body = self._body(limit)
        fields, files = dict(self.query), {}
        media, params = header_params(self.headers.get("Content-Type") or "application/octet-stream")
        if media == "multipart/form-data":
            for name, part in parse_multipart(body, params.get("boundary", "")).items():
                if part.filename is not None or name in ("image", "reference"):
                    files[name] = part
                else:
                    fields[name] = part.data.decode("utf-8", "replace")
            others = [part for name, part in files.items() if name not in ("image", "reference")]
            if "image" not in files and others:
                files["image"] = others[0]
        elif media == "application/x-www-form-urlencoded":
            text = body.decode("utf-8", "replace")
            fields.update({k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()})
        elif body:  # the raw image as the body: curl --data-binary @photo.jpg
            files["image"] = Part(body, self.query.get("filename"))
        return fields, files

    def _translate(self) -> None:
        app = self.server.app
        fields, files = self._form(app.upload_limit + FORM_SLACK)
        upload = files.get("image")
        if upload is None:
            raise RequestError("no image was sent: upload one in the field 'image'")
        export, target = fields.get("export"), fields.get("target")
        result = app.translate(upload.data, file_name(upload), export, target, style_choice(fields, files))
        self._result(result)

    def _sample(self) -> None:
        fields, _ = self._form(FORM_SLACK)
        seed, count = whole_number(fields, "seed", 0), whole_number(fields, "count", 1)
        result = self.server.app.sample(fields.get("export"), seed, fields.get("label") or None, count)
        self._result(result)

    def handle_one_request(self) -> None:
        self._drain_later = 0
        super().handle_one_request()
        if self._drain_later:
            drain(self.connection, self.rfile, self._drain_later)


def whole_number(fields: dict[str, str], name: str, default: int = 0) -> int:
    """Field ``name`` as a whole number from 0 to 2**63 - 1 (``default`` when absent or empty)."""
    text = fields.get(name) or ""
    try:
        value = int(text) if text.strip() else default
    except ValueError:
        raise RequestError(f"{name} is a whole number; got {text[:40]!r}") from None
    if not 0 <= value < 2**63:
        raise RequestError(f"{name} must be between 0 and 2**63 - 1; got {value}")
    return value


def style_choice(fields: dict[str, str], files: dict[str, Part]) -> StyleChoice | None:
    """The style a translate request asks: ``styles`` and ``seed`` fields, or the ``reference`` file."""
    reference = files.get("reference")
    if not fields.get("styles") and reference is None:
        return None
    count = whole_number(fields, "styles") if fields.get("styles") else None
    data = reference.data if reference is not None else None
    return StyleChoice(count, whole_number(fields, "seed", 0), data, file_name(reference, "reference"))


def file_name(part: Part | None, default: str = "image") -> str:
    """The base name of an uploaded file, without control characters; ``default`` for none."""
    name = without_controls(part.filename or "") if part is not None else ""
    return Path(name or default).name or default


def content_disposition(filename: str) -> str:
    """``inline`` with ``filename`` as RFC 6266 gives it: a plain ASCII ``filename="..."`` (control
    characters dropped, quotes and backslashes replaced) and the exact name as ``filename*=UTF-8''...``."""
    name = without_controls(filename) or "image"
    plain = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"inline; filename=\"{plain}\"; filename*=UTF-8''{urllib.parse.quote(name, safe=HEADER_SAFE)}"


def dropped(client_address: Any, exc: BaseException) -> None:
    """One quiet log line for a client that closed its connection before the answer was sent."""
    host = client_address[0] if isinstance(client_address, tuple) and client_address else client_address
    log.info("serve: %s closed the connection early (%s)", host, type(exc).__name__)


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

    request_queue_size = BACKLOG

    def __init__(self, app: ServeApp, host: str, port: int, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if max_pending < 1:
            raise ConfigError(f"the requests taken in at once must be 1 or more; got {max_pending}")
        self.app, self.host = app, host
        self.loopback = is_loopback(host)
        self.max_pending = int(max_pending)
        self.slots = threading.BoundedSemaphore(self.max_pending)
        """One per translate or sample request in progress (``Handler._admitted``)."""
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a broken pipe, a reset) is one log line; anything else is logged with
        its traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            dropped(client_address, exc)
            return
        log.error("serve: a request from %s failed", loggable(str(client_address)), exc_info=exc)

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


def make_server(
    app: ServeApp, host: str = "127.0.0.1", port: int = 8000, max_pending: int = DEFAULT_MAX_PENDING
) -> PageServer:
    """The server for ``app`` bound to ``host:port`` (port 0: a free one; ``server.url`` says which),
    not yet serving: call ``serve_forever()`` (in a thread for tests), then ``shutdown()``.
    ``max_pending``: translate and sample requests taken in at once (more are answered 503)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535; got {port}")
    try:
        return PageServer(app, host, port, max_pending)
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
    app: ServeApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    ready: Callable[[str], None] | None = None,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> None:
    """Serve ``app`` until Ctrl-C; ``ready(url)`` is called once the port is bound; ``max_pending``: the
    translate and sample requests taken in at once (more are answered 503 with Retry-After)."""
    server = make_server(app, host, port, max_pending)
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
