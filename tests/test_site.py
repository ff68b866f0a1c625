"""The local video site, driven by the real yt-dlp and http.client."""

import json
import pathlib
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yt_dlp
from fixtures_world import raw_request, sha256_of, tiny_corpus, tiny_video_id, ydl_download, ydl_options  # noqa: F401 (fixture)

from world.site import VideoSite
from world.site_catalog import CatalogError

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEEDRUN = tiny_video_id("speedrun")
PLAYTHROUGH = tiny_video_id("playthrough")
UNBOXING = tiny_video_id("unboxing")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


@pytest.fixture(scope="module")
def site(tiny_corpus, smb_dir):
    """The site serving the tiny corpus and the real SMB clips, without faults."""
    with VideoSite(tiny_corpus[0], smb_dir=smb_dir) as running:
        yield running


def flat_search(site: VideoSite, query: str, tmp_path: pathlib.Path) -> dict:
    with yt_dlp.YoutubeDL(ydl_options(tmp_path, extract_flat="in_playlist")) as ydl:
        return ydl.extract_info(site.search_url(query), download=False)


def watch_url(site: VideoSite, video_id: str) -> str:
    return f"{site.url}/watch/{video_id}"


# --- search -------------------------------------------------------------------------------


def test_search_gives_a_playlist_of_the_matching_videos(site, tmp_path):
    """Flat extraction of the search URL is a playlist of exactly the videos whose words match."""
    result = flat_search(site, "jumping speedrun", tmp_path)
    assert result["_type"] == "playlist"
    ids = [entry["url"].rsplit("/", 1)[-1] for entry in result["entries"]]
    assert sorted(ids) == sorted([SPEEDRUN, PLAYTHROUGH])


def test_flat_entries_carry_title_description_duration_and_watch_url(site, tiny_corpus, tmp_path):
    """Each flat entry has the catalog's title, description and duration and the watch URL."""
    entry = flat_search(site, "speedrun", tmp_path)["entries"][0]
    expected = tiny_corpus[1][SPEEDRUN]
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


def test_search_feed_survives_markup_and_control_characters_in_the_query(site, tmp_path):
    """A query with XML markup and control characters still gives a valid playlist."""
    entries = flat_search(site, "mario\x01 <&> ]]>", tmp_path)["entries"]
    assert len(entries) == 16


def test_search_limit_caps_the_entries(site, tmp_path):
    """`limit` caps how many entries the feed lists."""
    with yt_dlp.YoutubeDL(ydl_options(tmp_path, extract_flat="in_playlist")) as ydl:
        result = ydl.extract_info(site.search_url("mario", limit=3), download=False)
    assert len(result["entries"]) == 3


# --- full extraction and download ---------------------------------------------------------


def test_full_extraction_gives_id_and_metadata(site, tiny_corpus, tmp_path):
    """Extracting a watch page gives the site id, title, description, uploader, duration, mp4."""
    with yt_dlp.YoutubeDL(ydl_options(tmp_path)) as ydl:
        info = ydl.extract_info(watch_url(site, PLAYTHROUGH), download=False)
    expected = tiny_corpus[1][PLAYTHROUGH]
    assert info["id"] == PLAYTHROUGH
    assert (info["title"], info["description"]) == (expected["title"], expected["description"])
    assert info["uploader"] == expected["uploader"]
    assert info["duration"] == pytest.approx(expected["duration_s"])
    assert info["upload_date"] == expected["upload_date"]
    assert info["ext"] == "mp4"
    assert info["url"].startswith(f"{site.url}/media/{PLAYTHROUGH}.mp4")
    assert info["webpage_url"] == watch_url(site, PLAYTHROUGH)
    assert info["filesize"] == site.file_path(PLAYTHROUGH).stat().st_size
    assert info.get("license") is None  # not mapped by yt-dlp; see /api/videos/<id>.json


def test_generated_video_downloads_byte_identical(site, tmp_path):
    """A generated upload, found by search and downloaded by yt-dlp, equals the served file."""
    entry = flat_search(site, "speedrun", tmp_path)["entries"][0]
    info, path = ydl_download(entry["url"], tmp_path)
    assert info["id"] == SPEEDRUN
    assert path == tmp_path / f"{SPEEDRUN}.mp4"
    assert sha256_of(path) == sha256_of(site.file_path(SPEEDRUN))


