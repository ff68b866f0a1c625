"""`genie run`: the main job end to end on its embedded default, with nothing from outside.

    genie run                      # jobs/configs/run_local.toml: offline world, local Ray, out/run
    genie run --config FILE

Steps; a rerun resumes, each step skipping or continuing what is already there:
1. render the offline world's corpus of uploads (world/corpus.py);
2. serve it, with the real footage in ../shared/corpus/smb when present, on the local video
   site (world/site.py);
3. ingest: keyword search -> yt-dlp download -> clips -> WebDataset shards + lineage
   (jobs/ingest.py), exactly as against a real site;
4. hold out a fraction of the offline world's videos (whole videos, jobs/eval.py
   held_out_shards); train the tokenizer and the latent action model on the other shards
   (jobs/train.py);
5. tokenize the training clips with them (jobs/tokenize.py) and train the dynamics model on
   the tokens;
6. play: the first frame of a held-out clip in, one generated frame per latent action out
   (jobs/play.py), written to <output_dir>/play.png;
7. evaluate on the held-out clips (jobs/eval.py): tokenizer PSNR, ΔtPSNR, agreement of the
   latent actions with the world's true ones; <output_dir>/eval/report.md. Then it prints the
   command that opens the play page.
When stdout is not a terminal (a log file, CI) the output is a line per step and per logged
training interval, then the summary as JSON on stdout; no progress bars.
"""

import argparse
import dataclasses
import importlib.resources
import json
import pathlib
import shlex
import sys

from schemas.config import ConfigError, in_range, load
from world.corpus import CorpusConfig

DEFAULT_CONFIG = "run_local.toml"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 7


@dataclasses.dataclass(frozen=True)
class RunEvalSection:
    """How `genie eval` measures the trained models on the held-out clips (jobs/eval.py EvalConfig)."""

    window_frames: int = 5  # frames per evaluation window: the real first frame + 4 generated (t = 4)
    max_windows: int = 64  # windows evaluated, taken from the held-out videos in turn
    steps: int = 25  # MaskGIT steps per generated frame (Genie: 25)
    temperature: float = 2.0  # MaskGIT's choice temperature (models/sampler.py; Genie: 2)
    batch_size: int = 8


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The main job: where it writes, how big a world it renders, which jobs it chains."""

    # Everything the job writes goes below this folder.
    output_dir: str = "out/run"
    # The offline world's corpus of uploads.
    corpus: CorpusConfig = CorpusConfig()
    # Real footage the site serves beside the corpus ("" = none); relative to the repo root.
    # It is only ever trained on: the evaluation needs the world's true actions.
    smb_dir: str = "../shared/corpus/smb"
    # The jobs' configs: a path, or a file name in jobs/configs/; "" for ingest = its embedded
    # default. Their input and output folders are replaced by folders under output_dir.
    ingest_config: str = ""
    tokenizer_config: str = "train_tokenizer_tiny.toml"
    lam_config: str = "train_lam_tiny.toml"
    tokenize_config: str = "tokenize_tiny.toml"
    dynamics_config: str = "train_dynamics_tiny.toml"
    # Fraction of the offline world's videos held out from training for the evaluation
    # (at least one video is held out and at least one trained on).
    held_out_fraction: float = 0.25
    eval: RunEvalSection = RunEvalSection()
    # Stop after ingest (no training, no play).
    ingest_only: bool = False

    def __post_init__(self):
        in_range(self, "held_out_fraction", 0.01, 0.99)


def default_config() -> RunConfig:
    return load(RunConfig, _job_config(DEFAULT_CONFIG))


def _job_config(name: str) -> pathlib.Path:
    path = pathlib.Path(name)
    if path.is_file():
        return path
    shipped = importlib.resources.files("jobs") / "configs" / name
    if not shipped.is_file():
        raise ConfigError(f"no job config {name!r} (neither a file nor one of jobs/configs/)")
    return pathlib.Path(str(shipped))


def _say(step: int, text: str) -> None:
    print(f"[{step}/{STEPS}] {text}", file=sys.stderr, flush=True)


def interactive() -> bool:
    """Whether a person watches a terminal (progress bars) rather than a log (plain lines)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def _render_corpus(config: RunConfig, corpus_dir: pathlib.Path) -> None:
    from world.corpus import generate_corpus

    if (corpus_dir / "catalog.json").exists():
        _say(1, f"corpus: {corpus_dir} exists, kept")
        return
    _say(1, f"corpus: rendering {config.corpus.videos} uploads into {corpus_dir}")
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
        _say(2, f"site: serving {len(site.video_ids())} videos at {site.url}")
        ingest_config = load(ingest.IngestConfig, _job_config(config.ingest_config)) if config.ingest_config \
            else ingest.default_config()
        ingest_config = dataclasses.replace(ingest.with_site(ingest_config, site.url), output_dir=str(output / "ingest"),
                                            progress=ingest_config.progress and interactive())
        _say(3, f"ingest: searching {site.url}, writing shards to {ingest_config.output_dir}")
        stats = ingest.run_ingest(ingest_config)
        _say(3, f"ingest: {stats['videos'].get('ok', 0)} videos ok, {stats['clips'].get('kept', 0)} clips kept")
        return stats


