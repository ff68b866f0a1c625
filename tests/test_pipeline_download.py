"""Search and download through the real yt-dlp against the local site (pipeline/search.py,
pipeline/download.py), with the site's faults."""

import copy
import dataclasses
import hashlib
import pathlib
import time

import pytest
import yt_dlp
from fixtures_world import tiny_corpus, tiny_video_id  # noqa: F401 (fixture)

from pipeline.download import FORMAT_SORT, Download, DownloadConfig
from pipeline.rows import to_batch, to_rows
from pipeline.search import SearchConfig, candidate_row, search
from world.site import Fault, VideoSite

SPEEDRUN, PLAYTHROUGH, UNBOXING = (tiny_video_id(key) for key in ("speedrun", "playthrough", "unboxing"))
FAST = DownloadConfig(socket_timeout_s=1.0, video_timeout_s=20.0, max_attempts=3, backoff_initial_s=0.01,
                      backoff_max_s=0.05, extractors=("generic",))  # fmt: skip


def feed(site: VideoSite, *queries: str) -> SearchConfig:
    return SearchConfig(queries=queries, backend="feed", feed_url=f"{site.url}/search?q={{query}}&limit={{limit}}")


def video(site: VideoSite, video_id: str) -> dict:
    return {**candidate_row({"url": f"{site.url}/watch/{video_id}", "title": "t"}), "queries": ["q"]}


def fetch(store: pathlib.Path, site: VideoSite, video_id: str, config: DownloadConfig = FAST, acquire=None) -> dict:
    (row,) = to_rows(Download(config, store, acquire)(to_batch([video(site, video_id)])))
    return row


@pytest.fixture(scope="module")
def site(tiny_corpus):
    with VideoSite(tiny_corpus[0]) as running:
        yield running


def test_search_dedups_by_id_and_keeps_every_query_that_found_a_video(site):
    """Two queries finding the same video give one row listing both queries, in query order."""
    result = search(feed(site, "speedrun", "retro", "unboxing"))
    by_id = {row["video_id"]: row for row in result.videos}
    assert sorted(by_id) == sorted([SPEEDRUN, UNBOXING])
    assert by_id[SPEEDRUN]["queries"] == ["speedrun", "retro"]
    assert by_id[SPEEDRUN]["title"].startswith("Pixel Hopper") and by_id[SPEEDRUN]["duration_s"] == 2.0
    assert result.failed_queries == {}


def test_a_failing_query_is_reported_and_the_rest_go_on(site):
    """A query whose feed cannot be fetched is listed with its reason; other queries still count."""
    config = SearchConfig(queries=("speedrun",), backend="feed", feed_url="http://127.0.0.1:9/search?q={query}")
    assert list(search(config).failed_queries) == ["speedrun"]
    assert search(feed(site, "speedrun")).videos


def test_download_stores_the_file_by_its_content_and_records_metadata(site, tmp_path):
    """A video downloads byte-identical to the served file, stored under its sha256, with the
    metadata of full extraction; the input batch is not changed."""
    batch = to_batch([video(site, PLAYTHROUGH)])
    before = copy.deepcopy(batch)
    (row,) = to_rows(Download(FAST, tmp_path)(batch))
    served = site.file_path(PLAYTHROUGH).read_bytes()
    assert batch == before
    assert (row["status"], row["download_attempts"]) == ("ok", 1)
    assert row["content_sha256"] == hashlib.sha256(served).hexdigest()
    assert pathlib.Path(row["path"]) == tmp_path / "sha256" / row["content_sha256"][:2] / f"{row['content_sha256']}.mp4"
    assert pathlib.Path(row["path"]).read_bytes() == served
    assert (row["uploader"], row["file_bytes"]) == ("LetsPlayLena", len(served))
    assert row["timings"]["download_wall_s"] > 0


def test_a_video_already_stored_is_not_downloaded_again(site, tmp_path):
    """A second download of the same id finds the stored file: no media request, 0 attempts."""
    first = fetch(tmp_path, site, SPEEDRUN)
    requests = site.request_count(SPEEDRUN)
    second = fetch(tmp_path, site, SPEEDRUN)
    assert site.request_count(SPEEDRUN) == requests
    assert (second["status"], second["download_attempts"], second["path"]) == ("ok", 0, first["path"])


