"""The local video site, driven by the real yt-dlp and urllib, checked with real ffprobe."""

import hashlib
import http.client
import json
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yt_dlp
from yt_dlp.utils import DownloadError

from fixtures_world import tiny_video_id, write_tiny_corpus
from world.site import Fault, VideoSite
from world.site_catalog import CatalogError
from world.site_faults import parse_fault

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEEDRUN = tiny_video_id("speedrun")
PLAYTHROUGH = tiny_video_id("playthrough")
UNBOXING = tiny_video_id("unboxing")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, dict]]:
    """A tiny corpus in the contract layout and its catalog entries by id."""
    root = tmp_path_factory.mktemp("corpus")
    entries = write_tiny_corpus(root)
    return root, {entry["id"]: entry for entry in entries}


@pytest.fixture(scope="module")
def site(corpus, smb_dir):
    """The site serving the tiny corpus and the real SMB clips, without faults."""
    with VideoSite(corpus[0], smb_dir=smb_dir) as running:
        yield running


def ydl_options(download_dir: pathlib.Path, **overrides) -> dict:
    """yt-dlp options for tests: quiet, direct to 127.0.0.1, short timeouts, few retries."""
    options = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "proxy": "",
        "cachedir": False,
        "socket_timeout": 2,
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "fixup": "never",
        "outtmpl": str(download_dir / "%(id)s.%(ext)s"),
    }
    return {**options, **overrides}


def flat_search(site: VideoSite, query: str, tmp_path: pathlib.Path) -> dict:
    with yt_dlp.YoutubeDL(ydl_options(tmp_path, extract_flat="in_playlist")) as ydl:
        return ydl.extract_info(site.search_url(query), download=False)


def download(url: str, tmp_path: pathlib.Path, **overrides) -> tuple[dict, pathlib.Path]:
    with yt_dlp.YoutubeDL(ydl_options(tmp_path, **overrides)) as ydl:
        info = ydl.extract_info(url, download=True)
    return info, pathlib.Path(info["requested_downloads"][0]["filepath"])


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ffprobe_ok(path: pathlib.Path) -> bool:
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def watch_url(site: VideoSite, video_id: str) -> str:
    return f"{site.url}/watch/{video_id}"


def raw_get(site: VideoSite, path: str, method: str = "GET", headers: dict | None = None):
    """Send `path` exactly as written (no client-side normalisation); return status, headers, body."""
    host, port = site.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- search -------------------------------------------------------------------------------


def test_search_gives_a_playlist_of_the_matching_videos(site, tmp_path):
    """Flat extraction of the search URL is a playlist of exactly the videos whose words match."""
    result = flat_search(site, "jumping speedrun", tmp_path)
    assert result["_type"] == "playlist"
    ids = [entry["url"].rsplit("/", 1)[-1] for entry in result["entries"]]
    assert sorted(ids) == sorted([SPEEDRUN, PLAYTHROUGH])


def test_flat_entries_carry_title_description_duration_and_watch_url(site, corpus, tmp_path):
    """Each flat entry has the catalog's title, description and duration and the watch URL."""
    entry = flat_search(site, "speedrun", tmp_path)["entries"][0]
    expected = corpus[1][SPEEDRUN]
    assert entry["url"] == watch_url(site, SPEEDRUN)
    assert entry["title"] == expected["title"]
    assert entry["description"] == expected["description"]
    assert entry["duration"] == pytest.approx(expected["duration_s"])


def test_off_topic_videos_are_reachable_by_search(site, tmp_path):
    """An off-topic upload is found by its own words; filtering it is the pipeline's job."""
    entries = flat_search(site, "unboxing", tmp_path)["entries"]
    assert [entry["url"] for entry in entries] == [watch_url(site, UNBOXING)]


def test_real_footage_is_found_by_search(site, tmp_path):
    """The SMB clips are searchable: "mario" finds all 16 and nothing generated."""
    entries = flat_search(site, "mario", tmp_path)["entries"]
    ids = {entry["url"].rsplit("/", 1)[-1] for entry in entries}
    assert ids == {f"smb-{world}-{level}" for world in range(1, 5) for level in range(1, 5)}


def test_search_with_no_match_gives_an_empty_playlist(site, tmp_path):
    """A query matching nothing is an empty playlist, not an error."""
    assert flat_search(site, "zzzyzx", tmp_path)["entries"] == []


