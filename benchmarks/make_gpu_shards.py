"""Builds the shard folders the GPU tokenizer benchmark trains and evaluates on.

    .venv/bin/python benchmarks/make_gpu_shards.py OUT [--world-videos 6] [--world-corpus DIR]

writes, in the clip shard format (schemas/shard.py, WebDataset tars):

    OUT/train/*.tar            SMB levels and offline-world levels to train on
    OUT/heldout/smb/*.tar      SMB levels the tokenizer never sees
    OUT/heldout/world/*.tar    offline-world levels it never sees
    OUT/manifest.json          which source, level and span went where

Frames are made the way ingest makes them: ffmpeg at 10 FPS, scaled to fit 160x90 and
padded (SMB's 256x240 becomes a pillarboxed 96x90). Clips are 16 s (160 frames), and a
video's tail becomes a shorter clip if it has >= 32 frames. Offline-world videos come from
`genie world corpus` (generated from a fixed seed in a temporary folder unless
--world-corpus names one); gameplay segments are used, plain or letterboxed (not those with
a face-cam overlay), a second trimmed off each end, and split by level seed. The default
sizes keep the whole folder under ~40 MB, small enough to carry to a GPU machine.
"""

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas import ids, shard  # noqa: E402
from schemas.shard_io import AtomicFile, ShardWriter  # noqa: E402

SMB_DIR = ROOT.parent / "shared" / "corpus" / "smb"
HELDOUT_SMB = ("smb_1_3", "smb_2_2", "smb_3_4", "smb_4_1")  # one level of each world
WORLD_SEED = 7
USABLE_JUNK = (None, "letterbox")  # gameplay with a face-cam overlay is left out
CLIP_FRAMES = 160
MIN_CLIP_FRAMES = 32
FIT_160X90 = (f"scale={shard.FRAME_WIDTH}:{shard.FRAME_HEIGHT}:force_original_aspect_ratio=decrease:flags=area,"
              f"pad={shard.FRAME_WIDTH}:{shard.FRAME_HEIGHT}:(ow-iw)/2:(oh-ih)/2:color=black")


