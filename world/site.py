"""The local video site: the offline stand-in for a video platform that yt-dlp searches and
downloads from exactly as it would from a real one.

    from world.site import VideoSite, Fault
    with VideoSite(corpus_dir, smb_dir=None, faults={video_id: Fault("status", status=429, times=2)}) as site:
        site.search_url("mario speedrun", limit=50)   # give this URL to yt-dlp

What yt-dlp gives (its own generic extractor, no plug-in; checked in tests/test_site.py and
tests/test_site_faults.py):

Options: {"quiet": True, "no_warnings": True, "noprogress": True, "proxy": "",
"socket_timeout": S, "retries": R, "extractor_retries": 0, "fixup": "never",
"outtmpl": "<dir>/%(id)s.%(ext)s"}. `fixup: "never"` keeps the file byte-identical to what
the site serves; `proxy: ""` keeps 127.0.0.1 traffic off any environment proxy;
`no_warnings` hides "Falling back on generic information extractor". yt-dlp still prints
"ERROR: ..." lines to stderr on failure unless given a `logger`.

1. Search: `extract_info(site.search_url(q, limit), download=False)` with
   `extract_flat="in_playlist"` -> {"_type": "playlist", "entries": [...]}, one entry per hit
   (an RSS item; `_type` "url_transparent"), each with
     url          the watch page "<site.url>/watch/<id>"; give it back to yt-dlp to download
     title        str
     description  str
     duration     seconds (int or float)
     timestamp    int, upload date at 00:00 UTC (None for videos without one, e.g. SMB)
   Flat entries carry NO `id`: yt-dlp's RSS reader never sets one. The site id is the last
   path segment of `url` (`url.rsplit("/", 1)[-1]`), which is also the `id` that full
   extraction reports. Ids match [A-Za-z0-9_-]{1,64}: 11 characters for generated videos,
   "smb-W-L" for the real clips.
2. One video: `extract_info(entry["url"], download=...)` ->
     id           the site's video id
     title, description, uploader (str), duration (seconds), timestamp, upload_date
     webpage_url  the watch page
     url, ext     the media URL "<site.url>/media/<id>.mp4" followed by a yt-dlp
                  "#__youtubedl_smuggle=..." fragment (never sent over HTTP), and "mp4"
     filesize     bytes of the served file
   `license` is NOT set: yt-dlp's generic extractor ignores JSON-LD `license`. Read it from
   GET "<site.url>/api/videos/<id>.json" -> {id, title, description, uploader, license,
   duration_s, upload_date, width, height, fps, webpage_url, media_url, filesize}.
3. Download: with download=True the file is `info["requested_downloads"][0]["filepath"]`,
   i.e. "<dir>/<id>.mp4" with the outtmpl above.
4. Failures raise `yt_dlp.utils.DownloadError` (with `ignoreerrors` off). Its message holds
   "HTTP Error 429" / "HTTP Error 403" (4xx: never retried by yt-dlp), "HTTP Error 500" /
   "HTTP Error 503" (5xx: retried `retries` times, so 1 + retries media requests),
   "bytes read, N more expected" (a truncated body, retried like 5xx), or "timed out"
   (slow). A corrupt file downloads without error; only probing it fails.

Faults (world/site_faults.py) apply only to media requests of the faulted id (and a
"no_length" fault also hides the size on its watch page); `site.request_count(id)` counts
those requests (GET and HEAD). `search_faults` make the search feed of one query slow.

CLI: `genie world serve --corpus DIR [--smb DIR] [--port N] [--fault ID=KIND[:ARG]]...`.
"""

import argparse
import pathlib
import signal
import threading
import urllib.parse

from world.site_catalog import VideoRecord, check_unique, load_corpus, load_smb, search
from world.site_faults import Fault, parse_fault
from world.site_http import SiteServer

__all__ = ["Fault", "VideoSite", "main"]


class VideoSite:
    """An HTTP video site on `host`:`port` (0 picks a free port) serving a corpus folder and,
    optionally, the real SMB footage. Use as a context manager; `url` is known at once."""

    def __init__(
        self,
        corpus_dir: str | pathlib.Path,
        smb_dir: str | pathlib.Path | None = None,
        faults: dict[str, Fault] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        search_faults: dict[str, Fault] | None = None,
    ) -> None:
        records = load_corpus(corpus_dir) + (load_smb(smb_dir) if smb_dir is not None else [])
        check_unique(records, "the corpus and the SMB footage together")
        self._records = records
        self._by_id = {record.id: record for record in records}
        self.faults = dict(faults or {})
        unknown = sorted(set(self.faults) - set(self._by_id))
        if unknown:
            raise ValueError(f"faults name videos the site does not serve: {', '.join(unknown)}")
        self.search_faults = dict(search_faults or {})
        if any(fault.kind != "slow" for fault in self.search_faults.values()):
            raise ValueError("search faults must be of kind 'slow'")
        self._server = SiteServer((host, port), self)
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "VideoSite":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="video-site", daemon=True)
            self._thread.start()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def close(self) -> None:
        """Stop serving and release the port; handlers asleep on a "slow" fault wake and end."""
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def search_url(self, query: str, limit: int = 50) -> str:
        """The URL of the RSS search feed for `query` (any word in title or description)."""
        return f"{self.url}/search?{urllib.parse.urlencode({'q': query, 'limit': limit})}"

    def search(self, query: str, limit: int = 50) -> list[VideoRecord]:
        """The records the search feed lists for `query`, in feed order."""
        return search(self._records, query, limit)

    def video_ids(self) -> list[str]:
        """Every id the site serves: the corpus in catalog order, then the SMB clips."""
        return [record.id for record in self._records]

    def record(self, video_id: str) -> VideoRecord | None:
        """The served video with this id, or None."""
        return self._by_id.get(video_id)

    def file_path(self, video_id: str) -> pathlib.Path:
        """The local file served for `video_id` (KeyError for an unknown id)."""
        return self._by_id[video_id].path

    def request_count(self, video_id: str) -> int:
        """How many media requests (GET or HEAD) the site has had for `video_id`."""
        return self._server.media_requests(video_id)


def main(argv: list[str] | None = None) -> int:
    """`genie world serve`: serve a corpus (and the SMB footage) until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="genie world serve", description=main.__doc__)
    parser.add_argument("--corpus", required=True, type=pathlib.Path, help="corpus folder with catalog.json")
    parser.add_argument("--smb", type=pathlib.Path, help="folder of real smb_W_L.mp4 clips to serve too")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ID=KIND[:ARG]",
        help="misbehave for one video: status:429[,times=N][,retry_after=S], slow:SECONDS"
        "[,bytes_per_s=N], truncate:FRACTION, corrupt (repeatable)",
    )
    options = parser.parse_args(argv)
    try:
        faults = dict(parse_fault(spec) for spec in options.fault)
        site = VideoSite(options.corpus, smb_dir=options.smb, faults=faults, port=options.port)
    except ValueError as error:  # CatalogError is a ValueError
        parser.error(str(error))
    print(f"serving {len(site.video_ids())} videos at {site.url}/", flush=True)
    print(f"search feed for yt-dlp: {site.search_url('mario speedrun')}", flush=True)
    # Ctrl-C and SIGTERM stop it cleanly even when started from a script in the background,
    # where the shell leaves SIGINT ignored and Python then raises no KeyboardInterrupt.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    try:
        site.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        site.close()
    return 0
