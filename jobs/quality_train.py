"""`genie quality train`: the quality model (models/quality.py) from a labels file and the
shards of the ingest runs that cut those clips.

    genie quality train --labels labels.parquet --run out/ingest --out out/quality_model
    genie quality train --config jobs/configs/quality_cnn.toml --labels ... --run ... --out ...

The config (TOML) has a [model] section (models/quality.py QualityModelConfig) and a [train]
section (train/quality.py QualityTrainConfig: the label rule, the split, the threshold
choice). The output folder holds model.safetensors and config.json (the model config, the
threshold, the rule, and precision, recall and ROC AUC on the held-out test videos), and is
what an ingest config's `quality.learned.model_dir` names. Nothing is pickled.
"""

import argparse
import dataclasses
import json
import pathlib
import sys

from models.quality import QualityModelConfig, save_quality_model
from schemas.config import load, to_dict
from train.quality import QualityTrainConfig, load_labelled_clips, train_quality_model


@dataclasses.dataclass(frozen=True)
class QualityTrainJob:
    """The config file of `genie quality train`."""

    model: QualityModelConfig = QualityModelConfig()
    train: QualityTrainConfig = QualityTrainConfig()


def run(job: QualityTrainJob, labels: str, runs: list[str], out: str, log=print) -> dict:
    """Load, train, save; the saved info (threshold and figures)."""
    from schemas.labels import read_labels

    clips = load_labelled_clips(runs, read_labels(labels), job.train.candidate_frames, job.model)
    log(f"quality train: {len(clips.scores)} labelled clips from {len(set(clips.video_ids))} videos")
    model, info = train_quality_model(clips, job.model, job.train, log=log)
    return save_quality_model(out, model, {**info, "train_config": to_dict(job.train)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie quality train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, help="TOML with [model] and [train]; default: the dataclass defaults")
    parser.add_argument("--labels", required=True, help="labels Parquet (schemas/labels.py)")
    parser.add_argument("--run", required=True, action="append", help="an ingest run folder holding the clips (repeatable)")
    parser.add_argument("--out", required=True, help="the model folder to write")
    options = parser.parse_args(argv)
    job = load(QualityTrainJob, options.config) if options.config else QualityTrainJob()
    info = run(job, options.labels, options.run, options.out, log=lambda text: print(text, file=sys.stderr))
    print(json.dumps({key: info[key] for key in ("model_id", "threshold", "validation", "test", "train")}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
