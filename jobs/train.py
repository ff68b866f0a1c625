"""`genie train tokenizer|lam|dynamics --config FILE`: one Genie component trained on Ray Train.

This file only wires: the job config (TOML, jobs/configs/train_*.toml) into a TorchTrainer
with its ScalingConfig (workers, GPUs per worker), RunConfig (storage for checkpoints,
FailureConfig for restarts) and the Ray side of the worker interface (train/context.py).
The loop itself is train/loop.py. One Ray cluster or a laptop: `ray.init()` joins the
cluster in RAY_ADDRESS when set, else starts a local one.

Restarts: a worker that dies makes Ray Train restart the worker group from the latest
checkpoint, up to run.max_failures times. Rerunning the same command (same run.name and
run.storage_path) after the job itself died continues from that run's latest checkpoint.
"""

import argparse
import contextlib
import dataclasses
import json
import pathlib
import sys
import threading
from collections.abc import Callable
from typing import Literal

from jobs.resources import WorkerResources
from schemas.config import ConfigError, at_least, load
from schemas.errors import GenieError
from schemas.ids import sanitize_key
from schemas.shard_io import iter_samples, list_shards
from schemas.token_shard import decode_token_meta
from train.context import checkpoint_name
from train.loop import StepHook, TrainConfig, train
from train.metrics import METRICS_FILE
from train.memory_plan import ClusterSpec, MemoryPlan, meta_model, plan_memory
from train.windows import shards_of_rank

COMPONENTS = ("tokenizer", "lam", "dynamics")


@dataclasses.dataclass(frozen=True)
class ScalingSection(WorkerResources):
    """Ray Train workers (DDP/FSDP ranks, one per GPU) and their resources.

    workers: training processes; cpus_per_worker: cores for a worker's loop and its DataLoader
    processes; gpus_per_worker: 1 for real runs (CUDA with NCCL), a fraction lets tiny runs
    share a GPU, 0 trains on CPU with gloo.
    """

    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"

    def __post_init__(self):
        super().__post_init__()
        at_least(self, workers=1)


@dataclasses.dataclass(frozen=True)
class RunSection:
    """Where the run lives and how it survives failures."""

    name: str  # the run's name: rerunning with the same name and storage_path resumes it
    storage_path: str = "out/train"  # checkpoints: a local folder, a shared filesystem or a URI (s3://...)
    log_dir: str = ""  # metrics, TensorBoard, samples; default <storage_path>/<name>/logs (local storage)
    max_failures: int = 3  # worker-group restarts from the latest checkpoint before the run fails
    checkpoints_to_keep: int = 3  # older checkpoints are deleted

    def __post_init__(self):
        if sanitize_key(self.name) != self.name:
            raise ConfigError(f"{self.name!r} must be a plain folder name ([A-Za-z0-9_-]), "
                              f"e.g. {sanitize_key(self.name)!r}", key="name")
        at_least(self, max_failures=0, checkpoints_to_keep=1)


@dataclasses.dataclass(frozen=True)
class TrainJobConfig:
    """A training job: the loop's config plus how Ray runs it."""

    run: RunSection
    train: TrainConfig = TrainConfig()
    scaling: ScalingSection = ScalingSection()
    # the GPUs the job is planned for: when set, its memory plan must fit before any worker
    # starts (`genie train COMPONENT --config FILE --plan` prints it)
    cluster: ClusterSpec | None = None

    def __post_init__(self):
        if self.cluster is not None and self.cluster.gpus != self.scaling.workers:
            raise ConfigError(f"{self.scaling.workers} workers, but the cluster has {self.cluster.gpus} GPUs "
                              "(one worker per GPU)", key="scaling.workers")


class MemoryPlanError(GenieError, ValueError):
    """A job's memory plan does not fit its stated cluster."""