def test_real_video_downloads_byte_identical(site, smb_dir, tmp_path):
    """A real SMB clip downloads byte-identical to the file in the footage folder."""
    info, path = ydl_download(watch_url(site, "smb-1-1"), tmp_path)
    assert info["id"] == "smb-1-1"
    assert sha256_of(path) == sha256_of(smb_dir / "smb_1_1.mp4")


def test_metadata_endpoint_gives_the_licence(site, tiny_corpus):
    """/api/videos/<id>.json carries the catalog's licence, which yt-dlp does not map."""
    with DIRECT.open(f"{site.url}/api/videos/{SPEEDRUN}.json", timeout=5) as response:
        metadata = json.load(response)
    assert metadata["license"] == tiny_corpus[1][SPEEDRUN]["license"]
    assert metadata["media_url"] == f"{site.url}/media/{SPEEDRUN}.mp4"


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
    status, headers, body = raw_request(site.url, f"/media/{SPEEDRUN}.mp4", method="HEAD")
    assert status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert int(headers["Content-Length"]) == site.file_path(SPEEDRUN).stat().st_size
    assert headers["Accept-Ranges"] == "bytes"
    assert body == b""


def test_media_range_gives_206_with_those_bytes(site):
    """A byte range gives 206, a Content-Range and exactly those bytes."""
    data = site.file_path(SPEEDRUN).read_bytes()
    status, headers, body = raw_request(site.url, f"/media/{SPEEDRUN}.mp4", headers={"Range": "bytes=100-199"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert body == data[100:200]


def test_media_suffix_range_gives_the_last_bytes(site):
    """A suffix range (bytes=-N) gives the file's last N bytes."""
    data = site.file_path(SPEEDRUN).read_bytes()
    status, _, body = raw_request(site.url, f"/media/{SPEEDRUN}.mp4", headers={"Range": "bytes=-10"})
    assert (status, body) == (206, data[-10:])


def test_media_range_past_the_end_gives_416(site):
    """A range starting past the end is 416 with the size in Content-Range."""
    size = site.file_path(SPEEDRUN).stat().st_size
    status, headers, _ = raw_request(site.url, f"/media/{SPEEDRUN}.mp4", headers={"Range": f"bytes={size}-"})
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
    status, _, _ = raw_request(site.url, path)
    assert status == 404


def test_unknown_video_id_gets_404(site):
    """A well-formed id the catalog does not list is 404 on every route."""
    for path in ["/watch/nosuchvideo", "/media/nosuchvideo.mp4", "/api/videos/nosuchvideo.json"]:
        assert raw_request(site.url, path)[0] == 404


def test_request_count_counts_media_requests_only(tiny_corpus, tmp_path):
    """GET and HEAD on the media URL count; the watch page does not."""
    with VideoSite(tiny_corpus[0]) as own_site:
        raw_request(own_site.url, f"/watch/{UNBOXING}")
        raw_request(own_site.url, f"/media/{UNBOXING}.mp4")
        raw_request(own_site.url, f"/media/{UNBOXING}.mp4", method="HEAD")
        assert own_site.request_count(UNBOXING) == 2
        assert own_site.request_count(SPEEDRUN) == 0


# --- construction and CLI -----------------------------------------------------------------


def test_catalog_file_outside_videos_is_rejected(tiny_corpus, tmp_path):
    """A catalog entry whose file points outside videos/ (e.g. at a truth file) is refused."""
    entry = dict(next(iter(tiny_corpus[1].values())), file=f"videos/../truth/{SPEEDRUN}.json")
    (tmp_path / "videos").mkdir()
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / f"{SPEEDRUN}.json").write_text("{}")
    (tmp_path / "catalog.json").write_text(json.dumps({"version": 1, "videos": [entry]}))
    with pytest.raises(CatalogError, match="not an .mp4 under videos/"):
        VideoSite(tmp_path)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_urls_serves_and_stops_on_a_signal(tiny_corpus, stop):
    """`main` prints the base and search URLs, serves the feed, and exits 0 on Ctrl-C or
    SIGTERM, also when started with SIGINT ignored (a background job of a script)."""
    code = "import sys, world.site; sys.exit(world.site.main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, "--corpus", str(tiny_corpus[0]), "--fault", f"{SPEEDRUN}=status:503"]
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=ignore_sigint)
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
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
