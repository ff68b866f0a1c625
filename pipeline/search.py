"""Search through yt-dlp: queries -> one candidate row per video, deduplicated by video id.

Two backends, both plain yt-dlp playlist extraction (flat, so no video page is fetched):
- "youtube" (the production default): yt-dlp's own YouTube search, `ytsearchN:QUERY`;
- "feed": a site's search URL that yt-dlp reads as a playlist (the offline world's local
  site serves an RSS feed), from a template with `{query}` and `{limit}`.

A video found by several queries appears once, with every query that found it (in query
order) in `queries`. A query that fails is reported, not raised: the job goes on with the rest.
Each query has a hard wall-clock limit (`query_timeout_s`, pipeline/deadline.py: a feed
dripping a byte every few seconds never trips a socket timeout) and keeps at most
`results_per_query` results whatever the backend returns.
"""

import dataclasses
import itertools
import urllib.parse
from typing import Literal

import yt_dlp

from pipeline.deadline import DeadlineExceeded, deadline

from pipeline.keywords import KeywordRules
from pipeline.rows import ok
from schemas.manifest import VIDEO_SCHEMA


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What to search for, where, and the rules that keep a result."""

    # The search queries, in order.
    queries: tuple[str, ...] = ("platformer speedrun", "platformer playthrough", "mario speedrun")
    # "youtube": yt-dlp's ytsearchN:QUERY; "feed": feed_url, read by yt-dlp as a playlist.
    backend: Literal["youtube", "feed"] = "youtube"
    # For backend "feed": URL template with {query} and {limit} (both URL-encoded when filled).
    feed_url: str = ""
    # At most this many results per query.
    results_per_query: int = 50
    # Seconds before a silent connection is given up.
    socket_timeout_s: float = 20.0
    # Seconds one query may take in all (a hard limit, however slowly the server answers).
    query_timeout_s: float = 120.0
    # The keyword rules applied to every result (pipeline/keywords.py).
    rules: KeywordRules = KeywordRules()

    def __post_init__(self) -> None:
        if not self.queries:
            raise ValueError("search.queries is empty")
        if self.results_per_query < 1:
            raise ValueError(f"search.results_per_query must be >= 1, got {self.results_per_query}")
        if self.query_timeout_s <= 0 or self.socket_timeout_s <= 0:
            raise ValueError("search.query_timeout_s and search.socket_timeout_s must be > 0")
        if self.backend == "feed":
            if urllib.parse.urlsplit(self.feed_url).scheme not in ("http", "https"):
                raise ValueError(f"search.feed_url must be an http(s) URL template, got {self.feed_url!r}")
            if "{query}" not in self.feed_url:
                raise ValueError("search.feed_url must contain {query}")

    def playlist_url(self, query: str) -> str:
        """The URL yt-dlp extracts as the playlist of results for `query`."""
        if self.backend == "youtube":
            return f"ytsearch{self.results_per_query}:{query}"
        return self.feed_url.format(
            query=urllib.parse.quote_plus(query), limit=urllib.parse.quote_plus(str(self.results_per_query))
        )


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Candidate video rows (one per id, first-found order) and the queries that failed."""

    videos: list[dict]
    failed_queries: dict[str, str]


def search(config: SearchConfig) -> SearchResult:
    """Run every query through yt-dlp; one row per distinct video id, with all its queries."""
    options = {
        "quiet": True,
        "no_warnings": True,
        "extract_flat": "in_playlist",
        "socket_timeout": config.socket_timeout_s,
        "cachedir": False,
        "extractor_retries": 1,
        "playlistend": config.results_per_query,
    }
    if config.backend == "feed":  # a feed is the generic extractor's: not matching the URL against every other saves 0.3 CPU-s
        options["allowed_extractors"] = ["generic"]
    by_id: dict[str, dict] = {}
    failed: dict[str, str] = {}
    with yt_dlp.YoutubeDL(options) as ydl:
        for query in config.queries:
            try:
                with deadline(config.query_timeout_s):
                    playlist = ydl.extract_info(config.playlist_url(query), download=False)
                    entries = list(itertools.islice((playlist or {}).get("entries") or [], config.results_per_query))
            except DeadlineExceeded:
                failed[query] = f"search_timeout: no answer within query_timeout_s {config.query_timeout_s:g} s"
                continue
            except Exception as error:  # noqa: BLE001 - one query's failure never stops the search
                failed[query] = f"search_failed: {error}"
                continue
            for entry in entries:
                if not isinstance(entry, dict):
                    continue
                row = candidate_row(entry)
                if row is None:
                    continue
                known = by_id.get(row["video_id"])
                if known is None:
                    by_id[row["video_id"]] = {**row, "queries": [query]}
                elif query not in known["queries"]:
                    known["queries"].append(query)
    return SearchResult(list(by_id.values()), failed)


def candidate_row(entry: dict) -> dict | None:
    """A video row from one flat playlist entry, or None when it names no http(s) video."""
    url = entry.get("url") or entry.get("webpage_url")
    if not isinstance(url, str):
        return None
    if entry.get("ie_key") == "Youtube" and entry.get("id") and not url.startswith("http"):
        url = f"https://www.youtube.com/watch?v={entry['id']}"
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return None
    # The feed's entries carry no id: the site id is the watch URL's last path segment.
    video_id = entry.get("id") or urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    if not video_id:
        return None
    row = {name: None for name in VIDEO_SCHEMA.names if name not in ("created_at", "updated_at", "pipeline_version")}
    duration = entry.get("duration")
    row.update(
        video_id=str(video_id),
        url=url,
        title=entry.get("title"),
        description=entry.get("description"),
        uploader=entry.get("uploader") or entry.get("channel"),
        duration_s=float(duration) if isinstance(duration, (int, float)) else None,
        queries=[],
    )
    return ok(row, stage="search")