@pytest.mark.parametrize("fault, reason, attempts", [
    (Fault("status", status=429, times=2, retry_after=0), None, 3),
    (Fault("status", status=503, times=1), None, 2),
    (Fault("status", status=403), "http_403", 3),
    (Fault("status", status=429), "http_429", 3),
    (Fault("status", status=500), "http_500", 3),
    (Fault("truncate", fraction=0.4), "truncated", 3),
    (Fault("slow", delay_s=3.0), "timeout", 3),
])
def test_site_faults_are_retried_then_recorded(tiny_corpus, tmp_path, fault, reason, attempts):
    """Transient faults are retried with backoff until they clear; lasting ones end as an error
    row with the reason code after max_attempts, and nothing is left in the store."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: fault}) as faulty:
        row = fetch(tmp_path, faulty, SPEEDRUN)
    assert row["download_attempts"] == attempts
    if reason is None:
        assert row["status"] == "ok"
    else:
        assert (row["status"], row["stage"], row["reason"].split(":")[0], row["path"]) == ("error", "download", reason, None)
        assert list((tmp_path / "sha256").iterdir()) == []


def test_every_attempt_waits_for_the_rate_limit(tiny_corpus, tmp_path):
    """The injected rate limiter is asked once per attempt, retries included."""
    calls = []
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("status", status=503, times=1)}) as faulty:
        fetch(tmp_path, faulty, SPEEDRUN, acquire=lambda: calls.append(1))
    assert len(calls) == 2


@pytest.mark.parametrize("config, reason", [
    (DownloadConfig(extractors=("generic",), max_duration_s=1.0), "too_long"),
    (DownloadConfig(extractors=("generic",), max_file_bytes=1000), "too_large"),
])
def test_caps_refuse_a_video_before_its_bytes_are_fetched(site, tmp_path, config, reason):
    """A video over the duration or size cap fails at once, without fetching its media."""
    requests = site.request_count(UNBOXING)
    row = fetch(tmp_path, site, UNBOXING, config)
    assert (row["status"], row["reason"].split(":")[0], row["download_attempts"]) == ("error", reason, 1)
    assert site.request_count(UNBOXING) == requests


def test_only_http_urls_are_fetched(tmp_path):
    """A row whose URL is not http(s) fails with bad_scheme and no attempt."""
    row = {**candidate_row({"url": "http://x/watch/a", "title": "t"}), "url": "file:///etc/passwd"}
    (out,) = to_rows(Download(FAST, tmp_path)(to_batch([row])))
    assert (out["status"], out["reason"].split(":")[0]) == ("error", "bad_scheme")


def test_format_choice_is_the_smallest_stream_at_least_160x90():
    """Among 144p..1080p streams (and one too small), yt-dlp picks the 256x144 video-only one."""
    formats = [
        {"format_id": f"{height}p", "url": f"http://x/{height}.mp4", "ext": "mp4", "width": height * 16 // 9,
         "height": height, "vcodec": "avc1", "acodec": "none", "tbr": height * 3.0}
        for height in (72, 144, 240, 360, 720, 1080)
    ]  # fmt: skip
    info = {"id": "v", "title": "t", "formats": formats, "extractor": "test", "extractor_key": "Test",
            "webpage_url": "http://x/v"}  # fmt: skip
    config = DownloadConfig()
    options = {"quiet": True, "format": config.format_selector(), "format_sort": FORMAT_SORT, "simulate": True}
    with yt_dlp.YoutubeDL(options) as ydl:
        chosen = ydl.process_ie_result(info, download=False)
    assert chosen["format_id"] == "144p"


def test_a_size_cap_holds_on_bytes_received_when_no_size_is_announced(tiny_corpus, tmp_path):
    """A body with no Content-Length (and no size on the page) is cut off past max_file_bytes as
    too_large, and its partial file is removed."""
    config = DownloadConfig(**{**FAST.__dict__, "max_file_bytes": 20_000, "max_attempts": 1})
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("no_length")}) as faulty:
        row = fetch(tmp_path, faulty, SPEEDRUN, config)
    assert (row["status"], row["reason"].split(":")[0]) == ("error", "too_large")
    assert list((tmp_path / "incoming").iterdir()) == [] and list((tmp_path / "sha256").iterdir()) == []


def test_a_dripping_server_is_cut_off_at_the_video_deadline(tiny_corpus, tmp_path):
    """A server sending 2 kB/s (never silent long enough for a socket timeout) fails as timeout
    soon after video_timeout_s, not when the file would have arrived."""
    config = DownloadConfig(**{**FAST.__dict__, "video_timeout_s": 2.0, "socket_timeout_s": 5.0})
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("slow", delay_s=0.0, bytes_per_s=2000)}) as faulty:
        started = time.monotonic()
        row = fetch(tmp_path, faulty, SPEEDRUN, config)
        elapsed = time.monotonic() - started
    assert (row["status"], row["reason"].split(":")[0]) == ("error", "timeout")
    assert elapsed < 8.0
    assert list((tmp_path / "incoming").iterdir()) == []


def test_a_dripping_search_feed_fails_its_query_on_time(tiny_corpus):
    """A feed dripping 1 byte/s fails its query as search_timeout after query_timeout_s; the
    other queries still give their videos."""
    with VideoSite(tiny_corpus[0], search_faults={"speedrun": Fault("slow", delay_s=0.0, bytes_per_s=1)}) as faulty:
        config = dataclasses.replace(feed(faulty, "speedrun", "playthrough"), query_timeout_s=1.5, socket_timeout_s=5.0)
        started = time.monotonic()
        result = search(config)
        elapsed = time.monotonic() - started
    assert list(result.failed_queries) == ["speedrun"] and result.failed_queries["speedrun"].startswith("search_timeout")
    assert [row["video_id"] for row in result.videos] == [PLAYTHROUGH]
    assert elapsed < 6.0


def test_results_per_query_holds_when_the_feed_ignores_the_limit(site):
    """A feed URL without {limit} returns every match; only results_per_query of them are kept."""
    config = SearchConfig(queries=("platformer world",), backend="feed", feed_url=f"{site.url}/search?q={{query}}",
                          results_per_query=1)  # fmt: skip
    assert len(site.search("platformer world", 50)) == 2
    assert len(search(config).videos) == 1
