"""Test-only helpers for the offline world: a tiny corpus and a client for the local site.

`write_tiny_corpus(root)` (or the module-scoped fixture `tiny_corpus`) makes `catalog.json`,
`videos/<id>.mp4` (2 s of an ffmpeg test pattern, 640x360, 30 fps, H.264) and
`truth/<id>.json` for three videos: two platformer uploads and one off-topic upload, with ids
`tiny_video_id("speedrun" | "playthrough" | "unboxing")`. It serves tests of code that reads
a corpus (the site, ingestion) without waiting for the full generator.

`ydl_options`, `ydl_download`, `raw_request`, `sha256_of` and `ffprobe_ok` are what the site
tests use to drive it with the real yt-dlp, http.client and ffprobe.
"""

import base64
import hashlib
import http.client
import json
import pathlib
import subprocess

import pytest
import yt_dlp

TINY_VIDEOS = (
    {
        "key": "speedrun",
        "title": "Pixel Hopper world 1-2 speedrun (any%)",
        "description": "A fast run through world 1-2 of a retro platformer, no deaths.",
        "uploader": "RetroRunner",
        "on_topic": True,
        "pattern": "testsrc",
    },
    {
        "key": "playthrough",
        "title": "Cloud Kingdom full playthrough part 3",
        "description": "Jumping over gaps and stomping enemies in a side-scrolling platformer.",
        "uploader": "LetsPlayLena",
        "on_topic": True,
        "pattern": "testsrc2",
    },
    {
        "key": "unboxing",
        "title": "Unboxing my new blender",
        "description": "Kitchen gadget unboxing and first impressions.",
        "uploader": "GadgetGuy",
        "on_topic": False,
        "pattern": "smptebars",
    },
)
DURATION_S = 2
FPS = 30
WIDTH, HEIGHT = 640, 360


def tiny_video_id(key: str) -> str:
    """An 11-character YouTube-like id, deterministic from `key`."""
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())[:11].decode()


def write_tiny_corpus(root: pathlib.Path) -> list[dict]:
    """Write the tiny corpus under `root` and return its catalog entries."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "truth").mkdir(exist_ok=True)
    entries = []
    for video in TINY_VIDEOS:
        video_id = tiny_video_id(video["key"])
        path = root / "videos" / f"{video_id}.mp4"
        _encode_test_pattern(path, video["pattern"])
        entries.append(
            {
                "id": video_id,
                "file": f"videos/{video_id}.mp4",
                "title": video["title"],
                "description": video["description"],
                "uploader": video["uploader"],
                "license": "CC-BY-4.0",
                "duration_s": float(DURATION_S),
                "width": WIDTH,
                "height": HEIGHT,
                "fps": FPS,
                "upload_date": "20240301",
            }
        )
        n_frames = DURATION_S * FPS
        truth = {
            "id": video_id,
            "on_topic": video["on_topic"],
            "fps": FPS,
            "n_frames": n_frames,
            "cuts": [],
            "segments": [
                {
                    "start_frame": 0,
                    "end_frame": n_frames,
                    "kind": "gameplay" if video["on_topic"] else "offtopic",
                    "junk": None,
                    "quality": 3,
                    "theme": None,
                    "level_seed": None,
                }
            ],
            "actions": [-1] * n_frames,
        }
        (root / "truth" / f"{video_id}.json").write_text(json.dumps(truth))
    (root / "catalog.json").write_text(json.dumps({"version": 1, "videos": entries}, indent=1))
    return entries


def _encode_test_pattern(path: pathlib.Path, pattern: str) -> None:
    source = f"{pattern}=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={DURATION_S}"
    command = [
        "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, dict]]:
    """A tiny corpus folder in the contract layout and its catalog entries by id."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    return root, {entry["id"]: entry for entry in write_tiny_corpus(root)}


def ydl_options(download_dir: pathlib.Path, **overrides) -> dict:
    """yt-dlp options for tests: quiet, direct to 127.0.0.1, short timeouts, no retries."""
    options = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "proxy": "",  # never route 127.0.0.1 through an environment proxy
        "cachedir": False,
        "socket_timeout": 2,
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "fixup": "never",
        "outtmpl": str(download_dir / "%(id)s.%(ext)s"),
    }
    return {**options, **overrides}


def ydl_download(url: str, download_dir: pathlib.Path, **overrides) -> tuple[dict, pathlib.Path]:
    """Download `url` with yt-dlp; the info dict and the downloaded file."""
    with yt_dlp.YoutubeDL(ydl_options(download_dir, **overrides)) as ydl:
        info = ydl.extract_info(url, download=True)
    return info, pathlib.Path(info["requested_downloads"][0]["filepath"])


def raw_request(base_url: str, path: str, method: str = "GET", headers: dict | None = None):
    """Send `path` exactly as written (no client-side normalisation); (status, headers, body)."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def sha256_of(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ffprobe_ok(path: pathlib.Path) -> bool:
    """Whether ffprobe reads a duration from the file without error."""
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0
