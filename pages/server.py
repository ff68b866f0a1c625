"""One small local web server for the project's pages (labelling, play): JSON API routes and
the page's static files from one folder, on 127.0.0.1 only.

    page = Page(static=static_folder("label"), routes={
        ("GET", "/api/next"): next_clip,             # handler(Request) -> JSON-able value or Response
        ("POST", "/api/label"): save_label,
    })
    with PageServer(page) as server:                 # port 0: a free port; server.url to open
        ...                                          # serves on a background thread until the block ends
    PageServer(page, port=8770).serve_until_interrupted()   # a job's foreground server (Ctrl-C stops it)

A handler gets the method, path, query (one value per name) and the parsed JSON body; it
returns a JSON-able value (sent as application/json) or a Response (any bytes and type), and
raises HttpError(status, message) for a bad request (sent as {"error": message}). Any other
exception is a 500 with its message, and the server goes on. Requests whose Host header is
not this server's own address are refused (a page on another site cannot reach a local
server through DNS rebinding), bodies are capped, static paths cannot leave the page's folder.
A second page is a folder under pages/static/ and a routes mapping: nothing here changes.
"""

import dataclasses
import http.server
import importlib.resources
import json
import mimetypes
import pathlib
import signal
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

HOST = "127.0.0.1"
MAX_BODY_BYTES = 1 << 20
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".json": "application/json"}


@dataclasses.dataclass(frozen=True)
class Request:
    """What a handler sees: query values are strings, `body` the parsed JSON (None when empty)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: Any = None


@dataclasses.dataclass(frozen=True)
class Response:
    """A reply other than JSON: raw bytes with their content type."""

    body: bytes
    content_type: str
    status: int = 200


class HttpError(Exception):
    """Raised by a handler: the request gets this status and {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Request], Any]


@dataclasses.dataclass(frozen=True)
class Page:
    """A page: its static folder (index.html at its root) and its API routes, keyed by
    (method, path) with the path exact (no patterns: pass ids in the query)."""

    static: pathlib.Path
    routes: Mapping[tuple[str, str], Handler]
    title: str = "page"


def static_folder(name: str) -> pathlib.Path:
    """The folder of a page shipped in this package: pages/static/<name>/."""
    folder = pathlib.Path(str(importlib.resources.files("pages") / "static" / name))
    if not (folder / "index.html").is_file():
        raise FileNotFoundError(f"no page {name!r}: {folder}/index.html is missing")
    return folder


class PageServer:
    """Serves one Page on 127.0.0.1:`port` (0 = a free port) from a thread per request."""

    def __init__(self, page: Page, port: int = 0, quiet: bool = True) -> None:
        for method, path in page.routes:
            if method not in ("GET", "POST") or not path.startswith("/"):
                raise ValueError(f"bad route {(method, path)!r}: need GET or POST and a path starting with '/'")
        static = pathlib.Path(page.static).resolve()
        if not static.is_dir():
            raise FileNotFoundError(f"page folder {static} does not exist")
        handler = type("_PageHandler", (_Handler,), {"page": page, "static": static, "quiet": quiet})
        self.httpd = http.server.ThreadingHTTPServer((HOST, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}/"
        self._thread: threading.Thread | None = None

    def start(self) -> "PageServer":
        """Serve on a background thread; returns self."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="page-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    def serve_until_interrupted(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.start()
        try:
            stop.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def __enter__(self) -> "PageServer":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()


class _Handler(http.server.BaseHTTPRequestHandler):
    page: Page
    static: pathlib.Path
    quiet: bool
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if not self.quiet:
            super().log_message(format, *args)

    def _dispatch(self, method: str) -> None:
        try:
            if not self._host_is_ours():
                raise HttpError(403, "requests must be addressed to this server's own host")
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            handler = self.page.routes.get((method, path))
            if handler is not None:
                query = {name: values[-1] for name, values in urllib.parse.parse_qs(url.query).items()}
                reply = handler(Request(method, path, query, self._json_body()))
                self._send_reply(reply)
            elif method == "GET" and not path.startswith("/api/"):
                self._send_static(path)
            else:
                raise HttpError(404 if method == "GET" or path.startswith("/api/") else 405, f"no route {method} {path}")
        except HttpError as error:
            self._send_json({"error": error.message}, error.status)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away mid-reply
        except Exception as error:  # noqa: BLE001 (one bad request never stops the server)
            traceback.print_exc(file=sys.stderr)
            self._send_json({"error": f"{type(error).__name__}: {error}"}, 500)

    def _host_is_ours(self) -> bool:
        port = self.server.server_address[1]
        return self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}")

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise HttpError(413, f"request body of {length} bytes is over {MAX_BODY_BYTES}")
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise HttpError(400, f"request body is not JSON: {error}") from None

    def _send_reply(self, reply: Any) -> None:
        if isinstance(reply, Response):
            self._send(reply.status, reply.body, reply.content_type)
        else:
            self._send_json(reply, 200)

    def _send_json(self, value: Any, status: int) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send_static(self, path: str) -> None:
        relative = path.lstrip("/") or "index.html"
        parts = pathlib.PurePosixPath(relative).parts
        if any(part.startswith(".") for part in parts) or "\\" in relative or "\x00" in relative:
            raise HttpError(404, f"no file {path}")
        target = (self.static / relative).resolve()
        if relative == "favicon.ico" and not target.is_file():
            return self._send(204, b"", "image/x-icon")  # browsers ask for one; a page need not have it
        if not target.is_relative_to(self.static) or not target.is_file():
            raise HttpError(404, f"no file {path}")
        content_type = _STATIC_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), content_type)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)
