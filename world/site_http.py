"""The HTTP side of the local video site: routing, media with Range and HEAD, faults.

Routes (anything else is 404; ids are matched literally, never unquoted or joined to a path):
    GET       /                         a small HTML index
    GET       /search?q=WORDS&limit=N   RSS 2.0 feed of matching videos
    GET       /watch/<id>               watch page (JSON-LD VideoObject, og: tags)
    GET       /api/videos/<id>.json     the video's public metadata, licence included
    GET/HEAD  /media/<id>.mp4           the file, with Range (206 / 416); faults apply here
"""

import html
import http.server
import re
import socket
import sys
import threading
import urllib.parse
from typing import TYPE_CHECKING

from world import site_pages
from world.site_catalog import VideoRecord
from world.site_faults import Fault

if TYPE_CHECKING:
    from world.site import VideoSite

_WATCH = re.compile(r"/watch/([A-Za-z0-9_-]{1,64})")
_MEDIA = re.compile(r"/media/([A-Za-z0-9_-]{1,64})\.mp4")
_METADATA = re.compile(r"/api/videos/([A-Za-z0-9_-]{1,64})\.json")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 64 * 1024
_CORRUPT_KEY = 0xA5
_XOR_TABLE = bytes(value ^ _CORRUPT_KEY for value in range(256))
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, socket.timeout)
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class SiteServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that knows its site and never waits for handlers on close."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], site: "VideoSite") -> None:
        self.site = site
        self.stopping = threading.Event()  # wakes handlers sleeping on a "slow" fault
        self._media_requests: dict[str, int] = {}
        self._media_requests_lock = threading.Lock()
        super().__init__(address, SiteHandler)

    def count_media_request(self, video_id: str) -> int:
        """Count one more media request for `video_id`; its number, from 1."""
        with self._media_requests_lock:
            self._media_requests[video_id] = self._media_requests.get(video_id, 0) + 1
            return self._media_requests[video_id]

    def media_requests(self, video_id: str) -> int:
        with self._media_requests_lock:
            return self._media_requests.get(video_id, 0)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up (timeouts, cancelled downloads) is routine here, not an error.
        if not isinstance(sys.exc_info()[1], _CLIENT_GONE):
            super().handle_error(request, client_address)


class SiteHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle keep-alive connection may hold its thread
    server: SiteServer
    server_version = "GenieLocalVideoSite/1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests and the CLI stay quiet; request_count() is the record

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def do_GET(self) -> None:
        self._route(send_body=True)

    def _route(self, send_body: bool) -> None:
        site = self.server.site
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        try:
            if path == "/":
                self._send_document(200, "text/html; charset=utf-8", _index_page(site), send_body)
            elif path == "/search":
                self._search(parts.query, send_body)
            elif match := _WATCH.fullmatch(path):
                record = self._record_or_404(match.group(1), send_body)
                if record:
                    fault = site.faults.get(record.id)
                    page = site_pages.watch_page(site.url, record, announce_size=not (fault and fault.kind == "no_length"))
                    self._send_document(200, "text/html; charset=utf-8", page, send_body)
            elif match := _METADATA.fullmatch(path):
                record = self._record_or_404(match.group(1), send_body)
                if record:
                    document = site_pages.metadata_json(site.url, record)
                    self._send_document(200, "application/json", document, send_body)
            elif match := _MEDIA.fullmatch(path):
                record = self._record_or_404(match.group(1), send_body)
                if record:
                    number = self.server.count_media_request(record.id)
                    fault = site.faults.get(record.id)
                    self._send_media(record, fault if fault and fault.applies_to(number) else None, send_body)
            else:
                self._send_text(404, "not found", send_body)
        except _CLIENT_GONE:
            self.close_connection = True  # the client gave up (often on purpose, in tests)

    def _search(self, query_string: str, send_body: bool) -> None:
        query = urllib.parse.parse_qs(query_string)
        words = query.get("q", [""])[0]
        try:
            limit = int(query.get("limit", [DEFAULT_LIMIT])[0])
        except ValueError:
            self._send_text(400, "limit must be an integer", send_body)
            return
        if not 1 <= limit <= MAX_LIMIT:
            self._send_text(400, f"limit must be in 1..{MAX_LIMIT}", send_body)
            return
        feed = site_pages.search_feed(self.server.site.url, words, self.server.site.search(words, limit))
        fault = self.server.site.search_faults.get(words)
        if fault is None:
            self._send_document(200, "application/rss+xml; charset=utf-8", feed, send_body)
            return
        if self.server.stopping.wait(fault.delay_s):
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(feed)))
        self.end_headers()
        if send_body:
            self._send_paced(feed, fault.bytes_per_s)

    def _record_or_404(self, video_id: str, send_body: bool) -> VideoRecord | None:
        record = self.server.site.record(video_id)
        if record is None:
            self._send_text(404, "no such video", send_body)
        return record

    def _send_media(self, record: VideoRecord, fault: Fault | None, send_body: bool) -> None:
        if fault and fault.kind == "status":
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            self._send_text(fault.status, f"fault: HTTP {fault.status}", send_body, headers)
            return
        if fault and fault.kind == "slow" and self.server.stopping.wait(fault.delay_s):
            self.close_connection = True
            return
        if fault and fault.kind == "no_length":
            self._send_unsized(record, send_body)
            return
        size = record.path.stat().st_size
        span = _parse_range(self.headers.get("Range"), size)
        if span is None:
            self._send_text(416, "range not satisfiable", send_body, {"Content-Range": f"bytes */{size}"})
            return
        start, end = span  # inclusive
        length = end - start + 1
        partial = (start, end) != (0, size - 1)
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not send_body:
            return
        to_send = length
        if fault and fault.kind == "truncate":
            to_send = int(length * fault.fraction)
            self.close_connection = True
        self._copy_file(record, start, to_send, fault)

    def _send_paced(self, body: bytes, bytes_per_s: int | None) -> None:
        """The body in chunks of a tenth of a second's worth, paced to `bytes_per_s`."""
        chunk = max(1, bytes_per_s // 10) if bytes_per_s else len(body)
        for start in range(0, len(body), chunk):
            if bytes_per_s and self.server.stopping.wait(min(chunk, len(body) - start) / bytes_per_s):
                self.close_connection = True
                return
            self.wfile.write(body[start : start + chunk])
            self.wfile.flush()

    def _send_unsized(self, record: VideoRecord, send_body: bool) -> None:
        """The whole file with no Content-Length: the body ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if send_body:
            self._copy_file(record, 0, record.path.stat().st_size, None)

    def _copy_file(self, record: VideoRecord, start: int, count: int, fault: Fault | None) -> None:
        throttle = fault.bytes_per_s if fault and fault.kind == "slow" else None
        chunk_size = max(1, throttle // 10) if throttle else _CHUNK
        corrupt = fault is not None and fault.kind == "corrupt"
        with open(record.path, "rb") as source:
            source.seek(start)
            while count > 0:
                chunk = source.read(min(chunk_size, count))
                if not chunk:
                    break
                if corrupt:
                    chunk = chunk.translate(_XOR_TABLE)
                if throttle and self.server.stopping.wait(len(chunk) / throttle):
                    break  # pace before each chunk, so N bytes take N / bytes_per_s seconds
                self.wfile.write(chunk)
                count -= len(chunk)
        self.wfile.flush()

    def _send_document(self, status: int, content_type: str, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_text(self, status: int, text: str, send_body: bool, headers: dict[str, str] | None = None) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span a Range header asks for; the whole file when absent or not a
    single byte range (RFC 9110 lets a server ignore those); None when unsatisfiable."""
    whole = (0, size - 1)
    match = _RANGE.fullmatch(header.strip()) if header else None
    if not match or match.groups() == ("", ""):
        return whole
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        count = int(last)
        return (max(0, size - count), size - 1) if count > 0 and size > 0 else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


def _index_page(site: "VideoSite") -> bytes:
    example = html.escape(site.search_url("mario speedrun"))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Local video site</title></head>"
        f"<body><h1>Local video site</h1><p>{len(site.video_ids())} videos.</p>"
        '<form action="/search"><input name="q"><input type="submit" value="Search"></form>'
        f'<p>Example feed: <a href="{example}">{example}</a></p></body></html>\n'
    ).encode()
