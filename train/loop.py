"""The per-worker training loop: plain PyTorch, the same under Ray Train and in a plain script.

Everything outside this process (rank, checkpoint storage, reporting, the progress bar) comes
through a WorkerContext (train/context.py); parallelism through train/parallelize.py. A run
resumes from the context's latest checkpoint: model weights, optimizer, schedule, step, RNG
and data position, so the resumed run sees the batches the interrupted one would have.
"""

import dataclasses
import hashlib
import json
import pathlib
import tempfile
import time
from collections.abc import Callable

import torch
import torch.distributed as dist

from schemas.config import from_dict, to_dict
from schemas.shard_io import list_shards
from train.checkpoint import load_meta, optimizer_digest, restore_rank_state, restore_training_state, save_checkpoint
from train.components import component
from train.context import WorkerContext
from train.hardware import peak_flops
from train.metrics import MetricsConfig, MetricsLog, record_rank, save_sample_grid
from train.optimizer import OptimConfig, build_optimizer, build_schedule
from train.parallelize import ParallelConfig, autocast, build_model, gradient_sync, sync_quantizers, unwrap
from train.windows import DataConfig, shards_of_rank, streams_of, window_loader

# Called after every optimiser step with (step, step the run started from, rank).
StepHook = Callable[[int, int, int], None]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run of one component, as every worker sees it."""

    model: str = "tiny"  # a model size (models/configs/<name>.toml) or the path of a models TOML file
    seed: int = 0  # initial weights (the same on every rank) and per-rank randomness
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    parallel: ParallelConfig = ParallelConfig()
    metrics: MetricsConfig = MetricsConfig()


def train(component_name: str, config: TrainConfig, context: WorkerContext, after_step: StepHook | None = None) -> dict:
    """Train one component to config.optim.max_steps, resuming if the context has a checkpoint.

    Returns the last logged metrics (rank 0; other ranks return an empty dict).
    """
    part = component(component_name)
    device, rank, world = context.device, context.world_rank, context.world_size
    accumulation = config.optim.grad_accumulation
    all_shards = list_shards(config.data.shards)
    shards = shards_of_rank(all_shards, rank, world)
    state = _build_or_restore(part, config, context, all_shards, streams_of(config.data, shards))
    model, optimizer, scheduler, model_config = state.model, state.optimizer, state.scheduler, state.model_config

    record_rank(context.log_dir, rank, event="start", node=context.node, step=state.start_step, resumed=state.resume is not None)
    if state.start_step >= config.optim.max_steps:
        return {}
    log = MetricsLog(context.log_dir, config.metrics.tensorboard) if rank == 0 else None
    if log:
        # a second "start" in one job means Ray Train restarted the workers (jobs/train.py says so)
        log.event("start", state.start_step, resumed=state.resume is not None)
        if state.resume:
            log.event("resume", state.start_step, **state.resume)

    positions = list(state.positions)
    loader = window_loader(config.data, part.sample_format(), shards, rank, state.start_batch, state.positions,
                           pin_memory=device.type == "cuda")
    batches = iter(loader)
    peak = peak_flops(device)
    flops_per_batch = None
    last_metrics: dict = {}
    interval = _Interval()
    model.train()
    for step in range(state.start_step + 1, config.optim.max_steps + 1):
        for micro in range(accumulation):
            waited = time.perf_counter()
            batch = next(batches)
            interval.data_wait += time.perf_counter() - waited
            interval.bad_samples += int(batch["bad_samples"])
            positions[int(batch["stream"])] = batch["position"].tolist()
            inputs = part.inputs(batch, device)
            if flops_per_batch is None:
                from models.flops import training_flops_per_step

                flops_per_batch = training_flops_per_step(unwrap(model), tuple(inputs[0].shape))
            with gradient_sync(model, micro == accumulation - 1):
                with autocast(device, config.parallel, model):
                    output = model(*inputs)
                (output.loss / accumulation).backward()
            interval.loss_sum += output.loss.detach().float()
            interval.batches += 1
            interval.tokens += part.tokens(model_config, inputs)
        max_norm = config.optim.grad_clip if config.optim.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        sync_quantizers(model)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        last_step = step == config.optim.max_steps
        if step % config.metrics.log_every == 0 or last_step:
            last_metrics = _interval_metrics(interval, output, grad_norm, scheduler, flops_per_batch, peak, world, device)
            interval = _Interval()
            if log:
                log.write(step, last_metrics)
        if rank == 0:
            context.progress(step, config.optim.max_steps, {k: last_metrics[k] for k in ("loss",) if k in last_metrics})
        if rank == 0 and config.metrics.sample_every and step % config.metrics.sample_every == 0:
            rows = part.sample_rows(inputs, output)
            if rows:
                save_sample_grid(context.log_dir / "samples" / f"step_{step:09d}.png", rows)
        if step % config.metrics.checkpoint_every == 0 or last_step:
            meta = _checkpoint_meta(part.name, step, model_config, config, world, all_shards, accumulation)
            with tempfile.TemporaryDirectory() as directory:
                save_checkpoint(pathlib.Path(directory), model, optimizer, scheduler, meta, rank,
                                {"data_positions": positions})
                context.report({"step": step, **last_metrics}, pathlib.Path(directory))
            if log:
                log.event("checkpoint", step)
        if after_step is not None:
            after_step(step, state.start_step, rank)
    del batches
    if log:
        log.close()
    return last_metrics


@dataclasses.dataclass
class _State:
    """A worker's model, optimizer and schedule, fresh or restored, and where training starts."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    model_config: object
    positions: list  # per loader stream: (epoch, block, windows consumed) to resume at
    start_step: int = 0
    start_batch: int = 0
    resume: dict | None = None  # what the resume event records


