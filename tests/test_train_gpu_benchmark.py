"""The GPU tokenizer benchmark and its shard builder, run end to end in smoke mode so they cannot rot."""

import json
import pathlib
import subprocess
import sys

import pytest

from schemas.shard_io import list_shards

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_smoke_run_trains_scores_heldout_groups_and_writes_pngs(tmp_path, smb_dir):
    """make_gpu_shards builds train/held-out SMB and world shards; tokenizer_gpu --smoke trains, scores each group, draws PNGs."""
    shards, out = tmp_path / "shards", tmp_path / "out"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_gpu_shards.py"), str(shards), "--smb-dir", str(smb_dir),
                    "--smb-seconds", "4", "--heldout-smb", "smb_1_3", "--world-videos", "2", "--world-seconds", "8",
                    "--world-heldout", "0.5"], check=True, capture_output=True)
    assert all(list_shards([str(shards / group)]) for group in ("train", "heldout/smb", "heldout/world"))
    manifest = json.loads((shards / "manifest.json").read_text())
    heldout_levels = {clip["level"] for clip in manifest["clips"] if clip["split"] == "heldout"}
    train_levels = {clip["level"] for clip in manifest["clips"] if clip["split"] == "train"}
    assert "smb_1_3" in heldout_levels and not heldout_levels & train_levels
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tokenizer_gpu.py"), str(shards), "--out", str(out),
                    "--smoke"], check=True, capture_output=True, timeout=240)
    report = json.loads((out / "report.json").read_text())
    assert set(report["eval"]) == {"train", "heldout/smb", "heldout/world"}
    assert all(score["windows"] > 0 and 0 < score["psnr_db"] < 100 for score in report["eval"].values())
    assert report["training"]["steps"] >= 2
    assert sorted(path.name for path in out.glob("recon_*.png")) == ["recon_heldout_smb.png", "recon_heldout_world.png",
                                                                      "recon_train.png"]
