"""Generates the offline corpus: N uploads (on-topic gameplay and off-topic footage) with
their catalog metadata and ground-truth sidecars, all determined by one seed.

Layout (the corpus contract shared with world/site.py):

    <corpus_dir>/catalog.json       {"version": 1, "videos": [public metadata per upload]}
    <corpus_dir>/videos/<id>.mp4    the uploads
    <corpus_dir>/truth/<id>.json    ground truth, never served and never read by training
"""

import base64
import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
from collections.abc import Callable

import numpy as np

from schemas.config import ConfigError
from world.offtopic import TOPICS
from world.themes import THEME_NAMES
from world.timeline import VideoPlan, plan_gameplay_video, plan_offtopic_video
from world.video import check_upload_format, render_video
from world.vocabulary import LICENSES, gameplay_metadata, offtopic_metadata

CATALOG_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """How big and how shaped the generated corpus is."""

    seed: int = 0  # everything (ids, levels, titles) follows from it
    videos: int = 8  # uploads in all
    offtopic: int = 2  # how many of them are off-topic
    min_duration_s: float = 20.0  # each upload's target length is drawn from [min, max]
    max_duration_s: float = 40.0
    width: int = 640  # upload frame size, 16:9, at least 640x360
    height: int = 360
    fps: int = 30  # 30 or 60
    crf: int = 23  # x264 quality (lower is better and bigger)
    preset: str = "superfast"  # x264 speed preset
    # The looks gameplay is drawn in (world/themes.py; DARK_THEMES are the black-background ones).
    themes: tuple[str, ...] = THEME_NAMES

    def __post_init__(self):
        unknown = sorted(set(self.themes) - set(THEME_NAMES))
        if len(set(self.themes)) < 2 or unknown:
            raise ConfigError(f"need at least two of {', '.join(THEME_NAMES)}, got {list(self.themes)}", key="themes")
        if self.videos < 1 or not 0 <= self.offtopic <= self.videos:
            raise ConfigError(f"need videos >= 1 and 0 <= offtopic <= videos, got {self.videos}, {self.offtopic}")
        if not 2.0 <= self.min_duration_s <= self.max_duration_s:
            raise ConfigError(f"need 2 <= min_duration_s <= max_duration_s, got {self.min_duration_s}, {self.max_duration_s}")
        try:
            check_upload_format(self.width, self.height, self.fps)
        except ValueError as error:
            raise ConfigError(str(error)) from None


def video_id(seed: int, index: int) -> str:
    """An 11-character YouTube-like id ([A-Za-z0-9_-]) for the index-th upload of a corpus."""
    digest = hashlib.sha256(f"world-corpus:{seed}:{index}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:8]).decode()[:11]


@dataclasses.dataclass(frozen=True)
class Upload:
    """One planned upload: its plan and its public metadata."""

    plan: VideoPlan
    entry: dict  # the catalog entry


def plan_corpus(config: CorpusConfig) -> list[Upload]:
    """Plans every upload (cheap: no pixels yet). Off-topic ones sit at seeded positions."""
    rng = np.random.default_rng([config.seed, 0xC0C0])
    offtopic_slots = set(rng.choice(config.videos, size=config.offtopic, replace=False).tolist())
    uploads = []
    for index in range(config.videos):
        identifier = video_id(config.seed, index)
        video_rng = np.random.default_rng([config.seed, index, 0x7D])
        duration = float(video_rng.uniform(config.min_duration_s, config.max_duration_s))
        plan_seed = int(video_rng.integers(2**31))
        if index in offtopic_slots:
            topic = str(video_rng.choice(TOPICS))
            plan = plan_offtopic_video(identifier, plan_seed, config.fps, duration, topic)
            metadata = offtopic_metadata(topic, video_rng)
        else:
            plan = plan_gameplay_video(identifier, plan_seed, config.fps, duration, config.themes)
            metadata = gameplay_metadata(plan, video_rng)
        day = datetime.date(2015, 1, 1) + datetime.timedelta(days=int(video_rng.integers(3650)))
        entry = {
            "id": identifier, "file": f"videos/{identifier}.mp4", **metadata,
            "license": str(video_rng.choice(LICENSES)), "duration_s": round(plan.n_frames / config.fps, 3),
            "width": config.width, "height": config.height, "fps": config.fps,
            "upload_date": day.strftime("%Y%m%d"),
        }
        uploads.append(Upload(plan, entry))
    return uploads


def _write_json(path: pathlib.Path, data: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(partial, path)


def generate_corpus(config: CorpusConfig, corpus_dir: str | pathlib.Path,
                    progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Renders the corpus into `corpus_dir` and returns the catalog. Each file is written
    under a temporary name and renamed, and the catalog comes last, so a reader that finds
    catalog.json finds every file it lists."""
    corpus_dir = pathlib.Path(corpus_dir)
    (corpus_dir / "videos").mkdir(parents=True, exist_ok=True)
    (corpus_dir / "truth").mkdir(parents=True, exist_ok=True)
    uploads = plan_corpus(config)
    for number, upload in enumerate(uploads, 1):
        truth = render_video(upload.plan, corpus_dir / upload.entry["file"],
                             config.width, config.height, config.crf, config.preset)
        _write_json(corpus_dir / "truth" / f"{upload.entry['id']}.json", truth)
        if progress is not None:
            progress(number, len(uploads), upload.entry)
    catalog = {"version": CATALOG_VERSION, "videos": [upload.entry for upload in uploads]}
    _write_json(corpus_dir / "catalog.json", catalog)
    return catalog