class RayWorkerContext:
    """The training loop's view of Ray Train (train/context.py WorkerContext)."""

    def __init__(self, log_dir: str, description: str, show_bar: bool = True):
        import ray
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.world_rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.node = ray.get_runtime_context().get_node_id()
        self.device = ray.train.torch.get_device()
        self.log_dir = pathlib.Path(log_dir)
        self._description = description
        self._show_bar = show_bar
        self._bar = None

    @contextlib.contextmanager
    def restored_checkpoint(self):
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as directory:
            yield pathlib.Path(directory)

    def report(self, metrics: dict, checkpoint_dir: pathlib.Path | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        name = checkpoint_name(int(metrics["step"])) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)
        if checkpoint is not None:
            # Wait until the controller has registered it: a worker that dies right after
            # must restart from this checkpoint, not the one before.
            ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)

    def progress(self, step: int, total: int, metrics: dict) -> None:
        from ray.experimental import tqdm_ray

        if not self._show_bar:
            return
        if self._bar is None:
            self._bar = tqdm_ray.tqdm(total=total, desc=self._description, unit="step")
        loss = f" loss {metrics['loss']:.4g}" if "loss" in metrics else ""
        self._bar.set_description(f"{self._description}{loss}")
        self._bar.n = step
        self._bar.update(0)
        if step >= total:
            self._bar.close()


def train_worker(loop_config: dict) -> None:
    """What each Ray Train worker runs."""
    context = RayWorkerContext(loop_config["log_dir"], f"train {loop_config['component']}", loop_config["show_bar"])
    train(loop_config["component"], loop_config["config"], context, loop_config["after_step"])


def resolve_paths(config: TrainJobConfig) -> TrainJobConfig:
    """Relative local paths made absolute: Ray workers run in other directories."""
    absolute = lambda path: path if "://" in path else str(pathlib.Path(path).resolve())
    storage = absolute(config.run.storage_path)
    log_dir = config.run.log_dir
    if not log_dir:
        if "://" in storage:
            raise ValueError("run.log_dir must be set when run.storage_path is a URI")
        log_dir = str(pathlib.Path(storage) / config.run.name / "logs")
    data = dataclasses.replace(config.train.data, shards=tuple(absolute(s) for s in config.train.data.shards))
    return dataclasses.replace(
        config,
        run=dataclasses.replace(config.run, storage_path=storage, log_dir=absolute(log_dir)),
        train=dataclasses.replace(config.train, data=data),
    )


def check_token_shards(config: TrainConfig) -> None:
    """Token shards must match the dynamics model's vocabulary, actions and grid: say so if not."""
    from models.config import load_model_configs

    dynamics = load_model_configs(config.model).dynamics
    first = next(iter_samples(list_shards(config.data.shards)[0]))
    meta = decode_token_meta(first["json"])
    expected = {"num_codes": dynamics.num_codes, "num_actions": dynamics.num_actions,
                "grid_height": dynamics.token_height, "grid_width": dynamics.token_width}
    for key, value in expected.items():
        if meta[key] != value:
            raise ValueError(f"token shards have {key}={meta[key]} but the {config.model!r} dynamics model "
                             f"expects {value} (tokenize with the tokenizer and LAM of this model size)")


def memory_plan(component: str, config: TrainJobConfig) -> MemoryPlan:
    """The job's memory plan per GPU on its stated cluster (the model is built on the meta device)."""
    from models.config import load_model_configs
    from train.components import component as component_of

    if config.cluster is None:
        raise ValueError("the job config states no [cluster] to plan for")
    part = component_of(component)
    model_config = getattr(load_model_configs(config.train.model), part.name)
    train = config.train
    parallel = train.parallel
    return plan_memory(
        meta_model(lambda: part.build(model_config)),
        part.batch_shape(model_config, train.data.batch_size, train.data.window_frames),
        config.cluster, parallel.strategy, parallel.shard_group_size,
        parallel.activation_checkpointing_every if parallel.activation_checkpointing else 0,
        train.optim.grad_accumulation, compute_bytes=2 if parallel.mixed_precision == "bf16" else 4,
    )


def check_memory_plan(component: str, config: TrainJobConfig) -> MemoryPlan | None:
    """Refuse, printing the numbers, a job whose plan does not fit its stated cluster."""
    if config.cluster is None:
        return None
    plan = memory_plan(component, config)
    if not plan.fits:
        raise MemoryPlanError(f"the {component} job does not fit its cluster:\n{plan.table()}")
    return plan


