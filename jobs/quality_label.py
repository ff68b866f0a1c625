"""`genie quality label --run RUN_DIR --labels FILE`: score an ingest run's kept clips 1-5 in a
local page (127.0.0.1), one key press per clip, into a labels file (schemas/labels.py).

    genie quality label --run out/ingest --labels labels.parquet --labeller ana
    # open the printed URL; keys 1-5 score the clip shown, Space skips it, Backspace (or U) undoes

Built for about 1,000 clips an hour (3.6 s a clip): the clip plays at `--speed` times real time
(4x: a 16 s clip in 4 s) above a strip of stills from across the clip, so most clips are judged
at a glance; a key press moves on at once, to a clip the page has already loaded (the next
few are fetched ahead); no click is ever needed. The page never waits for the server: labels
are sent in order behind the scenes.

The clips are the run's kept clips (its manifest), in an order fixed by their ids (a hash, so
neighbours come from different videos); each is read from its shard at the manifest's offset
through the shard reader and served as its PNG frame strip. Every label is in the labels file,
durably (written atomically and fsynced), before the page hears it was saved: killing the server
loses nothing. Labelling again resumes: clips already in the file are not shown again, and a
clip scored twice keeps its latest score. Skips last for the session only.
"""

import argparse
import dataclasses
import getpass
import hashlib
import threading

import pyarrow.fs as pafs

from pages.server import HttpError, Page, PageServer, Request, Response, static_folder
from release.inputs import check_run, kept_clip_batches, shard_location
from release.shard_io import open_input, read_sample_at
from schemas.ids import check_clip_id
from schemas.labels import SCORE_MAX, SCORE_MIN, label_row, read_labels, write_labels
from schemas.shard import FRAME_HEIGHT, FRAME_WIDTH, FRAMES_FIELD, META_FIELD, decode_meta
from schemas.shard_io import ShardError, png_size, resolve

PRELOAD = 6  # clips the page fetches ahead of the one shown


@dataclasses.dataclass(frozen=True)
class ClipToLabel:
    clip_id: str
    video_id: str
    shard: str  # its location (path or URI)
    offset: int
    n_frames: int


def clips_to_label(run: str) -> list[ClipToLabel]:
    """The run's kept clips in labelling order: by a hash of the clip id (stable, mixed videos)."""
    check_run(run)
    columns = ["clip_id", "video_id", "shard", "shard_offset", "n_frames"]
    clips = [ClipToLabel(check_clip_id(row["clip_id"]), row["video_id"], shard_location(run, row["shard"]),
                         row["shard_offset"], row["n_frames"])
             for batch in kept_clip_batches(run, columns) for row in batch.to_pylist()]  # fmt: skip
    return sorted(clips, key=lambda clip: hashlib.sha1(clip.clip_id.encode()).digest())


def frame_strip(clip: ClipToLabel) -> bytes:
    """The clip's frames as its shard's PNG strip (160 x 90*T), checked against its metadata."""
    with open_input(clip.shard) as file:
        sample = read_sample_at(file, clip.offset, clip.shard)
    meta = decode_meta(sample.get(META_FIELD, b""))
    if sample["__key__"] != clip.clip_id or meta["clip_id"] != clip.clip_id:
        raise ShardError(f"{clip.shard}@{clip.offset} holds {sample['__key__']!r}, not clip {clip.clip_id!r}")
    strip = sample.get(FRAMES_FIELD, b"")
    if png_size(strip, FRAMES_FIELD) != (FRAME_WIDTH, FRAME_HEIGHT * meta["n_frames"]):
        raise ShardError(f"clip {clip.clip_id}: frame strip is not {meta['n_frames']} frames of {FRAME_WIDTH}x{FRAME_HEIGHT}")
    return strip