def _build_or_restore(part, config: TrainConfig, context: WorkerContext, all_shards: list[str], streams: int) -> _State:
    """The model (from the checkpoint's own config when resuming), parallelized, with its optimizer.

    Built sharded from the meta device under FSDP (train/parallelize.py); a resume then reads
    this rank's shards of the checkpoint, whatever the number of workers that wrote it.
    """
    from models.config import load_model_configs

    job_model_config = getattr(load_model_configs(config.model), part.name)
    with context.restored_checkpoint() as restored:
        meta = load_meta(restored) if restored else None
        model_config = from_dict(part.config_class(), meta["model_config"]) if meta else job_model_config
        # identical initial weights on every rank
        model = build_model(lambda: part.build(model_config), config.parallel, context.device, config.seed)
        optimizer = build_optimizer(model, config.optim)
        scheduler = build_schedule(optimizer, config.optim)
        state = _State(model, optimizer, scheduler, model_config, positions=[(0, 0, 0)] * streams)
        rank_state = None
        if restored:
            restore_training_state(restored, model, optimizer, scheduler)
            state.start_step = meta["step"]
            rank_state = restore_rank_state(restored, context.world_rank)
            if rank_state and _same_data(meta, config, context.world_size, all_shards):
                state.start_batch = meta["data_position"]["batches"]
                state.positions = [tuple(position) for position in rank_state["data_positions"]]
            state.resume = {"checkpoint": str(restored), "optimizer_digest": optimizer_digest(optimizer),
                            "data_batch": state.start_batch, "model_config_as_job": model_config == job_model_config,
                            "saved_world_size": meta["data_position"]["world_size"], "world_size": context.world_size}
        if rank_state is None:
            torch.manual_seed(config.seed * 1_000_003 + 7919 * context.world_rank + state.start_step + 1)
    return state


@dataclasses.dataclass
class _Interval:
    """What happened since the last metric record."""

    started: float = dataclasses.field(default_factory=time.perf_counter)
    loss_sum: torch.Tensor | float = 0.0
    batches: int = 0
    tokens: int = 0
    data_wait: float = 0.0
    bad_samples: int = 0


def _interval_metrics(interval: _Interval, output, grad_norm, scheduler, flops_per_batch, peak, world, device) -> dict:
    """Metrics averaged over ranks (model metrics from each rank's last micro-batch)."""
    if hasattr(grad_norm, "full_tensor"):
        grad_norm = grad_norm.full_tensor()  # a DTensor under FSDP
    names = sorted(output.metrics)
    local = [interval.loss_sum / max(1, interval.batches)] + [output.metrics[name].detach().float() for name in names]
    values = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device) for v in local])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(values)
        values /= dist.get_world_size()
    values = values.tolist()
    elapsed = time.perf_counter() - interval.started
    metrics = {"loss": values[0], **dict(zip(names, values[1:]))}
    metrics.update(
        lr=scheduler.get_last_lr()[0],
        grad_norm=float(grad_norm),
        tokens_per_s=interval.tokens * world / elapsed,
        step_time_s=elapsed / max(1, interval.batches),
        data_wait_fraction=interval.data_wait / elapsed,
        bad_samples=interval.bad_samples,
    )
    if peak:
        metrics["mfu"] = flops_per_batch * interval.batches / elapsed / peak
    return metrics


def _data_identity(config: TrainConfig, world: int, shards: list[str]) -> dict:
    data = config.data
    return {"world_size": world, "batch_size": data.batch_size, "loader_processes": data.loader_processes,
            "window_frames": data.window_frames, "seed": data.seed, "shuffle_block_clips": data.shuffle_block_clips,
            "interleave_shards": data.interleave_shards,
            "shards_sha1": hashlib.sha1(json.dumps(shards).encode()).hexdigest()}


def _checkpoint_meta(name, step, model_config, config, world, shards, accumulation) -> dict:
    return {"component": name, "step": step, "model_config": to_dict(model_config), "train_config": to_dict(config),
            "data_position": {"batches": step * accumulation, **_data_identity(config, world, shards)}}


def _same_data(meta: dict, config: TrainConfig, world: int, shards: list[str]) -> bool:
    """Whether the checkpoint's data position applies: same shards, split and stream settings."""
    position = dict(meta["data_position"])
    position.pop("batches")
    return position == _data_identity(config, world, shards)
