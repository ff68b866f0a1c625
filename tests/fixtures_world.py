"""Test-only helpers that write a tiny corpus in the shared contract layout.

`write_tiny_corpus(root)` makes `catalog.json`, `videos/<id>.mp4` (2 s of ffmpeg's testsrc,
640x360, 30 fps, H.264) and `truth/<id>.json` for three videos: two platformer uploads and
one off-topic upload. It is for tests of code that reads a corpus (the site, ingestion)
without waiting for the real generator.
"""

import base64
import hashlib
import json
import pathlib
import subprocess

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
