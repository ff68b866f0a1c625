"""Hostile inputs through the real jobs: a site serving malformed boxes, playlists pointing at
local files, oversized bodies without Content-Length and slow drips; torn lineage parts and a
second job on the same folder; shards holding PNG, JSON, .npy and tar bombs. Every input must
end as a row (or a dropped, counted sample) with a reason, the job must finish, and nothing
outside output_dir may reach a shard."""

import dataclasses
import gzip
import io
import json
import os
import pathlib
import resource
import struct
import subprocess
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import tokenize
from jobs.ingest import STATS_FILE, RaySection, default_config, run_ingest, with_site
from jobs.resources import WorkerResources
from pipeline import lineage
from pipeline.download import DownloadConfig
from pipeline.output_lock import LOCK_FILE, OutputLock, OutputLocked
from pipeline.process_video import SHARDS
from pipeline.quality import QualityConfig
from pipeline.rows import reason_code
from schemas import ids
from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.config import to_dict
from schemas.shard_io import ShardWriter, iter_samples, list_shards
from train.checkpoint import save_checkpoint
from train.components import component
from train.tokenize_clips import TokenizeConfig
from train.windows import ClipWindows, DataConfig, TokenWindows, window_loader
from world.site import Fault, VideoSite

pytestmark = pytest.mark.slow
MAX_FILE_BYTES = 600_000  # the test uploads are < 300 kB, the unsized one 913 kB


def encode(path: pathlib.Path, seconds: int = 2, source: str = "testsrc2") -> bytes:
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=size=320x180:rate=30:duration={seconds}",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(command, check=True)
    return path.read_bytes()


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def empty_mdhd_mp4() -> bytes:
    """An MP4 whose last box is an empty mdhd (it crashed the header reader once)."""
    hdlr = box(b"hdlr", bytes(8) + b"vide" + bytes(13))
    return box(b"ftyp", b"isom" + bytes(4) + b"isomiso2") + box(b"moov", box(b"trak", box(b"mdia", hdlr + box(b"mdhd"))))


@pytest.fixture(scope="module")
def world(tmp_path_factory, smb_dir):
    """A site whose catalog holds two good uploads and hostile ones, with faults; the expected
    outcome of each video; and a private file outside every output folder."""
    root = tmp_path_factory.mktemp("hostile_site")
    (root / "videos").mkdir()
    secret = tmp_path_factory.mktemp("private") / "secret.mp4"
    secret.write_bytes((smb_dir / "smb_1_1.mp4").read_bytes())
    files = {
        "good-a": encode(root / "videos" / "tmp.mp4"),
        "good-b": encode(root / "videos" / "tmp.mp4", source="testsrc"),
        "drip": encode(root / "videos" / "tmp.mp4", seconds=3),
        "no-length": (smb_dir / "smb_1_1.mp4").read_bytes(),  # over MAX_FILE_BYTES, sent without a size
        "empty-mdhd": empty_mdhd_mp4(),
        "playlist": f"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30,\n{secret}\n#EXT-X-ENDLIST\n".encode(),
        "concat": f"ffconcat version 1.0\nfile {secret}\n".encode(),
        "cut-short": (smb_dir / "smb_1_2.mp4").read_bytes()[:30_000],
    }
    expected = {"good-a": "ok", "good-b": "ok", "drip": "timeout", "no-length": "too_large", "empty-mdhd": "unreadable",
                "playlist": "not_a_video", "concat": "not_a_video", "cut-short": "unreadable"}  # fmt: skip
    entries = []
    for video_id, data in files.items():
        (root / "videos" / f"{video_id}.mp4").write_bytes(data)
        entries.append({"id": video_id, "file": f"videos/{video_id}.mp4", "title": f"Pixel Hopper speedrun {video_id}",
                        "description": "A platformer speedrun.", "uploader": "someone", "license": "CC-BY-4.0",
                        "duration_s": 2.0})  # fmt: skip
    (root / "videos" / "tmp.mp4").unlink()
    (root / "catalog.json").write_text(json.dumps({"version": 1, "videos": entries}))
    faults = {"drip": Fault("slow", delay_s=0.0, bytes_per_s=2000), "no-length": Fault("no_length")}
    with VideoSite(root, faults=faults, search_faults={"slowfeed": Fault("slow", delay_s=0.0, bytes_per_s=1)}) as site:
        yield site, expected, secret


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def job_config(site: VideoSite, output: pathlib.Path):
    config = with_site(default_config(), site.url)
    search = dataclasses.replace(config.search, queries=("speedrun", "slowfeed"), query_timeout_s=2.0, socket_timeout_s=5.0)
    download = DownloadConfig(socket_timeout_s=5.0, video_timeout_s=3.0, max_attempts=1, max_file_bytes=MAX_FILE_BYTES,
                              extractors=("generic",), rate_per_s=50.0)  # fmt: skip
    # the heuristic scorer: the good uploads are ffmpeg test patterns, which the default's learned filter rightly drops
    return dataclasses.replace(config, output_dir=str(output), progress=False, search=search, download=download,
                               quality=QualityConfig(), ray=RaySection(num_cpus=2, download=WorkerResources(workers=0)))  # fmt: skip