def build_trainer(component: str, config: TrainJobConfig, after_step: StepHook | None = None, show_bar: bool = True):
    """The TorchTrainer for one component's run (paths already resolved)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r} (one of {', '.join(COMPONENTS)})")
    # Fail here, with a plain message, rather than in every worker.
    check_memory_plan(component, config)
    shards_of_rank(list_shards(config.train.data.shards), 0, config.scaling.workers)
    if component == "dynamics":
        check_token_shards(config.train)
    scaling = config.scaling
    return TorchTrainer(
        train_worker,
        train_loop_config={"component": component, "config": config.train, "log_dir": config.run.log_dir,
                           "after_step": after_step, "show_bar": show_bar},
        scaling_config=ScalingConfig(
            num_workers=scaling.workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker={"CPU": scaling.cpus_per_worker, **({"GPU": scaling.gpus_per_worker} if scaling.use_gpu else {})},
            placement_strategy=scaling.placement_strategy,
        ),
        run_config=RunConfig(
            name=config.run.name,
            storage_path=config.run.storage_path,
            failure_config=FailureConfig(max_failures=config.run.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=config.run.checkpoints_to_keep),
        ),
    )


def fit(component: str, config: TrainJobConfig, after_step: StepHook | None = None,
        progress: Callable[[dict], None] | None = None):
    """Run (or resume) the training job on the connected Ray cluster; returns the ray.train.Result.

    With `progress`, the workers show no progress bar; instead it is called on the driver with
    each metrics record rank 0 logs (every metrics.log_every steps), for a line per interval.
    """
    config = resolve_paths(config)
    trainer = build_trainer(component, config, after_step, show_bar=progress is None)
    if progress is None or "://" in config.run.log_dir:
        return trainer.fit()
    with MetricsFollower(pathlib.Path(config.run.log_dir) / METRICS_FILE, progress):
        return trainer.fit()


class MetricsFollower:
    """Calls `callback` with each step record appended to a metrics.jsonl while it is open,
    and with a {"event": "restart", ...} record when the workers start a second time (Ray
    Train restarted the worker group after a failure, from its last checkpoint or from scratch)."""

    def __init__(self, path: pathlib.Path, callback: Callable[[dict], None], poll_s: float = 1.0):
        self.path, self.callback, self.poll_s = path, callback, poll_s
        self._offset = path.stat().st_size if path.is_file() else 0  # a resumed run's old records are not news
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one reader at a time: each record is reported once
        self._starts = 0
        self._thread = threading.Thread(target=self._follow, name="metrics-follower", daemon=True)

    def __enter__(self) -> "MetricsFollower":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._read_new()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._read_new()

    def _read_new(self) -> None:
        with self._lock:
            if not self.path.is_file():
                return
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
            complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
            self._offset += len(complete)
            for line in complete.splitlines():
                record = json.loads(line)
                if "event" not in record:
                    self.callback(record)
                elif record["event"] == "start":
                    self._starts += 1
                    if self._starts > 1:
                        self.callback(record | {"event": "restart"})


def describe(record: dict, total: int) -> str:
    """One metrics record as a log line: step, loss, PSNR where the model has one, speed."""
    if record.get("event") == "restart":
        origin = "its last checkpoint" if record.get("resumed") else "scratch (no checkpoint yet)"
        return f"workers restarted after a failure: step {record['step']}/{total}, from {origin}"
    parts = [f"step {record['step']}/{total}", f"loss {record['loss']:.4g}"]
    parts += [f"{key} {record[key]:.2f}" for key in ("psnr",) if key in record]
    parts.append(f"{record['step_time_s']:.2f} s/step")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie train", description=__doc__.split("\n\n")[0])
    parser.add_argument("component", choices=COMPONENTS, help="which Genie component to train")
    parser.add_argument("--config", required=True, type=pathlib.Path,
                        help="job config TOML, e.g. jobs/configs/train_tokenizer_tiny.toml")
    parser.add_argument("--plan", action="store_true",
                        help="print the memory plan per GPU for the config's [cluster] and exit (1 if it does not fit)")
    options = parser.parse_args(argv)
    config = load(TrainJobConfig, options.config)
    if options.plan:
        plan = memory_plan(options.component, config)
        print(plan.table())
        return 0 if plan.fits else 1

    import ray

    ray.init()
    try:
        result = fit(options.component, config)
    finally:
        ray.shutdown()
    print(f"finished at step {result.metrics.get('step')}; latest checkpoint: {result.checkpoint.path}")
    print(f"metrics: {resolve_paths(config).run.log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