def source_fps(path: pathlib.Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    numerator, denominator = out.split("/")
    return int(numerator) / int(denominator)


def decode(path: pathlib.Path, start_s: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """(n, 90, 160, 3) uint8 RGB frames at 10 FPS, fitted to 160x90 with black padding."""
    args = ["ffmpeg", "-v", "error", "-ss", f"{start_s:.3f}", "-i", str(path)]
    if seconds is not None:
        args += ["-t", f"{seconds:.3f}"]
    args += ["-vf", f"fps={shard.FRAME_RATE},{FIT_160X90}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(args, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, shard.FRAME_HEIGHT, shard.FRAME_WIDTH, 3)


def clip_samples(frames: np.ndarray, video_id: str, start_s: float, fps: float, scene_index: int = 0) -> list[dict]:
    """WebDataset samples of up to 160 frames each; a tail shorter than 32 frames is dropped."""
    samples = []
    for first in range(0, len(frames), CLIP_FRAMES):
        clip = frames[first : first + CLIP_FRAMES]
        if len(clip) < MIN_CLIP_FRAMES:
            break
        begin_s, end_s = start_s + first / shard.FRAME_RATE, start_s + (first + len(clip)) / shard.FRAME_RATE
        start_frame, end_frame = round(begin_s * fps), round(end_s * fps)
        meta = {"clip_id": ids.clip_id(video_id, start_frame, end_frame), "video_id": video_id,
                "scene_index": scene_index, "start_frame": start_frame, "end_frame": end_frame,
                "start_s": begin_s, "end_s": end_s, "n_frames": len(clip), "fps": shard.FRAME_RATE,
                "width": shard.FRAME_WIDTH, "height": shard.FRAME_HEIGHT, "quality_score": None,
                "pipeline_version": "make_gpu_shards"}
        samples.append(shard.encode_sample(np.ascontiguousarray(clip), meta))
    return samples


def write_shards(samples: list[dict], folder: pathlib.Path, prefix: str, clips_per_shard: int = 4) -> list[str]:
    """Tar shards (WebDataset layout) of `clips_per_shard` samples each, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(0, len(samples), clips_per_shard):
        path = folder / f"{prefix}-{index // clips_per_shard:06d}.tar"
        _write_tar(path, samples[index : index + clips_per_shard])
        names.append(path.name)
    return names


def _write_tar(path: pathlib.Path, samples: list[dict]) -> None:
    with AtomicFile(path) as target, ShardWriter(target.file) as archive:
        for sample in samples:
            archive.write(sample)


def smb_samples(smb_dir: pathlib.Path, levels: list[str], seconds: float | None) -> tuple[list[dict], list[dict]]:
    samples, manifest = [], []
    for level in levels:
        path = smb_dir / f"{level}.mp4"
        fps = source_fps(path)
        level_samples = clip_samples(decode(path, 0.0, seconds), f"smb:{level}", 0.0, fps)
        samples += level_samples
        manifest += [{"clip_id": s["__key__"], "source": f"smb:{level}", "level": level} for s in level_samples]
    return samples, manifest


def world_samples(corpus: pathlib.Path, heldout_fraction: float) -> tuple[list[dict], list[dict], list[dict]]:
    """Clean gameplay segments of an offline-world corpus, split by level seed into (train, heldout)."""
    catalog = json.loads((corpus / "catalog.json").read_text())
    train, heldout, manifest = [], [], []
    for entry in catalog["videos"]:
        truth = json.loads((corpus / "truth" / f"{entry['id']}.json").read_text())
        fps = truth["fps"]
        for index, segment in enumerate(truth["segments"]):
            if segment["kind"] != "gameplay" or segment["junk"] not in USABLE_JUNK:
                continue
            start_s, seconds = segment["start_frame"] / fps, (segment["end_frame"] - segment["start_frame"]) / fps
            # a second off each end keeps fades and cuts out of the clips
            frames = decode(corpus / entry["file"], start_s + 1.0, max(0.0, seconds - 2.0))
            samples = clip_samples(frames, f"world:{entry['id']}", start_s + 1.0, fps, scene_index=index)
            level = int(segment["level_seed"])
            held = int(hashlib.sha1(str(level).encode()).hexdigest(), 16) % 1000 < heldout_fraction * 1000
            (heldout if held else train).extend(samples)
            manifest += [{"clip_id": s["__key__"], "source": f"world:{entry['id']}", "level": level,
                          "split": "heldout" if held else "train"} for s in samples]
    return train, heldout, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path, help="output folder (train/, heldout/smb/, heldout/world/)")
    parser.add_argument("--smb-dir", type=pathlib.Path, default=SMB_DIR)
    parser.add_argument("--heldout-smb", default=",".join(HELDOUT_SMB), help="comma-separated SMB levels to hold out")
    parser.add_argument("--smb-seconds", type=float, help="use only the first seconds of each SMB video")
    parser.add_argument("--world-corpus", type=pathlib.Path, help="an existing `genie world corpus` folder")
    parser.add_argument("--world-videos", type=int, default=20, help="videos to generate when no corpus is given (0: none)")
    parser.add_argument("--world-seconds", type=float, default=45.0, help="longest generated world video")
    parser.add_argument("--world-heldout", type=float, default=0.3, help="fraction of world levels held out")
    options = parser.parse_args(argv)

    heldout_levels = [level for level in options.heldout_smb.split(",") if level]
    all_levels = sorted(path.stem for path in options.smb_dir.glob("smb_*.mp4"))
    train, manifest = smb_samples(options.smb_dir, [l for l in all_levels if l not in heldout_levels], options.smb_seconds)
    heldout_smb, more = smb_samples(options.smb_dir, [l for l in all_levels if l in heldout_levels], options.smb_seconds)
    manifest = [m | {"split": "train"} for m in manifest] + [m | {"split": "heldout"} for m in more]

    heldout_world: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        corpus = options.world_corpus
        if corpus is None and options.world_videos:
            from world.corpus import CorpusConfig, generate_corpus

            corpus = pathlib.Path(scratch)  # deterministic from its seed, so not kept
            config = CorpusConfig(seed=WORLD_SEED, videos=options.world_videos, offtopic=0,
                                  min_duration_s=min(20.0, options.world_seconds), max_duration_s=options.world_seconds)
            generate_corpus(config, corpus)
        if corpus is not None:
            world_train, heldout_world, world_manifest = world_samples(corpus, options.world_heldout)
            train += world_train
            manifest += world_manifest

    rng = np.random.default_rng(0)
    train = [train[i] for i in rng.permutation(len(train))]  # mix sources within shards
    written = {"train": write_shards(train, options.out / "train", "train"),
               "heldout/smb": write_shards(heldout_smb, options.out / "heldout" / "smb", "smb"),
               "heldout/world": write_shards(heldout_world, options.out / "heldout" / "world", "world")}
    (options.out / "manifest.json").write_text(json.dumps({"shards": written, "clips": manifest}, indent=1))
    size = sum(path.stat().st_size for path in options.out.rglob("*.tar"))
    for split, names in written.items():
        print(f"{split:14s} {len(names):3d} shards")
    print(f"{len(train)} train clips, {len(heldout_smb)} held-out SMB clips, {len(heldout_world)} held-out world clips; "
          f"{size / 1e6:.1f} MB of shards in {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
