"""Stage: a downloaded video -> clips in shards and its lineage parts, in one streaming pass.

Per video: probe -> one ffmpeg decode (pipeline/decode.py) whose small frames feed scene
detection (pipeline/scenes.py) and whose 10 FPS samples feed the clip assembler
(pipeline/clips.py) -> each finished clip is scored (pipeline/quality.py) and, if kept,
encoded by the shard spec and appended to the video's shards (pipeline/shards.py) -> shards
renamed into place -> lineage parts written (pipeline/lineage.py), the video part last.

These steps run fused, in one worker, because a clip's frames are the bulk of the data: they
never leave the process that decoded them, and at most one clip's frames are held at a time,
whatever the video's length. The split is one-to-many (a video into clips); clip rows carry
their parent's `video_id`.

With `defer_learned`, a learned scorer is not run here (so it can run batched, on a GPU, in a
stage of its own): each clip the other scorers keep is encoded and held as pending (its sample
bytes and the model's small input, `PendingClips`), and the video row comes out with its
`clips` and nothing written; `write_pending` (after the learned verdicts) writes the kept
samples and the lineage parts.

Rows in: video rows from the download stage (`path` set when ok). Rows out: the same videos,
ok with width/height/fps/n_frames/scene_spans/n_clips, dropped (too long, frame rate under
10, a playlist rather than a video) or failed (unreadable, decode error, or any other
exception: one video never stops the job), each with `timings` (CPU seconds per step, and
`worker_s`, the worker process's own CPU for the video) and `source_s` (seconds decoded). A video that is ok or dropped is finished: its parts
are written and a rerun skips it. A failed one is not: a rerun tries it again.
"""

import dataclasses
import functools
import io
import os
import pathlib
import resource
import time
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline import lineage
from pipeline.clips import ClipAssembler, ClipConfig
from pipeline.decode import DecodeConfig, DecodeError, FrameStreams, geometry
from pipeline.probe import NotAVideo, ProbeError, probe
from models.quality_frames import model_frames
from pipeline.quality import HeuristicScorer, QualityConfig, QualityFilter, content, judge, make_scorers, read_model_input
from pipeline.rows import Batch, dropped, failed, is_ok, ok, to_batch, to_rows
from pipeline.scenes import SceneConfig, SceneCuts
from pipeline.shards import ShardConfig, VideoShardWriter
from schemas.shard import FRAME_HEIGHT, FRAME_RATE, FRAME_WIDTH, encode_sample, with_meta

