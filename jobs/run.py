"""`genie run`: the main job end to end on its embedded default, with nothing from outside.

    genie run                      # jobs/configs/run_local.toml: offline world, local Ray, out/run
    genie run --config FILE

Steps; a rerun resumes, each step skipping or continuing what is already there:
1. render the offline world's corpus of uploads (world/corpus.py);
2. serve it, with the real footage in ../shared/corpus/smb when present, on the local video
   site (world/site.py);
3. ingest: keyword search -> yt-dlp download -> clips -> WebDataset shards + lineage
   (jobs/ingest.py), exactly as against a real site;
4. train the tokenizer and the latent action model on the shards (jobs/train.py);
5. tokenize the clips with them (jobs/tokenize.py) and train the dynamics model on the tokens;
6. play: the first frame of a kept clip in, one generated frame per latent action out
   (jobs/play.py), written to <output_dir>/play.png.
The embedded default trains the tiny models for a few steps: it shows the chain works, not
a good model (see README "Training" for real runs).
"""

import argparse
import dataclasses
import importlib.resources
import json
import pathlib
import sys

from schemas.config import load
from world.corpus import CorpusConfig

DEFAULT_CONFIG = "run_local.toml"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The main job: where it writes, how big a world it renders, which jobs it chains."""

    # Everything the job writes goes below this folder.
    output_dir: str = "out/run"
    # The offline world's corpus of uploads.
    corpus: CorpusConfig = CorpusConfig()
    # Real footage the site serves beside the corpus ("" = none); relative to the repo root.
    smb_dir: str = "../shared/corpus/smb"
    # The jobs' configs: a path, or a file name in jobs/configs/; "" for ingest = its embedded
    # default. Their input and output folders are replaced by folders under output_dir.
    ingest_config: str = ""
    tokenizer_config: str = "train_tokenizer_tiny.toml"
    lam_config: str = "train_lam_tiny.toml"
    tokenize_config: str = "tokenize_tiny.toml"
    dynamics_config: str = "train_dynamics_tiny.toml"
    # Stop after ingest (no training, no play).
    ingest_only: bool = False


def default_config() -> RunConfig:
    return load(RunConfig, _job_config(DEFAULT_CONFIG))


def _job_config(name: str) -> pathlib.Path:
    path = pathlib.Path(name)
    if path.is_file():
        return path
    shipped = importlib.resources.files("jobs") / "configs" / name
    if not shipped.is_file():
        raise FileNotFoundError(f"no job config {name!r} (neither a file nor one of jobs/configs/)")
    return pathlib.Path(str(shipped))


def _say(step: str, text: str) -> None:
    print(f"[{step}] {text}", file=sys.stderr, flush=True)


def _render_corpus(config: RunConfig, corpus_dir: pathlib.Path) -> None:
    from world.corpus import generate_corpus

    if (corpus_dir / "catalog.json").exists():
        _say("1/6", f"corpus: {corpus_dir} exists, kept")
        return
    _say("1/6", f"corpus: rendering {config.corpus.videos} uploads into {corpus_dir}")
    generate_corpus(config.corpus, corpus_dir,
                    progress=lambda n, total, entry: print(f"      {n}/{total} {entry['title']}", file=sys.stderr))


def _smb_dir(config: RunConfig) -> pathlib.Path | None:
    if not config.smb_dir:
        return None
    path = pathlib.Path(config.smb_dir)
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_dir():
        print(f"      real footage not found at {path}: serving the generated corpus only", file=sys.stderr)
        return None
    return path


def _ingest(config: RunConfig, output: pathlib.Path) -> dict:
    from jobs import ingest
    from world.site import VideoSite

    with VideoSite(output / "corpus", smb_dir=_smb_dir(config)) as site:
        _say("2/6", f"site: serving {len(site.video_ids())} videos at {site.url}")
        ingest_config = load(ingest.IngestConfig, _job_config(config.ingest_config)) if config.ingest_config \
            else ingest.default_config()
        ingest_config = dataclasses.replace(ingest.with_site(ingest_config, site.url), output_dir=str(output / "ingest"))
        _say("3/6", f"ingest: searching {site.url}, writing shards to {ingest_config.output_dir}")
        return ingest.run_ingest(ingest_config)


def _train(component: str, config_name: str, shards: pathlib.Path, storage: pathlib.Path):
    from jobs import train

    job = load(train.TrainJobConfig, _job_config(config_name))
    data = dataclasses.replace(job.train.data, shards=(str(shards),))
    job = dataclasses.replace(job, run=dataclasses.replace(job.run, storage_path=str(storage), log_dir=""),
                              train=dataclasses.replace(job.train, data=data))
    result = train.fit(component, job)
    return storage / job.run.name, result.metrics.get("step")


def _tokenize(config_name: str, clips: pathlib.Path, tokens: pathlib.Path, tokenizer_run: pathlib.Path,
              lam_run: pathlib.Path) -> list[dict]:
    from jobs import tokenize

    job = load(tokenize.TokenizeJobConfig, _job_config(config_name))
    encoders = dataclasses.replace(job.tokenize, tokenizer_checkpoint=str(tokenizer_run), lam_checkpoint=str(lam_run))
    return tokenize.run(dataclasses.replace(job, clip_shards=(str(clips),), output=str(tokens), tokenize=encoders))


def _first_kept_frame(clips: pathlib.Path):
    from schemas.shard import decode_sample
    from schemas.shard_io import iter_samples, list_shards

    for shard in list_shards([str(clips)]):
        for sample in iter_samples(shard):
            return decode_sample(sample)[0][0]
    raise RuntimeError(f"no clip in {clips} to start playing from")


def _train_and_play(config: RunConfig, output: pathlib.Path) -> dict:
    from jobs.play import load_world, play_image, write_grid

    clips, tokens, storage = output / "ingest" / "shards", output / "tokens", output / "train"
    _say("4/6", "train: tokenizer")
    tokenizer_run, tokenizer_steps = _train("tokenizer", config.tokenizer_config, clips, storage)
    _say("4/6", "train: latent action model")
    lam_run, lam_steps = _train("lam", config.lam_config, clips, storage)
    _say("5/6", f"tokenize: clips -> {tokens}")
    rows = _tokenize(config.tokenize_config, clips, tokens, tokenizer_run, lam_run)
    _say("5/6", "train: dynamics")
    dynamics_run, dynamics_steps = _train("dynamics", config.dynamics_config, tokens, storage)
    _say("6/6", f"play: {output / 'play.png'}")
    world = load_world(str(tokenizer_run), str(dynamics_run), steps=25, temperature=2.0)
    write_grid(play_image(world, _first_kept_frame(clips), actions=None), output / "play.png")
    return {"steps": {"tokenizer": tokenizer_steps, "lam": lam_steps, "dynamics": dynamics_steps},
            "token_shards": len(rows), "runs": str(storage), "play": str(output / "play.png")}


def run(config: RunConfig) -> dict:
    """Run every step; returns a summary (also printed as JSON by main)."""
    import ray

    output = pathlib.Path(config.output_dir).resolve()
    _render_corpus(config, output / "corpus")
    ray.init(include_dashboard=False, logging_level="warning")
    try:
        stats = _ingest(config, output)
        summary = {"output_dir": str(output), "ingest": {"videos": stats["videos"], "clips": stats["clips"]}}
        if not config.ingest_only:
            summary["train"] = _train_and_play(config, output)
    finally:
        ray.shutdown()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, help=f"job config (TOML); default: the embedded {DEFAULT_CONFIG}")
    options = parser.parse_args(argv)
    config = load(RunConfig, options.config) if options.config else default_config()
    print(json.dumps(run(config), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
