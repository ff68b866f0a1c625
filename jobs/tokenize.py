"""`genie tokenize --config FILE`: clip shards -> token shards for dynamics training, on Ray Data.

One row per clip shard goes through a pool of ClipTokenizer actors (train/tokenize_clips.py:
each loads the trained tokenizer and LAM once, on a GPU when the config asks for one);
each writes one token shard. The job's result is a table of what happened to every shard
(status ok / error with the reason, clips written and dropped), written next to the token
shards as tokenize_report.jsonl and summed up on stdout. A rerun skips finished shards.
"""

import argparse
import dataclasses
import json
import pathlib
import sys

from jobs.resources import WorkerResources
from schemas.config import ConfigError, load
from schemas.manifest import STATUS_OK
from schemas.shard_io import atomic_output, list_shards
from train.tokenize_clips import ClipTokenizer, TokenizeConfig

REPORT_FILE = "tokenize_report.jsonl"


@dataclasses.dataclass(frozen=True)
class TokenizeJobConfig:
    """Where the clips come from, where tokens go, and with which encoders on how many workers."""

    clip_shards: tuple[str, ...]  # folders, .tar files or URIs of clip shards
    output: str  # folder or URI for the token shards (same names as the clip shards)
    tokenize: TokenizeConfig
    resources: WorkerResources = WorkerResources()  # ClipTokenizer actors; gpus_per_worker 0 encodes on CPU

    def __post_init__(self):
        if self.resources.workers < 1:
            raise ConfigError(f"must be >= 1, got {self.resources.workers}", key="resources.workers")


def run(config: TokenizeJobConfig) -> list[dict]:
    """Tokenize every clip shard; returns one result row per shard (needs a connected Ray)."""
    import ray.data

    absolute = lambda path: path if "://" in path else str(pathlib.Path(path).resolve())
    tokenize = dataclasses.replace(config.tokenize, tokenizer_checkpoint=absolute(config.tokenize.tokenizer_checkpoint),
                                   lam_checkpoint=absolute(config.tokenize.lam_checkpoint))
    output = absolute(config.output)
    shards = list_shards([absolute(location) for location in config.clip_shards])
    # One block per shard, made on the driver: no task has to wait for a CPU the actors hold.
    dataset = ray.data.from_items([{"shard": shard} for shard in shards], override_num_blocks=len(shards))
    rows = dataset.map(
        ClipTokenizer,
        fn_constructor_kwargs={"config": tokenize, "output": output},
        compute=ray.data.ActorPoolStrategy(size=config.resources.workers),
        **config.resources.ray_options(),
    ).take_all()
    rows.sort(key=lambda row: row["shard"])
    with atomic_output(f"{output}/{REPORT_FILE}") as stream:
        stream.write("".join(json.dumps(row) + "\n" for row in rows).encode())
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie tokenize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=pathlib.Path, help="job config TOML, e.g. jobs/configs/tokenize_tiny.toml")
    options = parser.parse_args(argv)
    config = load(TokenizeJobConfig, options.config)

    import ray

    ray.init()
    try:
        rows = run(config)
    finally:
        ray.shutdown()
    ok = [row for row in rows if row["status"] == STATUS_OK]
    print(f"{len(ok)}/{len(rows)} shards tokenized into {config.output}: "
          f"{sum(row['clips'] for row in ok)} clips written, {sum(row['dropped'] for row in rows)} dropped")
    for row in rows:
        if row["status"] != STATUS_OK:
            print(f"  {row['shard']}: {row['status']}: {row['reason']}")
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