STAGE = "split"
SHARDS = "shards"


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Decoding, scene detection and clip cutting."""

    decode: DecodeConfig = DecodeConfig()
    scenes: SceneConfig = SceneConfig()
    clips: ClipConfig = ClipConfig()
    # Videos longer than this (by the file, not the site's word) are dropped.
    max_duration_s: float = 4 * 3600.0


class ProcessVideo:
    """Stage: downloaded video rows -> finished video rows; clips go to shards and parts."""

    def __init__(
        self,
        split: SplitConfig,
        quality: QualityConfig,
        shards: ShardConfig,
        output_dir: str | os.PathLike,
        pipeline_version: str,
        defer_learned: bool = False,
    ) -> None:
        self.split = split
        self.deferred = read_model_input(quality.learned) if defer_learned and quality.uses_learned else None
        if self.deferred is None:
            self.quality = QualityFilter(make_scorers(quality))
        else:  # only the heuristic (if configured) runs here
            self.quality = QualityFilter([HeuristicScorer(quality.heuristic)] if quality.scorer.startswith("heuristic") else [])
        self.shards = shards
        self.output_dir = pathlib.Path(output_dir)
        self.pipeline_version = pipeline_version

    def __call__(self, batch: Mapping[str, Sequence]) -> Batch:
        rows = [self.process(row) for row in to_rows(batch)]
        names = dict.fromkeys(name for row in rows for name in row)  # ok, dropped and failed rows fill different columns
        return to_batch([{name: row.get(name) for name in names} for row in rows], columns=[*batch, "timings", "source_s"])

    def process(self, video: Mapping) -> dict:
        """One video through every step; its finished row, an error row whatever goes wrong."""
        start = _own_cpu_s()
        try:
            row = self._process(video)
        except Exception as error:  # noqa: BLE001 - a bug or a surprise in one video is that video's error
            reason = f"internal: {type(error).__name__}: {error}"[:500]
            row = {**failed(video, STAGE, reason), "timings": dict(video.get("timings") or {}), "source_s": 0.0}
        row["timings"]["worker_s"] = _own_cpu_s() - start  # all threads: steps, pipes, lineage
        return row

    def _process(self, video: Mapping) -> dict:
        timings: dict[str, float] = dict(video.get("timings") or {})
        if not is_ok(video):
            return {**video, "timings": timings, "source_s": 0.0}
        clock, children = time.thread_time(), _children_cpu_s()
        try:
            info = probe(video["path"])
        except NotAVideo as error:
            row = dropped(video, "probe", f"not_a_video: {error}", pipeline_version=self.pipeline_version)
            self._finish(row, [])
            return {**row, "timings": timings, "source_s": 0.0}
        except ProbeError as error:
            return {**failed(video, "probe", f"unreadable: {error}"), "timings": timings, "source_s": 0.0}
        finally:
            timings["probe_s"] = time.thread_time() - clock + _children_cpu_s() - children
        described = {
            **video,
            "width": info.width,
            "height": info.height,
            "fps": float(info.fps),
            "pipeline_version": self.pipeline_version,
        }
        if info.duration_s > self.split.max_duration_s:
            row = dropped(described, "probe", f"too_long: {info.duration_s:.0f} s > {self.split.max_duration_s:.0f} s")
        elif info.fps < FRAME_RATE:
            row = dropped(described, "probe", f"low_frame_rate: {float(info.fps):.2f} fps < {FRAME_RATE}")
        else:
            row = None
        if row is not None:
            self._finish(row, [])
            return {**row, "timings": timings, "source_s": 0.0}
        writer = VideoShardWriter(self.output_dir / SHARDS, video["video_id"], self.shards)
        pending = PendingClips() if self.deferred is not None else None
        try:
            row, clips = self._split(described, info, writer, pending, timings)
        except Exception as error:
            writer.discard()
            if not isinstance(error, (DecodeError, OSError)):
                raise
            reason = str(error) if isinstance(error, DecodeError) else f"decode_failed: {error}"
            return {**failed(described, "decode", reason), "timings": timings, "source_s": 0.0}
        source_s = row["n_frames"] / float(info.fps)
        if pending is not None:
            return {**row, "clips": clips, "pending": pending.to_bytes(), "timings": timings, "source_s": source_s}
        self._finish(row, clips)
        return {**row, "timings": timings, "source_s": source_s}

    def _split(self, video: dict, info, writer: VideoShardWriter, pending: "PendingClips | None",
               timings: dict) -> tuple[dict, list[dict]]:
        placed = geometry(info, self.split.decode.aspect)
        box = None  # where the source lies inside a padded frame; the scorers judge only that
        if placed.x > 0 or placed.y > 0:
            box = (max(0, placed.x), max(0, placed.y), min(FRAME_WIDTH, placed.scaled_width), min(FRAME_HEIGHT, placed.scaled_height))
        cuts = SceneCuts(self.split.scenes, info.fps)
        assembler = ClipAssembler(video["video_id"], info.fps, self.split.clips)
        clips: list[dict] = []
        spent = {"detect_s": 0.0, "quality_s": 0.0, "write_s": 0.0}
        keep_or_drop = functools.partial(self._keep_or_drop, box=box, writer=writer, pending=pending, spent=spent)
        n_frames = 0
        with FrameStreams(video["path"], info, self.split.decode) as streams:
            for chunk in streams.detection_chunks():
                clock = time.thread_time()
                n_frames += len(chunk)
                assembler.add_cuts(cuts.push(chunk))
                finished = assembler.add_samples(streams.samples_before(cuts.decided_before))
                spent["detect_s"] += time.thread_time() - clock
                clips.extend(keep_or_drop(clip, frames) for clip, frames in finished)
            streams.finish()
            timings["decode_s"] = streams.cpu_s
            _check_complete(n_frames, info, streams.stderr_tail())
            clock = time.thread_time()
            assembler.add_cuts(cuts.finish())
            finished = assembler.add_samples(streams.remaining_samples()) + assembler.finish(n_frames)
            spent["detect_s"] += time.thread_time() - clock
            clips.extend(keep_or_drop(clip, frames) for clip, frames in finished)
        clock = time.thread_time()
        placements = writer.commit()
        for clip in clips:
            placement = placements.get(clip["clip_id"])
            if placement is not None:
                clip.update(shard=placement.shard, shard_index=placement.index, shard_offset=placement.offset)
        spent["write_s"] += time.thread_time() - clock
        timings.update(spent)
        row = ok(
            video,
            stage=STAGE,
            n_frames=n_frames,
            scene_spans=[scene.span(info.fps) for scene in assembler.scenes],
            n_clips=len(clips),
        )
        return row, clips

    def _keep_or_drop(self, clip: dict, frames: np.ndarray | None, box, writer: VideoShardWriter,
                      pending: "PendingClips | None", spent: dict) -> dict:
        """Score a clip and, if kept, write it (or hold it pending); its manifest row (placement
        filled in later)."""
        clip = {**clip, "quality_score": None, "quality_scorer": None, "quality_scores": None,
                "embedding": None, "pipeline_version": self.pipeline_version}  # fmt: skip
        if frames is None:
            return clip
        clock = time.thread_time()
        clip = to_rows(self.quality(to_batch([{**clip, "frames": frames, "content_box": box}])))[0]
        del clip["frames"], clip["content_box"]
        spent["quality_s"] += time.thread_time() - clock
        if not is_ok(clip):
            return clip
        clock = time.thread_time()
        meta = {
            name: clip[name]
            for name in ("clip_id", "video_id", "scene_index", "start_frame", "end_frame", "start_s", "end_s",
                         "n_frames", "quality_score", "pipeline_version")
        }  # fmt: skip
        meta.update(fps=FRAME_RATE, width=FRAME_WIDTH, height=FRAME_HEIGHT)
        if pending is None:
            writer.write(encode_sample(frames, meta), clip["start_frame"], clip["end_frame"])
        else:
            pending.add(clip["clip_id"], encode_sample(frames, meta), model_frames(content(frames, box), self.deferred))
        spent["write_s"] += time.thread_time() - clock
        return clip

    def write_pending(self, video: dict, pending: "PendingClips") -> dict:
        """A deferred video's row (with `clips` judged by every scorer) -> its finished row: the
        kept clips' samples written to shards, the lineage parts written. An error row if
        writing fails."""
        clock = time.thread_time()
        row = {name: value for name, value in video.items() if name not in ("clips", "pending")}
        writer = VideoShardWriter(self.output_dir / SHARDS, video["video_id"], self.shards)
        clips = [dict(clip) for clip in video["clips"]]
        try:
            for clip in clips:
                if is_ok(clip):
                    sample = with_meta(pending.sample(clip["clip_id"]), quality_score=clip["quality_score"])
                    writer.write(sample, clip["start_frame"], clip["end_frame"])
            placements = writer.commit()
        except Exception as error:  # noqa: BLE001 - one video's failure is that video's error row
            writer.discard()
            return {**failed(row, "shards", f"internal: {type(error).__name__}: {error}"[:500]), "source_s": 0.0}
        for clip in clips:
            placement = placements.get(clip["clip_id"])
            if placement is not None:
                clip.update(shard=placement.shard, shard_index=placement.index, shard_offset=placement.offset)
        self._finish(row, clips)
        timings = {**row["timings"], "write_s": row["timings"].get("write_s", 0.0) + time.thread_time() - clock}
        return {**row, "timings": timings}

    def _finish(self, video: dict, clips: list[dict]) -> None:
        stamp = lineage.now()
        lineage.write_parts(
            self.output_dir,
            {**video, "created_at": stamp, "updated_at": stamp},
            [{**clip, "created_at": stamp} for clip in clips],
        )


class PendingClips:
    """A deferred video's kept clips between processes: each clip's encoded sample and the
    learned scorer's input, as one .npz (numpy arrays only: nothing is pickled)."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.arrays = dict(arrays or {})

    def add(self, clip_id: str, sample: dict, prepared: np.ndarray) -> None:
        for field, value in sample.items():
            data = value.encode() if isinstance(value, str) else value
            self.arrays[f"{clip_id}/sample/{field}"] = np.frombuffer(data, np.uint8)
        self.arrays[f"{clip_id}/prepared"] = prepared

    def prepared(self, clip_id: str) -> np.ndarray:
        return self.arrays[f"{clip_id}/prepared"]

    def sample(self, clip_id: str) -> dict:
        prefix = f"{clip_id}/sample/"
        sample = {name.removeprefix(prefix): array.tobytes() for name, array in self.arrays.items() if name.startswith(prefix)}
        return {**sample, "__key__": sample["__key__"].decode()}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "PendingClips":
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return cls({name: archive[name] for name in archive.files})