def split_shards(clips: pathlib.Path, corpus: pathlib.Path, fraction: float) -> tuple[list[str], list[str]]:
    """(training shards, held-out shards): whole offline-world videos held out; every other
    video (real footage, which has no true actions to measure) is trained on."""
    from jobs.eval import held_out_shards
    from schemas.ids import video_key
    from schemas.shard_io import list_shards

    shards = list_shards([str(clips)])
    world_keys = {video_key(path.stem) for path in (corpus / "truth").glob("*.json")}
    in_world = [s for s in shards if pathlib.PurePosixPath(s).name.split("_")[0] in world_keys]
    if len(in_world) < 2:
        raise ConfigError(f"the offline world gave {len(in_world)} videos with kept clips; at least 2 are needed "
                          "to hold one out for the evaluation", key="corpus.videos")
    training, held_out = held_out_shards(in_world, fraction)
    return [s for s in shards if s not in held_out], held_out


def _train(component: str, step: int, config_name: str, shards: list[str], storage: pathlib.Path):
    from jobs import train

    job = load(train.TrainJobConfig, _job_config(config_name))
    data = dataclasses.replace(job.train.data, shards=tuple(shards))
    job = dataclasses.replace(job, run=dataclasses.replace(job.run, storage_path=str(storage), log_dir=""),
                              train=dataclasses.replace(job.train, data=data))
    total = job.train.optim.max_steps
    lines = None if interactive() else lambda record: _say(step, f"{component} {train.describe(record, total)}")
    result = train.fit(component, job, progress=lines)
    return storage / job.run.name, result.metrics.get("step")


def _tokenize(config_name: str, clips: list[str], tokens: pathlib.Path, tokenizer_run: pathlib.Path,
              lam_run: pathlib.Path) -> list[dict]:
    from jobs import tokenize

    job = load(tokenize.TokenizeJobConfig, _job_config(config_name))
    encoders = dataclasses.replace(job.tokenize, tokenizer_checkpoint=str(tokenizer_run), lam_checkpoint=str(lam_run))
    return tokenize.run(dataclasses.replace(job, clip_shards=tuple(clips), output=str(tokens), tokenize=encoders))


def _evaluate(config: RunConfig, output: pathlib.Path, runs: dict, held_out: list[str]) -> dict:
    from jobs.eval import EvalConfig, evaluate, headline_numbers

    section = config.eval
    eval_config = EvalConfig(
        tokenizer_checkpoint=str(runs["tokenizer"]), lam_checkpoint=str(runs["lam"]),
        dynamics_checkpoint=str(runs["dynamics"]), clips=tuple(held_out), output_dir=str(output / "eval"),
        corpus_dir=str(output / "corpus"), window_frames=section.window_frames, max_windows=section.max_windows,
        batch_size=section.batch_size, steps=section.steps, temperature=section.temperature)
    summary = evaluate(eval_config)
    numbers = dict(headline_numbers(summary))
    _say(7, "eval: " + ", ".join(f"{key} {value}" for key, value in numbers.items()))
    return {"report": str(output / "eval" / summary["report"]), **numbers}


def _train_and_play(config: RunConfig, output: pathlib.Path) -> dict:
    from jobs.play import first_clip_frame, load_world, play_image, write_grid

    clips, tokens, storage = output / "ingest" / "shards", output / "tokens", output / "train"
    training, held_out = split_shards(clips, output / "corpus", config.held_out_fraction)
    # which videos the models never saw, for benchmarks and later evaluations (--split)
    (output / "split.json").write_text(json.dumps({"train": training, "held_out": held_out}, indent=1))
    _say(4, f"held out {len(held_out)} of the world's videos for the evaluation; training on {len(training)} videos")
    runs, steps = {}, {}
    _say(4, "train: tokenizer")
    runs["tokenizer"], steps["tokenizer"] = _train("tokenizer", 4, config.tokenizer_config, training, storage)
    _say(4, "train: latent action model")
    runs["lam"], steps["lam"] = _train("lam", 4, config.lam_config, training, storage)
    _say(5, f"tokenize: clips -> {tokens}")
    rows = _tokenize(config.tokenize_config, training, tokens, runs["tokenizer"], runs["lam"])
    _say(5, "train: dynamics")
    runs["dynamics"], steps["dynamics"] = _train("dynamics", 5, config.dynamics_config, [str(tokens)], storage)
    _say(6, f"play: {output / 'play.png'}")
    world = load_world(str(runs["tokenizer"]), str(runs["dynamics"]), steps=25, temperature=2.0)
    write_grid(play_image(world, first_clip_frame(held_out), actions=None), output / "play.png")
    _say(7, f"eval: {len(held_out)} held-out videos -> {output / 'eval'}")
    evaluation = _evaluate(config, output, runs, held_out)
    play_page = shlex.join(["genie", "play", "--tokenizer", str(runs["tokenizer"]), "--dynamics",
                            str(runs["dynamics"]), "--clips", *held_out[:1], "--serve"])
    return {"steps": steps, "token_shards": len(rows), "runs": str(storage), "play": str(output / "play.png"),
            "held_out": held_out, "eval": evaluation, "play_page": play_page}


def run(config: RunConfig) -> dict:
    """Run every step; returns a summary (also printed as JSON by main)."""
    import logging

    import ray
    import ray.data

    output = pathlib.Path(config.output_dir).resolve()
    _render_corpus(config, output / "corpus")
    # Worker logs reach a terminal only (progress bars live there); in a log the steps' own
    # lines say what happens, and a failing worker's error still arrives with its exception.
    # The Train placement-group cleaner warns every few seconds on a loaded machine: ERROR only.
    ray.init(include_dashboard=False, logging_level="warning", log_to_driver=interactive(),
             logging_config=ray.LoggingConfig(log_level="ERROR"))
    if not interactive():
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on progress bars and resources
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
    summary = run(config)
    print(json.dumps(summary, indent=1, sort_keys=True))
    if "train" in summary:
        print(f"report: {summary['train']['eval']['report']}\nplay in the browser (http://127.0.0.1:8771):\n  "
              f"{summary['train']['play_page']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