def test_search_limit_caps_the_entries(site, tmp_path):
    """`limit` caps how many entries the feed lists."""
    with yt_dlp.YoutubeDL(ydl_options(tmp_path, extract_flat="in_playlist")) as ydl:
        result = ydl.extract_info(site.search_url("mario", limit=3), download=False)
    assert len(result["entries"]) == 3


# --- full extraction and download ---------------------------------------------------------


def test_full_extraction_gives_id_and_metadata(site, corpus, tmp_path):
    """Extracting a watch page gives the site id, title, description, uploader, duration, mp4."""
    with yt_dlp.YoutubeDL(ydl_options(tmp_path)) as ydl:
        info = ydl.extract_info(watch_url(site, PLAYTHROUGH), download=False)
    expected = corpus[1][PLAYTHROUGH]
    assert info["id"] == PLAYTHROUGH
    assert (info["title"], info["description"]) == (expected["title"], expected["description"])
    assert info["uploader"] == expected["uploader"]
    assert info["duration"] == pytest.approx(expected["duration_s"])
    assert info["upload_date"] == expected["upload_date"]
    assert info["ext"] == "mp4"
    assert info["url"].startswith(f"{site.url}/media/{PLAYTHROUGH}.mp4")


def test_generated_video_downloads_byte_identical(site, tmp_path):
    """A generated upload, found by search and downloaded by yt-dlp, equals the served file."""
    entry = flat_search(site, "speedrun", tmp_path)["entries"][0]
    info, path = download(entry["url"], tmp_path)
    assert info["id"] == SPEEDRUN
    assert path == tmp_path / f"{SPEEDRUN}.mp4"
    assert sha256(path) == sha256(site.file_path(SPEEDRUN))


def test_real_video_downloads_byte_identical(site, smb_dir, tmp_path):
    """A real SMB clip downloads byte-identical to the file in the footage folder."""
    info, path = download(watch_url(site, "smb-1-1"), tmp_path)
    assert info["id"] == "smb-1-1"
    assert sha256(path) == sha256(smb_dir / "smb_1_1.mp4")


def test_real_video_metadata_is_honest(site, smb_dir):
    """The SMB clip's metadata names its uploader, the MIT licence and its probed duration."""
    with DIRECT.open(f"{site.url}/api/videos/smb-2-3.json", timeout=5) as response:
        metadata = json.load(response)
    assert metadata["title"] == "Super Mario Bros. World 2-3 playthrough (PPO agent)"
    assert metadata["license"] == "MIT"
    assert "uvipen" in metadata["uploader"]
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(smb_dir / "smb_2_3.mp4")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert metadata["duration_s"] == pytest.approx(float(probed))


# --- media over HTTP ----------------------------------------------------------------------


def test_media_head_gives_type_and_length_without_body(site):
    """HEAD on a media URL gives video/mp4, the file's length, Accept-Ranges, and no body."""
    status, headers, body = raw_get(site, f"/media/{SPEEDRUN}.mp4", method="HEAD")
    assert status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert int(headers["Content-Length"]) == site.file_path(SPEEDRUN).stat().st_size
    assert headers["Accept-Ranges"] == "bytes"
    assert body == b""