def score_pending(scorer, videos: Sequence[dict], pendings: Sequence["PendingClips | None"]) -> list[dict]:
    """Deferred video rows (with `clips`; a row without is passed through) after a learned
    scorer judged all their kept clips in one batch: each judged clip gets its verdict and its
    `embedding` (a list), each video its share of the scoring CPU as `timings["learned_s"]`."""
    clock = time.thread_time()
    inputs = [pending.prepared(clip["clip_id"]) for video, pending in zip(videos, pendings) if "clips" in video
              for clip in video["clips"] if is_ok(clip)]  # fmt: skip
    verdicts = iter(scorer.score_prepared(inputs) if inputs else [])
    per_clip = (time.thread_time() - clock) / max(1, len(inputs))
    judged = []
    for video in videos:
        if "clips" not in video:
            judged.append(video)
            continue
        count = sum(1 for clip in video["clips"] if is_ok(clip))
        clips = judge(video["clips"], scorer.name, [next(verdicts) for _ in range(count)])
        clips = [{**clip, "embedding": None if clip["embedding"] is None else np.asarray(clip["embedding"]).tolist()}
                 for clip in clips]  # fmt: skip
        judged.append({**video, "clips": clips, "timings": {**video["timings"], "learned_s": per_clip * count}})
    return judged


def _check_complete(n_frames: int, info, stderr_tail: str) -> None:
    """DecodeError if ffmpeg decoded clearly fewer frames than the stream holds: it skips what
    it cannot decode and still exits 0, which would shift every later frame's time."""
    expected = round(info.duration_s * float(info.fps))
    if n_frames < expected - max(2, expected // 100):
        raise DecodeError(f"decode_incomplete: {n_frames} of {expected} frames decoded ({stderr_tail or 'no error text'})")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (ffprobe, once it has been waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