class LabelSession:
    """One person labelling one run into one labels file. Thread-safe; every change is written
    to the labels file before it returns."""

    def __init__(self, clips: list[ClipToLabel], labels_path: str, labeller: str) -> None:
        self.clips = clips
        self.by_id = {clip.clip_id: clip for clip in clips}
        self.labels_path = labels_path
        self.labeller = labeller
        if not labeller.strip():
            raise ValueError("the labeller's name is empty")
        filesystem, path = resolve(labels_path)
        exists = filesystem.get_file_info(path).type != pafs.FileType.NotFound
        self.labels = {row["clip_id"]: row for row in read_labels(labels_path).to_pylist()} if exists else {}
        self.skipped: set[str] = set()
        self.history: list[tuple[str, str, dict | None]] = []  # (action, clip id, the label it replaced)
        self.lock = threading.Lock()

    def state(self) -> dict:
        with self.lock:
            return self._state()

    def _state(self) -> dict:
        waiting = [clip for clip in self.clips if clip.clip_id not in self.labels and clip.clip_id not in self.skipped]
        shown = [{"clip_id": clip.clip_id, "video_id": clip.video_id, "n_frames": clip.n_frames}
                 for clip in waiting[: PRELOAD + 1]]  # fmt: skip
        labelled = sum(1 for clip in self.clips if clip.clip_id in self.labels)
        last = self.history[-1] if self.history else None
        return {"total": len(self.clips), "labelled": labelled, "skipped": len(self.skipped),
                "clips": shown, "last": last and {"action": last[0], "clip_id": last[1]},
                "labeller": self.labeller, "scores": [SCORE_MIN, SCORE_MAX]}  # fmt: skip

    def label(self, clip_id, score) -> dict:
        clip = self._clip(clip_id)
        with self.lock:
            row = label_row(clip.clip_id, score, self.labeller, clip.video_id)
            previous = self.labels.get(clip.clip_id)
            self._save({**self.labels, clip.clip_id: row})
            self.skipped.discard(clip.clip_id)
            self.history.append(("label", clip.clip_id, previous))
            return self._state()

    def skip(self, clip_id) -> dict:
        clip = self._clip(clip_id)
        with self.lock:
            if clip.clip_id not in self.skipped:
                self.skipped.add(clip.clip_id)
                self.history.append(("skip", clip.clip_id, None))
            return self._state()

    def undo(self) -> dict:
        """Take back the last label or skip of this session; its clip is shown again."""
        with self.lock:
            if not self.history:
                raise HttpError(409, "nothing to undo")
            action, clip_id, previous = self.history[-1]
            if action == "label":
                labels = {**self.labels}
                if previous is None:
                    del labels[clip_id]
                else:
                    labels[clip_id] = previous
                self._save(labels)
            else:
                self.skipped.discard(clip_id)
            self.history.pop()
            return self._state()

    def strip(self, clip_id) -> bytes:
        try:
            return frame_strip(self._clip(clip_id))
        except (ShardError, OSError) as error:
            raise HttpError(422, f"clip {clip_id} cannot be read from its shard: {error}") from None

    def _clip(self, clip_id) -> ClipToLabel:
        clip = self.by_id.get(clip_id) if isinstance(clip_id, str) else None
        if clip is None:
            raise HttpError(404, f"{str(clip_id)[:80]!r} is not a kept clip of this run")
        return clip

    def _save(self, labels: dict[str, dict]) -> None:
        write_labels(self.labels_path, labels.values())
        self.labels = labels


def label_page(session: LabelSession) -> Page:
    """The labelling page's routes over a session."""

    def field(request: Request, name: str):
        return request.body.get(name) if isinstance(request.body, dict) else None

    def score(request: Request):
        value = field(request, "score")
        if isinstance(value, bool) or not isinstance(value, int) or not SCORE_MIN <= value <= SCORE_MAX:
            raise HttpError(400, f"score must be an integer in {SCORE_MIN}..{SCORE_MAX}, got {value!r}")
        return value

    routes = {
        ("GET", "/api/state"): lambda request: session.state(),
        ("GET", "/api/clip"): lambda request: Response(session.strip(request.query.get("id")), "image/png"),
        ("POST", "/api/label"): lambda request: session.label(field(request, "clip_id"), score(request)),
        ("POST", "/api/skip"): lambda request: session.skip(field(request, "clip_id")),
        ("POST", "/api/undo"): lambda request: session.undo(),
    }
    return Page(static_folder("label"), routes, title="label")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie quality label", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="an ingest run's output folder (path or URI)")
    parser.add_argument("--labels", required=True, help="the labels file (Parquet) to write; resumed if it exists")
    parser.add_argument("--labeller", default=getpass.getuser(), help="who is labelling (default: the login name)")
    parser.add_argument("--port", type=int, default=8772, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--speed", type=float, default=4.0, help="playback speed, times real time (default 4)")
    options = parser.parse_args(argv)
    if not 0.25 <= options.speed <= 16:
        parser.error("--speed must be within 0.25..16")
    try:
        clips = clips_to_label(options.run)
    except ValueError as error:  # InputError, or a manifest row that is not a clip id
        parser.error(str(error))
    if not clips:
        parser.error(f"{options.run} has no kept clips to label")
    try:
        session = LabelSession(clips, options.labels, options.labeller)
    except ValueError as error:  # an existing labels file that is not one (SchemaError), an empty name
        parser.error(str(error))
    server = PageServer(label_page(session), port=options.port)
    print(f"label {len(clips)} clips at {server.url}?speed={options.speed:g} (Ctrl-C stops; every label is saved as it is given)",
          flush=True)
    server.serve_until_interrupted()
    return 0