@pytest.fixture(scope="module")
def first_run(world, local_ray, tmp_path_factory):
    output = tmp_path_factory.mktemp("hostile_ingest")
    return output, run_ingest(job_config(world[0], output))


def videos_by_id(output: pathlib.Path) -> dict[str, dict]:
    return {row["video_id"]: row for row in pq.read_table(output / lineage.MANIFEST / lineage.VIDEOS_FILE).to_pylist()}


def test_every_hostile_video_ends_as_a_row_with_its_reason(first_run, world):
    """Malformed boxes, playlists, a concat list, a cut file, an unsized oversize body and a drip
    each end as their own row and reason; the good videos are cut into clips; the job finishes."""
    output, stats = first_run
    outcomes = {video_id: row["status"] if row["status"] == "ok" else reason_code(row["reason"])
                for video_id, row in videos_by_id(output).items()}  # fmt: skip
    assert outcomes == world[1]
    assert (output / STATS_FILE).is_file() and stats["clips"]["kept"] > 0
    assert stats["failed_queries"]["slowfeed"].startswith("search_timeout")
    assert list((output / "downloads" / "incoming").iterdir()) == []


def test_nothing_outside_the_output_folder_reaches_a_shard(first_run, world):
    """Every sample of every shard comes from a good video; the playlists' target never became a clip."""
    output = first_run[0]
    clips = pq.read_table(output / lineage.MANIFEST / lineage.CLIPS_FILE).to_pylist()
    assert {clip["video_id"] for clip in clips} == {"good-a", "good-b"}
    sources = {clip_spec.decode_sample(sample)[1]["video_id"] for shard in list_shards([str(output / SHARDS)])
               for sample in iter_samples(shard)}  # fmt: skip
    assert sources == {"good-a", "good-b"}


def test_a_torn_part_is_redone_and_a_stale_lock_is_taken_over(first_run, world):
    """A part that does not read back makes its video unfinished: the rerun (which finds a lock
    file left by a dead process) redoes it and ends with the same manifest and shards."""
    output = first_run[0]
    shards = {path.name: path.read_bytes() for path in (output / SHARDS).iterdir()}
    part = output / lineage.PARTS / f"{ids.video_key('good-a')}.video.parquet"
    part.write_bytes(part.read_bytes()[:40])
    (output / LOCK_FILE).write_text(json.dumps({"host": "gone", "pid": 2**22 + 7}))
    stats = run_ingest(job_config(world[0], output))
    assert videos_by_id(output)["good-a"]["status"] == "ok" and stats["clips"]["kept"] == first_run[1]["clips"]["kept"]
    assert {path.name: path.read_bytes() for path in (output / SHARDS).iterdir()} == shards


