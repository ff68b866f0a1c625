import pathlib

import pytest

from fixtures_release import ingest_runs  # noqa: F401 (session fixture: two ingest runs for the release tests)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMB_DIR = ROOT.parent / "shared" / "corpus" / "smb"


@pytest.fixture(scope="session")
def smb_dir() -> pathlib.Path:
    """The real SMB footage beside the checkout (read-only)."""
    if not SMB_DIR.is_dir():
        pytest.fail(f"real footage not found at {SMB_DIR}")
    return SMB_DIR


@pytest.fixture(scope="session")
def clip_shards(tmp_path_factory, smb_dir) -> pathlib.Path:
    """A folder of 4 clip shards in the ingest format: 8 s of 4 SMB levels, 4 clips of 20 frames each."""
    import subprocess

    import numpy as np
    import webdataset

    from schemas import ids, shard

    folder = tmp_path_factory.mktemp("clip_shards")
    for index, level in enumerate(["smb_1_1", "smb_1_2", "smb_2_1", "smb_3_1"]):
        args = ["ffmpeg", "-v", "error", "-i", str(smb_dir / f"{level}.mp4"), "-t", "8", "-vf",
                "fps=10,scale=160:90", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        video = np.frombuffer(subprocess.run(args, capture_output=True, check=True).stdout, np.uint8)
        video = video.reshape(-1, shard.FRAME_HEIGHT, shard.FRAME_WIDTH, 3)
        with webdataset.TarWriter(str(folder / f"shard-{index:06d}.tar")) as writer:
            for start in range(0, 80, 20):
                meta = {"clip_id": ids.clip_id(level, start, start + 20), "video_id": level, "scene_index": 0,
                        "start_frame": start, "end_frame": start + 20, "start_s": start / 10,
                        "end_s": (start + 20) / 10, "n_frames": 20, "fps": 10, "width": 160, "height": 90,
                        "quality_score": None, "pipeline_version": "test"}
                writer.write(shard.encode_sample(video[start : start + 20], meta))
    return folder