def test_media_range_gives_206_with_those_bytes(site):
    """A byte range gives 206, a Content-Range and exactly those bytes."""
    data = site.file_path(SPEEDRUN).read_bytes()
    status, headers, body = raw_get(site, f"/media/{SPEEDRUN}.mp4", headers={"Range": "bytes=100-199"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert body == data[100:200]


def test_media_suffix_range_gives_the_last_bytes(site):
    """A suffix range (bytes=-N) gives the file's last N bytes."""
    data = site.file_path(SPEEDRUN).read_bytes()
    status, _, body = raw_get(site, f"/media/{SPEEDRUN}.mp4", headers={"Range": "bytes=-10"})
    assert (status, body) == (206, data[-10:])


def test_media_range_past_the_end_gives_416(site):
    """A range starting past the end is 416 with the size in Content-Range."""
    size = site.file_path(SPEEDRUN).stat().st_size
    status, headers, _ = raw_get(site, f"/media/{SPEEDRUN}.mp4", headers={"Range": f"bytes={size}-"})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize(
    "path",
    [
        "/catalog.json",
        f"/truth/{SPEEDRUN}.json",
        f"/videos/{SPEEDRUN}.mp4",
        "/media/../catalog.json",
        "/media/..%2Fcatalog.json",
        f"/media/..%2Ftruth%2F{SPEEDRUN}.json",
        f"/media/%2e%2e/videos/{SPEEDRUN}.mp4",
        "/watch/../../../etc/passwd",
        f"/media/{SPEEDRUN}.mp4/../../catalog.json",
        "/api/videos/..%2F..%2Fcatalog.json",
        "/media/smb_1_1.mp4",
        "/media/..%2F..%2F..%2Fshared%2Fcorpus%2Fsmb%2FLICENSE.source",
    ],
)
def test_path_traversal_and_unlisted_files_get_404(site, path):
    """Only listed videos are served: traversal attempts and truth/catalog paths are 404."""
    status, _, _ = raw_get(site, path)
    assert status == 404


def test_unknown_video_id_gets_404(site):
    """A well-formed id the catalog does not list is 404 on every route."""
    for path in ["/watch/nosuchvideo", "/media/nosuchvideo.mp4", "/api/videos/nosuchvideo.json"]:
        assert raw_get(site, path)[0] == 404


def test_request_count_counts_media_requests_only(corpus, tmp_path):
    """GET and HEAD on the media URL count; the watch page does not."""
    with VideoSite(corpus[0]) as own_site:
        raw_get(own_site, f"/watch/{UNBOXING}")
        raw_get(own_site, f"/media/{UNBOXING}.mp4")
        raw_get(own_site, f"/media/{UNBOXING}.mp4", method="HEAD")
        assert own_site.request_count(UNBOXING) == 2
        assert own_site.request_count(SPEEDRUN) == 0


# --- faults -------------------------------------------------------------------------------


def test_status_429_for_first_request_then_download_succeeds(corpus, tmp_path):
    """With a 429 on the first request, yt-dlp fails once, and the next try gets the file."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("status", status=429, times=1)}) as own_site:
        with pytest.raises(DownloadError, match="429"):
            download(watch_url(own_site, SPEEDRUN), tmp_path)
        _, path = download(watch_url(own_site, SPEEDRUN), tmp_path)
        assert sha256(path) == sha256(own_site.file_path(SPEEDRUN))
        assert own_site.request_count(SPEEDRUN) == 2


def test_status_429_sends_retry_after_for_first_n_requests(corpus):
    """A 429 fault with times=2 and retry_after answers 429 + Retry-After twice, then 200."""
    fault = Fault("status", status=429, times=2, retry_after=7)
    with VideoSite(corpus[0], faults={SPEEDRUN: fault}) as own_site:
        answers = [raw_get(own_site, f"/media/{SPEEDRUN}.mp4") for _ in range(3)]
    assert [status for status, _, _ in answers] == [429, 429, 200]
    assert answers[0][1]["Retry-After"] == "7"


def test_status_403_fails_every_download(corpus, tmp_path):
    """A permanent 403 fails yt-dlp's download each time, without retries."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("status", status=403)}) as own_site:
        for _ in range(2):
            with pytest.raises(DownloadError, match="403"):
                download(watch_url(own_site, SPEEDRUN), tmp_path, retries=3)
        assert own_site.request_count(SPEEDRUN) == 2


def test_status_500_fails_after_yt_dlp_retries(corpus, tmp_path):
    """A permanent 500 fails the download after yt-dlp's retries (1 + retries requests)."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("status", status=500)}) as own_site:
        with pytest.raises(DownloadError, match="500"):
            download(watch_url(own_site, SPEEDRUN), tmp_path, retries=2)
        assert own_site.request_count(SPEEDRUN) == 3


def test_status_503_once_is_absorbed_by_yt_dlp_retry(corpus, tmp_path):
    """A single 503 is retried by yt-dlp's downloader and the file arrives intact."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("status", status=503, times=1)}) as own_site:
        _, path = download(watch_url(own_site, SPEEDRUN), tmp_path, retries=1)
        assert sha256(path) == sha256(own_site.file_path(SPEEDRUN))


def test_truncated_body_is_detected_as_incomplete(corpus, tmp_path):
    """A body cut short of its Content-Length fails the download; no finished file is left."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("truncate", fraction=0.4)}) as own_site:
        with pytest.raises(DownloadError):
            download(watch_url(own_site, SPEEDRUN), tmp_path, retries=1)
    assert not (tmp_path / f"{SPEEDRUN}.mp4").exists()


def test_truncated_body_raises_incomplete_read_in_urllib(corpus):
    """A plain HTTP client also sees the short body (IncompleteRead)."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("truncate", fraction=0.4)}) as own_site:
        with DIRECT.open(f"{own_site.url}/media/{SPEEDRUN}.mp4", timeout=5) as response:
            with pytest.raises(http.client.IncompleteRead):
                response.read()


def test_truncated_once_is_recovered_by_yt_dlp_retry(corpus, tmp_path):
    """After one truncated body, yt-dlp's retry gets the whole file intact."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("truncate", fraction=0.5, times=1)}) as own_site:
        _, path = download(watch_url(own_site, SPEEDRUN), tmp_path, retries=1)
        assert sha256(path) == sha256(own_site.file_path(SPEEDRUN))
        assert own_site.request_count(SPEEDRUN) == 2


def test_corrupt_file_downloads_but_ffprobe_fails(corpus, tmp_path):
    """A corrupt file downloads at full length, differs from the original, and ffprobe fails."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("corrupt")}) as own_site:
        _, path = download(watch_url(own_site, SPEEDRUN), tmp_path)
        original = own_site.file_path(SPEEDRUN)
    assert path.stat().st_size == original.stat().st_size
    assert sha256(path) != sha256(original)
    assert ffprobe_ok(original) and not ffprobe_ok(path)


def test_slow_response_trips_a_short_socket_timeout(corpus, tmp_path):
    """A delay longer than yt-dlp's socket_timeout fails the download quickly."""
    with VideoSite(corpus[0], faults={SPEEDRUN: Fault("slow", delay_s=5.0)}) as own_site:
        started = time.monotonic()
        with pytest.raises(DownloadError, match="(?i)timed out"):
            download(watch_url(own_site, SPEEDRUN), tmp_path, socket_timeout=0.5)
        assert time.monotonic() - started < 4.0


def test_throttled_body_arrives_at_the_set_rate(corpus):
    """With bytes_per_s, 20 kB takes at least ~0.4 s at 50 kB/s and arrives intact."""
    fault = Fault("slow", delay_s=0.0, bytes_per_s=50_000)
    with VideoSite(corpus[0], faults={SPEEDRUN: fault}) as own_site:
        started = time.monotonic()
        _, _, body = raw_get(own_site, f"/media/{SPEEDRUN}.mp4", headers={"Range": "bytes=0-19999"})
        elapsed = time.monotonic() - started
        assert body == own_site.file_path(SPEEDRUN).read_bytes()[:20000]
    assert elapsed >= 0.35


# --- construction and CLI -----------------------------------------------------------------


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


def test_fault_for_an_unknown_video_is_an_error(corpus):
    """Naming a fault for an id the site does not serve is an error that names the id."""
    with pytest.raises(ValueError, match="nosuchvideo"):
        VideoSite(corpus[0], faults={"nosuchvideo": Fault("corrupt")})


def test_catalog_file_outside_videos_is_rejected(corpus, tmp_path):
    """A catalog entry whose file points outside videos/ (e.g. at a truth file) is refused."""
    entry = dict(next(iter(corpus[1].values())), file=f"videos/../truth/{SPEEDRUN}.json")
    (tmp_path / "videos").mkdir()
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / f"{SPEEDRUN}.json").write_text("{}")
    (tmp_path / "catalog.json").write_text(json.dumps({"version": 1, "videos": [entry]}))
    with pytest.raises(CatalogError, match="not an .mp4 under videos/"):
        VideoSite(tmp_path)


def test_cli_prints_urls_serves_and_stops_on_interrupt(corpus):
    """`main` prints the base and search URLs, serves the feed, and exits 0 on Ctrl-C."""
    code = "import sys, world.site; sys.exit(world.site.main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, "--corpus", str(corpus[0]), "--fault", f"{SPEEDRUN}=status:503"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        base_line = process.stdout.readline()
        search_line = process.stdout.readline()
        base_url = base_line.split(" at ")[1].strip().rstrip("/")
        search_url = search_line.split(": ", 1)[1].strip()
        assert search_url.startswith(f"{base_url}/search?q=")
        with DIRECT.open(search_url, timeout=5) as response:
            assert response.read().startswith(b"<?xml")
        with pytest.raises(urllib.error.HTTPError, match="503"):
            DIRECT.open(f"{base_url}/media/{SPEEDRUN}.mp4", timeout=5)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
