"""`genie run`, the README's main job, end to end as a user starts it: a small offline world
rendered, served, ingested, the three tiny models trained a few steps on all but a held-out
video, a world played, the held-out video evaluated; its log readable when not a terminal."""

import json
import pathlib
import re
import subprocess
import sys

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs.play import fit_image
from schemas.shard import decode_sample
from schemas.shard_io import iter_samples, list_shards

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "jobs" / "configs"
STEPS = 3


def _short_training_config(name: str, folder: pathlib.Path) -> pathlib.Path:
    text = re.sub(r"^(max_steps|checkpoint_every) = .*$", rf"\1 = {STEPS}", (CONFIGS / name).read_text(), flags=re.M)
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_genie_run_goes_from_an_offline_world_to_a_played_image_and_an_evaluation(tmp_path):
    configs = {part: _short_training_config(f"train_{part}_tiny.toml", tmp_path)
               for part in ("tokenizer", "lam", "dynamics")}
    output = tmp_path / "run"
    (tmp_path / "run.toml").write_text(f"""
output_dir = "{output}"
smb_dir = ""
tokenizer_config = "{configs['tokenizer']}"
lam_config = "{configs['lam']}"
tokenize_config = "tokenize_tiny.toml"
dynamics_config = "{configs['dynamics']}"

[eval]
window_frames = 5
max_windows = 2
steps = 1
batch_size = 2

[corpus]
seed = 1
videos = 4
offtopic = 1
min_duration_s = 12.0
max_duration_s = 16.0
""")
    genie = pathlib.Path(sys.executable).parent / "genie"
    done = subprocess.run([str(genie), "run", "--config", str(tmp_path / "run.toml")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)

    # the on-topic uploads (seed 1: clean gameplay, which the embedded default's learned filter
    # keeps, so each gives a shard); the off-topic one is not searched up
    assert summary["ingest"]["videos"]["ok"] == 3
    kept = summary["ingest"]["clips"]["kept"]
    assert kept > 0
    clips = pq.read_table(output / "ingest" / "manifest" / "clips.parquet").to_pylist()
    assert sum(clip["status"] == "ok" for clip in clips) == kept
    assert all(clip["quality_scorer"].startswith("learned-cnn:") for clip in clips if clip["status"] == "ok")  # the shipped model
    assert summary["train"]["steps"] == {"tokenizer": STEPS, "lam": STEPS, "dynamics": STEPS}
    for part in ("tokenizer", "lam", "dynamics"):
        assert (output / "train" / f"{part}-tiny" / f"checkpoint_{STEPS:09d}" / "meta.json").is_file()
    assert summary["train"]["token_shards"] >= 1

    # play.png: a row per latent action, each the first held-out clip's first frame then a new frame.
    held_out = summary["train"]["held_out"]
    assert json.loads((output / "split.json").read_text())["held_out"] == held_out  # what benchmarks read (--split)
    assert held_out and not set(held_out) & set(_trained_shards(output))
    picture = cv2.imread(summary["train"]["play"])
    assert picture.shape == (8 * 90, 2 * 160, 3)
    first_frame = decode_sample(next(iter_samples(list_shards(held_out)[0])))[0][0]
    np.testing.assert_array_equal(picture[:90, :160], fit_image(first_frame)[..., ::-1])

    # the evaluation of the held-out video, with the world's true actions
    evaluation = json.loads((output / "eval" / "eval.json").read_text())
    assert evaluation["data"]["windows"] == 2 and evaluation["actions"]["count"] > 0
    assert summary["train"]["eval"]["action_nmi"] == round(evaluation["actions"]["nmi"], 4)
    assert (output / "eval" / "report.md").is_file()
    assert "--serve" in summary["train"]["play_page"] and "genie play" in done.stderr

    # a log, not a terminal: a line per logged interval, no redrawn bars, no Ray worker chatter
    assert f"tokenizer step {STEPS}/{STEPS}" in done.stderr
    assert "\r" not in done.stderr and "Failed to query" not in done.stderr and "pid=" not in done.stderr


def _trained_shards(output: pathlib.Path) -> list[str]:
    meta = json.loads(next((output / "train" / "tokenizer-tiny").glob("checkpoint_*/meta.json")).read_text())
    return list(meta["train_config"]["data"]["shards"])
