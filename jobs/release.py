"""`genie release`: ingest runs -> a versioned release; or an old release minus takedowns.

    genie release --from out/ingest [RUN ...] --out out/release/v1 --version v1 [--config FILE]
    genie release --base out/release/v1 --takedowns takedowns.toml --out out/release/v2 --version v2
    ray job submit --working-dir . -- python -m jobs.release --from s3://bucket/run1 ... --out /shared/v1 --version v1

The release code itself is release/ (plan, shards, manifest, card); this file only wires it
and decides where shard writes run: in this process for small inputs, as Ray tasks (one
per shard, a bounded number in flight, results in shard order) when the inputs exceed
`ray.local_max_bytes` or `ray.mode = "ray"`. Either way the shards are byte-identical.
"""

import argparse
import collections
import dataclasses
import json
import os
import pathlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from release import inputs
from release.build import build_release, local_map
from release.plan import BuildConfig
from release.inputs import InputError
from release.takedown import BaseReleaseError, remove_takedowns
from schemas.config import ConfigError, load, to_dict
from schemas.takedowns import load_takedowns
from schemas.validation import SchemaError


@dataclasses.dataclass(frozen=True)
class RaySection:
    """Where shard writes (and verify's shard checks) run."""

    # "auto": Ray when the input is over local_max_bytes; "local": this process; "ray": Ray.
    mode: Literal["auto", "local", "ray"] = "auto"
    # Inputs up to this many bytes are done in this process (Ray's start-up is not worth it).
    local_max_bytes: int = 4 * 1024**3
    # "" joins the cluster in RAY_ADDRESS if set, else starts a local Ray; or "auto" / an address.
    address: str = ""
    # Local Ray only: CPUs to give it (0 = all).
    num_cpus: int = 0
    # Shard tasks submitted ahead of the one being collected (0 = twice the cluster's CPUs).
    max_in_flight: int = 0


@dataclasses.dataclass(frozen=True)
class ReleaseJobConfig:
    """A release job: the data set's name, the takedown list, the build and where it runs."""

    name: str = "platformers"
    # A takedown list (schemas/takedowns.py) whose videos and uploaders are left out; "" = none.
    takedowns: str = ""
    build: BuildConfig = BuildConfig()
    ray: RaySection = RaySection()


def _call(function: Callable, task):
    return function(task)


