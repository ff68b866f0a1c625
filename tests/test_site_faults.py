"""Faults of the local video site, observed through the real yt-dlp, http.client and ffprobe."""

import http.client
import time
import urllib.request

import pytest
from fixtures_world import ffprobe_ok, raw_request, sha256_of, tiny_corpus, tiny_video_id, ydl_download  # noqa: F401 (fixture)
from yt_dlp.utils import DownloadError

from world.site import Fault, VideoSite
from world.site_faults import parse_fault

SPEEDRUN = tiny_video_id("speedrun")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def watch_url(site: VideoSite, video_id: str) -> str:
    return f"{site.url}/watch/{video_id}"


def test_status_429_for_first_request_then_download_succeeds(tiny_corpus, tmp_path):
    """With a 429 on the first request, yt-dlp fails once, and the next try gets the file."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("status", status=429, times=1)}) as own_site:
        with pytest.raises(DownloadError, match="429"):
            ydl_download(watch_url(own_site, SPEEDRUN), tmp_path)
        _, path = ydl_download(watch_url(own_site, SPEEDRUN), tmp_path)
        assert sha256_of(path) == sha256_of(own_site.file_path(SPEEDRUN))
        assert own_site.request_count(SPEEDRUN) == 2


def test_status_429_sends_retry_after_for_first_n_requests(tiny_corpus):
    """A 429 fault with times=2 and retry_after answers 429 + Retry-After twice, then 200."""
    fault = Fault("status", status=429, times=2, retry_after=7)
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: fault}) as own_site:
        answers = [raw_request(own_site.url, f"/media/{SPEEDRUN}.mp4") for _ in range(3)]
    assert [status for status, _, _ in answers] == [429, 429, 200]
    assert answers[0][1]["Retry-After"] == "7"


def test_status_403_fails_every_download(tiny_corpus, tmp_path):
    """A permanent 403 fails yt-dlp's download each time, without retries."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("status", status=403)}) as own_site:
        for _ in range(2):
            with pytest.raises(DownloadError, match="403"):
                ydl_download(watch_url(own_site, SPEEDRUN), tmp_path, retries=3)
        assert own_site.request_count(SPEEDRUN) == 2


def test_status_500_fails_after_yt_dlp_retries(tiny_corpus, tmp_path):
    """A permanent 500 fails the download after yt-dlp's retries (1 + retries requests)."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("status", status=500)}) as own_site:
        with pytest.raises(DownloadError, match="500"):
            ydl_download(watch_url(own_site, SPEEDRUN), tmp_path, retries=2)
        assert own_site.request_count(SPEEDRUN) == 3


def test_status_503_once_is_absorbed_by_yt_dlp_retry(tiny_corpus, tmp_path):
    """A single 503 is retried by yt-dlp's downloader and the file arrives intact."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("status", status=503, times=1)}) as own_site:
        _, path = ydl_download(watch_url(own_site, SPEEDRUN), tmp_path, retries=1)
        assert sha256_of(path) == sha256_of(own_site.file_path(SPEEDRUN))


def test_truncated_body_is_detected_as_incomplete(tiny_corpus, tmp_path):
    """A body cut short of its Content-Length fails the download; no finished file is left."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("truncate", fraction=0.4)}) as own_site:
        with pytest.raises(DownloadError, match="more expected"):
            ydl_download(watch_url(own_site, SPEEDRUN), tmp_path, retries=1)
    assert not (tmp_path / f"{SPEEDRUN}.mp4").exists()


def test_truncated_body_raises_incomplete_read_in_urllib(tiny_corpus):
    """A plain HTTP client also sees the short body (IncompleteRead)."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("truncate", fraction=0.4)}) as own_site:
        with DIRECT.open(f"{own_site.url}/media/{SPEEDRUN}.mp4", timeout=5) as response:
            with pytest.raises(http.client.IncompleteRead):
                response.read()


def test_truncated_once_is_recovered_by_yt_dlp_retry(tiny_corpus, tmp_path):
    """After one truncated body, yt-dlp's retry gets the whole file intact."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("truncate", fraction=0.5, times=1)}) as own_site:
        _, path = ydl_download(watch_url(own_site, SPEEDRUN), tmp_path, retries=1)
        assert sha256_of(path) == sha256_of(own_site.file_path(SPEEDRUN))
        assert own_site.request_count(SPEEDRUN) == 2


def test_corrupt_file_downloads_but_ffprobe_fails(tiny_corpus, tmp_path):
    """A corrupt file downloads at full length, differs from the original, and ffprobe fails."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("corrupt")}) as own_site:
        _, path = ydl_download(watch_url(own_site, SPEEDRUN), tmp_path)
        original = own_site.file_path(SPEEDRUN)
    assert path.stat().st_size == original.stat().st_size
    assert sha256_of(path) != sha256_of(original)
    assert ffprobe_ok(original) and not ffprobe_ok(path)


def test_slow_response_trips_a_short_socket_timeout(tiny_corpus, tmp_path):
    """A delay longer than yt-dlp's socket_timeout fails the download quickly."""
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: Fault("slow", delay_s=30.0)}) as own_site:
        started = time.monotonic()
        with pytest.raises(DownloadError, match="(?i)timed out"):
            ydl_download(watch_url(own_site, SPEEDRUN), tmp_path, socket_timeout=0.5)
        assert time.monotonic() - started < 10.0


def test_throttled_body_arrives_at_the_set_rate(tiny_corpus):
    """With bytes_per_s, 20 kB takes at least ~0.4 s at 50 kB/s and arrives intact."""
    fault = Fault("slow", delay_s=0.0, bytes_per_s=50_000)
    with VideoSite(tiny_corpus[0], faults={SPEEDRUN: fault}) as own_site:
        started = time.monotonic()
        _, _, body = raw_request(own_site.url, f"/media/{SPEEDRUN}.mp4", headers={"Range": "bytes=0-19999"})
        elapsed = time.monotonic() - started
        assert body == own_site.file_path(SPEEDRUN).read_bytes()[:20000]
    assert elapsed >= 0.35


def test_parse_fault_reads_cli_specs():
    """CLI fault specs become (id, Fault) with the positional value in the kind's main field."""
    assert parse_fault("abc=status:429,times=2,retry_after=1") == ("abc", Fault("status", status=429, times=2, retry_after=1))
    assert parse_fault("abc=slow:3") == ("abc", Fault("slow", delay_s=3.0))
    assert parse_fault("abc=truncate:0.25") == ("abc", Fault("truncate", fraction=0.25))
    assert parse_fault("abc=corrupt") == ("abc", Fault("corrupt"))


@pytest.mark.parametrize("spec", ["abc", "abc=explode", "abc=status:418", "abc=slow:3,speed=2", "abc=truncate:1.5"])
def test_parse_fault_rejects_bad_specs(spec):
    """A malformed fault spec is a ValueError, not a silent default."""
    with pytest.raises(ValueError):
        parse_fault(spec)


def test_fault_for_an_unknown_video_is_an_error(tiny_corpus):
    """Naming a fault for an id the site does not serve is an error that names the id."""
    with pytest.raises(ValueError, match="nosuchvideo"):
        VideoSite(tiny_corpus[0], faults={"nosuchvideo": Fault("corrupt")})