def test_a_second_job_on_the_same_folder_fails_at_once_naming_the_holder(world, tmp_path):
    """While one job holds output_dir, another fails before touching it, naming the holder's pid."""
    with OutputLock(tmp_path):
        with pytest.raises(OutputLocked, match=f"'pid': {os.getpid()}|\"pid\": {os.getpid()}"):
            run_ingest(job_config(world[0], tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == [LOCK_FILE]


# --- shards -----------------------------------------------------------------------------------


def clip(start: int, n_frames: int = 4) -> dict:
    frames = np.random.default_rng(start).integers(0, 255, (n_frames, 90, 160, 3), np.uint8)
    meta = {"clip_id": ids.clip_id("v", start, start + 10), "video_id": "v", "scene_index": 0, "start_frame": start,
            "end_frame": start + 10, "start_s": start / 10, "end_s": (start + 10) / 10, "n_frames": n_frames, "fps": 10,
            "width": 160, "height": 90, "quality_score": None, "pipeline_version": "test"}  # fmt: skip
    return clip_spec.encode_sample(frames, meta)


def png_bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        import zlib
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    import zlib
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(60001) * 20, 9)) + chunk(b"IEND", b""))  # fmt: skip


def raw_tar(members: list[tuple[str, bytes]], **options) -> bytes:
    """A tar written member by member with tarfile (no key checks: a hostile writer)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", **options) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if options.get("format") == tarfile.PAX_FORMAT:
                info.pax_headers = {"comment": "x" * 200_000}
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def members(sample: dict) -> list[tuple[str, bytes]]:
    return [(f"{sample['__key__']}.{field}", data) for field, data in sorted(sample.items()) if not field.startswith("_")]


def with_meta(sample: dict, **changes) -> dict:
    return {**sample, "json": json.dumps({**json.loads(sample["json"]), **changes}).encode()}


@pytest.fixture(scope="module")
def hostile_clip_shards(tmp_path_factory):
    """Clip shards: one good; one with four bombs between good samples; a gzip tar, a tar with a
    200 kB PAX header, a truncated tar. Returns the folder and what tokenize must report."""
    folder = tmp_path_factory.mktemp("hostile_shards")
    good = [clip(0), clip(10)]
    hostile = clip(20)
    bombs = [clip(30), {**clip(40), "frames.png": png_bomb()}, {**clip(50), "json": b"[" * 50_000 + b"]" * 50_000},
             with_meta(clip(60), n_frames=2**31 - 1), {**with_meta(hostile, clip_id="../../x"), "__key__": "../../x"},
             clip(70)]  # fmt: skip
    with open(folder / "a-good.tar", "wb") as stream, ShardWriter(stream) as writer:
        for sample in good:
            writer.write(sample)
    (folder / "b-bombs.tar").write_bytes(raw_tar([m for sample in bombs for m in members(sample)]))
    (folder / "c-gzip.tar").write_bytes(gzip.compress(raw_tar(members(clip(80)))))
    (folder / "d-pax.tar").write_bytes(raw_tar(members(clip(90)), format=tarfile.PAX_FORMAT))
    (folder / "e-cut.tar").write_bytes(raw_tar(members(clip(100)) + members(clip(110)))[:-12_000])
    expected = {"a-good.tar": ("ok", 2, 0), "b-bombs.tar": ("ok", 2, 4), "c-gzip.tar": ("error", "gzip-compressed"),
                "d-pax.tar": ("error", "extended header"), "e-cut.tar": ("error", "truncated")}  # fmt: skip
    return folder, expected


def tiny_checkpoint(folder: pathlib.Path, name: str) -> pathlib.Path:
    """A checkpoint of an untrained tiny model (what tokenize loads; training it is not the point)."""
    from models.config import load_model_configs

    from train.optimizer import OptimConfig, build_optimizer, build_schedule

    config = getattr(load_model_configs("tiny"), name)
    model = component(name).build(config)
    optimizer = build_optimizer(model, OptimConfig())
    save_checkpoint(folder, model, optimizer, build_schedule(optimizer, OptimConfig()),
                    {"component": name, "step": 0, "model_config": to_dict(config)}, 0, {})
    return folder


def test_tokenize_job_reports_every_hostile_shard_and_writes_only_valid_ids(hostile_clip_shards, local_ray, tmp_path):
    """The tokenize job gives each shard a row: bombs dropped and counted, unreadable tars an
    error with the reason; token shards hold only valid clip ids."""
    folder, expected = hostile_clip_shards
    encoders = TokenizeConfig(tokenizer_checkpoint=str(tiny_checkpoint(tmp_path / "tok", "tokenizer")),
                              lam_checkpoint=str(tiny_checkpoint(tmp_path / "lam", "lam")), window_frames=4)  # fmt: skip
    rows = tokenize.run(tokenize.TokenizeJobConfig(clip_shards=(str(folder),), output=str(tmp_path / "tokens"),
                                                   tokenize=encoders))  # fmt: skip
    got = {}
    for row in rows:
        name = pathlib.Path(row["shard"]).name
        got[name] = (row["status"], row["clips"], row["dropped"]) if row["status"] == "ok" else ("error", row["reason"])
    assert {name: value[:1] for name, value in got.items()} == {name: value[:1] for name, value in expected.items()}
    for name, value in expected.items():
        if value[0] == "ok":
            assert got[name] == value
        else:
            assert value[1] in got[name][1]
    keys = [sample["__key__"] for shard in list_shards([str(tmp_path / "tokens")]) for sample in iter_samples(shard)]
    assert len(keys) == 4 and all(ids.check_clip_id(key) for key in keys)


def test_window_loader_drops_and_counts_bombs_in_bounded_memory(hostile_clip_shards, tmp_path):
    """Training windows from the hostile clip shards and a token shard with an .npy bomb: every
    bad sample or shard is counted, the good ones still batch, and memory stays bounded."""
    folder, _ = hostile_clip_shards
    shards = list_shards([str(folder)])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = DataConfig(window_frames=4, batch_size=2, shuffle_block_clips=8, interleave_shards=5, loader_processes=0)
    batches = [batch for _, batch in zip(range(3), window_loader(config, ClipWindows(), shards, rank=0))]
    assert all(batch["frames"].shape == (2, 4, 90, 160, 3) for batch in batches)  # 5 good clips an epoch
    assert sum(int(batch["bad_samples"]) for batch in batches) >= 4 + 3  # four bombs, three unreadable shards
    meta = {"clip_id": ids.clip_id("v", 0, 4), "video_id": "v", "n_frames": 4, "grid_height": 2, "grid_width": 2,
            "num_codes": 8, "num_actions": 4, "tokenizer_checkpoint": "t", "lam_checkpoint": "l",
            "source_shard": "s.tar", "source_spec_version": "1"}  # fmt: skip
    good = token_spec.encode_token_sample(np.zeros((4, 2, 2), np.uint16), np.zeros(3, np.uint8), meta)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<u2", "fortran_order": False, "shape": (2**20, 2**20)})
    bomb = {**good, "__key__": ids.clip_id("v", 4, 8), "tokens.npy": header.getvalue(),
            "json": json.dumps({**meta, "clip_id": ids.clip_id("v", 4, 8)}).encode()}  # fmt: skip
    with open(tmp_path / "tokens.tar", "wb") as stream, ShardWriter(stream) as writer:
        writer.write(bomb)
        writer.write(good)
    token_config = dataclasses.replace(config, shuffle_block_clips=2, batch_size=1)
    batch = next(iter(window_loader(token_config, TokenWindows(), [str(tmp_path / "tokens.tar")], rank=0)))
    assert batch["tokens"].shape == (1, 4, 2, 2) and int(batch["bad_samples"]) == 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 256 * 1024  # KiB: no bomb was decoded