def ray_map(function: Callable, tasks: Iterable, max_in_flight: int) -> Iterator:
    """map_ordered on the connected Ray cluster: one task per item, results in item order."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=3)(_call)
    function_ref = ray.put(function)
    pending: collections.deque = collections.deque()
    for task in tasks:
        pending.append(remote.remote(function_ref, task))
        if len(pending) >= max_in_flight:
            yield ray.get(pending.popleft())
    while pending:
        yield ray.get(pending.popleft())


def mapper(ray_section: RaySection, input_bytes: int) -> tuple[Callable, Callable[[], None]]:
    """(map_ordered, shutdown): local for small inputs, Ray tasks for large ones."""
    use_ray = ray_section.mode == "ray" or (ray_section.mode == "auto" and input_bytes > ray_section.local_max_bytes)
    if not use_ray:
        return local_map, lambda: None
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        local = {}
        if not (ray_section.address or os.environ.get("RAY_ADDRESS")):
            local = {"num_cpus": ray_section.num_cpus or None, "include_dashboard": False}
        ray.init(address=ray_section.address or None, logging_level="warning", **local)
    in_flight = ray_section.max_in_flight or 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    return (lambda function, tasks: ray_map(function, tasks, in_flight)), (ray.shutdown if started_here else lambda: None)


def progress_bar(total_bytes: int, description: str):
    """A tqdm bar over bytes and its per-shard update callback."""
    from tqdm import tqdm

    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=description, file=sys.stderr)
    return bar, lambda result: bar.update(_result_bytes(result))


def _result_bytes(result: dict) -> int:
    """Bytes of one shard's result: a written shard's entry, or the bytes a check read."""
    if "entry" in result:
        return result["entry"]["bytes"] if result["entry"] else 0
    return result["bytes"]


def release_from_runs(runs: list[str], out: str, version: str, config: ReleaseJobConfig, show_progress: bool = True) -> dict:
    """Build a release from ingest runs; its index."""
    for run in runs:
        inputs.check_run(run)
    input_bytes = sum(sum(inputs.shard_sizes(run).values()) for run in runs)
    map_ordered, shutdown = mapper(config.ray, input_bytes)
    bar, update = progress_bar(input_bytes, "release") if show_progress else (None, None)
    try:
        return build_release(runs, out, config.name, version, config.build, load_takedowns(config.takedowns),
                             map_ordered, update)  # fmt: skip
    finally:
        shutdown()
        if bar is not None:
            bar.close()


def release_minus_takedowns(base: str, out: str, version: str, takedowns: str, ray_section: RaySection,
                            show_progress: bool = True) -> dict:
    """Make a new version from `base` minus the takedown list at `takedowns`; its index."""
    index = json.loads((pathlib.Path(base) / "index.json").read_text())
    total = sum(entry["bytes"] for entry in index["shards"])
    map_ordered, shutdown = mapper(ray_section, total)
    bar, update = progress_bar(total, "takedown") if show_progress else (None, None)
    try:
        return remove_takedowns(base, out, version, load_takedowns(takedowns), map_ordered, update)
    finally:
        shutdown()
        if bar is not None:
            bar.close()


def summary(index: dict) -> dict:
    splits = collections.defaultdict(lambda: {"shards": 0, "clips": 0, "bytes": 0})
    for entry in index["shards"]:
        figures = splits[entry["split"]]
        figures["shards"] += 1
        figures["clips"] += entry["clips"]
        figures["bytes"] += entry["bytes"]
    return {"name": index["name"], "version": index["version"], "splits": dict(splits)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie release", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="runs", nargs="+", metavar="RUN", help="ingest output folders or URIs to merge")
    source.add_argument("--base", help="an existing release to remove takedowns from (with --takedowns)")
    parser.add_argument("--out", required=True, help="the new release's folder (must not exist)")
    parser.add_argument("--version", required=True, help="the release's version, e.g. v1")
    parser.add_argument("--config", type=pathlib.Path, help="release config (TOML, sections of ReleaseJobConfig)")
    parser.add_argument("--takedowns", help="takedown list (TOML); overrides the config's")
    parser.add_argument("--seed", type=int, help="overrides build.seed")
    parser.add_argument("--ray", choices=("auto", "local", "ray"), help="overrides ray.mode")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    options = parser.parse_args(argv)
    try:
        config = load(ReleaseJobConfig, options.config) if options.config else ReleaseJobConfig()
    except ConfigError as error:
        parser.error(str(error))
    if options.takedowns is not None:
        config = dataclasses.replace(config, takedowns=options.takedowns)
    if options.seed is not None:
        config = dataclasses.replace(config, build=dataclasses.replace(config.build, seed=options.seed))
    if options.ray:
        config = dataclasses.replace(config, ray=dataclasses.replace(config.ray, mode=options.ray))
    if options.base and not config.takedowns:
        parser.error("--base needs --takedowns (a new version from an old one minus a takedown list)")
    try:
        if options.base:
            index = release_minus_takedowns(options.base, options.out, options.version, config.takedowns, config.ray,
                                            not options.no_progress)  # fmt: skip
        else:
            index = release_from_runs(options.runs, options.out, options.version, config, not options.no_progress)
    except (FileExistsError, InputError, BaseReleaseError, ConfigError, SchemaError) as error:
        print(f"genie release: {error}", file=sys.stderr)
        return 1
    figures = summary(index)
    for split, fraction in index["split_fractions"].items():
        if fraction > 0 and split not in figures["splits"]:
            print(f"genie release: warning: split {split} (fraction {fraction}) is empty: too few source videos", file=sys.stderr)
    print(json.dumps({**figures, "config": to_dict(config)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    from jobs.release import main as module_main

    sys.exit(module_main())
