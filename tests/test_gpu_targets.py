"""benchmarks/gpu_targets.py in its --tiny --cpu mode, with Ray made unimportable, so the GPU script cannot rot."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN_WITHOUT_RAY = ("import runpy, sys; sys.modules['ray'] = None; sys.argv = sys.argv[1:]; "
                   "runpy.run_path(sys.argv[0], run_name='__main__')")


def test_tiny_cpu_run_measures_every_target_and_writes_its_files(tmp_path, clip_shards):
    """One call profiles a dynamics step by kernel class, times generation, trains and scores the tokenizer."""
    shards, out = tmp_path / "shards", tmp_path / "out"
    tars = sorted(clip_shards.glob("*.tar"))
    for group, group_tars in (("train", tars[:3]), ("heldout/smb", tars[3:])):
        (shards / group).mkdir(parents=True)
        for tar in group_tars:
            (shards / group / tar.name).symlink_to(tar)
    result = subprocess.run([sys.executable, "-c", RUN_WITHOUT_RAY, str(ROOT / "benchmarks" / "gpu_targets.py"),
                             str(shards), "--out", str(out), "--tiny", "--cpu", "--tokenizer-minutes", "0.05"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["failures"] == {}
    profile = report["dynamics"]["profile"]
    assert {"matmul", "attention", "embedding/loss"} <= set(profile["classes_ms_per_step"])
    assert 0 < report["dynamics"]["tokens_per_s"] and report["generation"]["frames_per_s"] > 0
    assert set(report["tokenizer"]["eval"]) == {"train", "heldout/smb"}
    assert all(0 < score["psnr_db"] < 100 for score in report["tokenizer"]["eval"].values())
    assert {name: verdict["met"] for name, verdict in report["targets"].items()} == dict.fromkeys(
        ("dynamics_mfu", "generation_frames_per_s", "tokenizer_train_psnr_db", "tokenizer_heldout_smb_psnr_db"))
    assert "matmul" in (out / "profile_summary.txt").read_text()
    assert {path.name for path in out.glob("*")} >= {"recon_train.png", "recon_heldout_smb.png", "tokenizer_metrics.jsonl"}
