"""The per-worker training loop without Ray: a plain process with a LocalContext."""

import dataclasses
import json
import pathlib
import pickle

import numpy as np
import pytest
import torch
import webdataset

from schemas import ids
from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.shard_io import iter_samples
from train.checkpoint import CheckpointError, load_meta, restore_training_state, state_digest
from train.components import load_trained
from train.context import LocalContext
from train.loop import TrainConfig, train
from train.metrics import MetricsConfig
from train.optimizer import OptimConfig, build_optimizer, build_schedule
from train.parallelize import ParallelConfig, parallelize
from train.windows import DataConfig

T = 2


def one_window_shard(folder: pathlib.Path, clip_shards: pathlib.Path) -> pathlib.Path:
    """A shard holding one clip of exactly T real frames, so every batch is the same window."""
    sample = next(iter_samples(str(sorted(clip_shards.glob("*.tar"))[0])))
    frames, meta = clip_spec.decode_sample(sample)
    meta = {k: v for k, v in meta.items() if k != "spec_version"} | {"n_frames": T, "end_frame": meta["start_frame"] + T}
    folder.mkdir()
    with webdataset.TarWriter(str(folder / "one.tar")) as writer:
        writer.write(clip_spec.encode_sample(frames[:T], meta))
    return folder


def token_shard(folder: pathlib.Path, clips: int = 1) -> pathlib.Path:
    """A shard of token clips shaped for the tiny dynamics model, drawn from 8 of its codes."""
    from models.config import load_model_configs

    dynamics = load_model_configs("tiny").dynamics
    grid, codes, actions = (dynamics.token_height, dynamics.token_width), dynamics.num_codes, dynamics.num_actions
    rng = np.random.default_rng(0)
    folder.mkdir()
    with webdataset.TarWriter(str(folder / "tokens.tar")) as writer:
        for index in range(clips):
            meta = {"clip_id": ids.clip_id("v", index, index + T), "video_id": "v", "n_frames": T, "grid_height": grid[0], "grid_width": grid[1],
                    "num_codes": codes, "num_actions": actions, "tokenizer_checkpoint": "t", "lam_checkpoint": "l",
                    "source_shard": "s.tar", "source_spec_version": "1"}
            tokens = rng.integers(0, 8, (T, *grid)).astype(np.uint16)
            writer.write(token_spec.encode_token_sample(tokens, rng.integers(0, actions, T - 1).astype(np.uint8), meta))
    return folder


def config(shards: pathlib.Path, steps: int, lr: float = 2e-3) -> TrainConfig:
    return TrainConfig(
        model="tiny",
        data=DataConfig(shards=(str(shards),), window_frames=T, batch_size=1, shuffle_block_clips=1, loader_processes=1),
        optim=OptimConfig(max_steps=steps, warmup_steps=0, lr=lr),
        parallel=ParallelConfig(mixed_precision="fp32"),
        metrics=MetricsConfig(log_every=1, checkpoint_every=2, sample_every=0, tensorboard=False),
    )


def restored(checkpoint: pathlib.Path, component_name: str, run: TrainConfig) -> tuple[dict, dict]:
    """The full model and optimizer state of a checkpoint, restored in this process."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    model = load_trained(checkpoint, component_name).train()
    optimizer = build_optimizer(model, run.optim)
    restore_training_state(checkpoint, model, optimizer, build_schedule(optimizer, run.optim))
    return model.state_dict(), get_optimizer_state_dict(model, optimizer)


def logged_losses(log_dir: pathlib.Path) -> list[float]:
    return [record["loss"] for record in map(json.loads, open(log_dir / "metrics.jsonl")) if "loss" in record]


@pytest.mark.parametrize("component, steps, lr, precision", [
    ("tokenizer", 8, 2e-3, "fp32"), ("lam", 10, 2e-3, "bf16"), ("dynamics", 10, 1e-2, "fp32")])
def test_loss_falls_on_a_repeated_batch(component, steps, lr, precision, clip_shards, tmp_path):
    """Trained again and again on one window, each component's loss ends well below where it began."""
    shards = token_shard(tmp_path / "shards") if component == "dynamics" else one_window_shard(tmp_path / "shards", clip_shards)
    run = dataclasses.replace(config(shards, steps, lr=lr), parallel=ParallelConfig(mixed_precision=precision))
    train(component, run, LocalContext(tmp_path / "logs", tmp_path / "checkpoints", show_progress=False))
    losses = logged_losses(tmp_path / "logs")
    assert len(losses) == steps
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:2]), losses


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    """Crashed after step 2 and rerun, dynamics training (random masks) ends with the same weights as a straight run."""
    shards = token_shard(tmp_path / "shards", clips=3)

    def crash(step, start_step, rank):
        if step == 2:
            raise KeyboardInterrupt("simulated crash after step 2")

    train("dynamics", config(shards, 4), LocalContext(tmp_path / "straight", tmp_path / "straight" / "ckpt", show_progress=False))
    interrupted = LocalContext(tmp_path / "resumed", tmp_path / "resumed" / "ckpt", show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        train("dynamics", config(shards, 4), interrupted, after_step=crash)
    train("dynamics", config(shards, 4), interrupted)
    straight = load_trained(tmp_path / "straight" / "ckpt" / "checkpoint_000000004", "dynamics").state_dict()
    resumed = load_trained(tmp_path / "resumed" / "ckpt" / "checkpoint_000000004", "dynamics").state_dict()
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)
    assert logged_losses(tmp_path / "straight") == logged_losses(tmp_path / "resumed")
    events = [json.loads(line) for line in open(tmp_path / "resumed" / "metrics.jsonl") if '"event"' in line]
    resume = next(event for event in events if event["event"] == "resume")
    _, optimizer = restored(tmp_path / "resumed" / "ckpt" / "checkpoint_000000002", "dynamics", config(shards, 4))
    assert resume["step"] == 2 and resume["optimizer_digest"] == pytest.approx(state_digest(optimizer), rel=1e-9)


class Exploit:
    """A pickle that would run a command when loaded."""

    def __reduce__(self):
        import os

        return os.system, ("touch exploited",)


def test_checkpoint_rebuilds_its_model_and_refuses_pickles(clip_shards, tmp_path, monkeypatch):
    """A checkpoint carries its model config, rebuilds the trained model, and never unpickles objects."""
    monkeypatch.chdir(tmp_path)
    shards = one_window_shard(tmp_path / "shards", clip_shards)
    train("lam", config(shards, 2), LocalContext(tmp_path / "logs", tmp_path / "ckpt", show_progress=False))
    checkpoint = tmp_path / "ckpt" / "checkpoint_000000002"
    meta = load_meta(checkpoint)
    assert meta["component"] == "lam" and meta["step"] == 2 and meta["model_config"]["patch_size"] == 16
    model = load_trained(checkpoint, "lam")
    saved, _ = restored(checkpoint, "lam", config(shards, 2))
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items())
    (checkpoint / ".metadata").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="never needs"):
        load_trained(checkpoint, "lam")
    assert not (tmp_path / "exploited").exists()


def test_gradient_accumulation_takes_micro_batches_per_step(clip_shards, tmp_path):
    """With grad_accumulation 3, each optimiser step consumes 3 batches, and the data position says so."""
    shards = one_window_shard(tmp_path / "shards", clip_shards)
    run = config(shards, 2)
    run = dataclasses.replace(run, optim=dataclasses.replace(run.optim, grad_accumulation=3))
    train("lam", run, LocalContext(tmp_path / "logs", tmp_path / "ckpt", show_progress=False))
    assert load_meta(tmp_path / "ckpt" / "checkpoint_000000002")["data_position"]["batches"] == 6
    assert len(logged_losses(tmp_path / "logs")) == 2


def test_fsdp_is_refused_for_models_with_a_quantizer():
    """Sharding a model whose quantiser rewrites its codebook in forward is a clear configuration error."""
    from models.config import load_model_configs
    from models.lam import LatentActionModel

    model = LatentActionModel(load_model_configs("tiny").lam)
    with pytest.raises(ValueError, match="quantiser"):
        parallelize(model, ParallelConfig(strategy="fsdp"), torch.device("cpu"))


def test_weight_decay_applies_to_linear_weights_only():
    """Embeddings, codebooks, position tables, norms and biases get no weight decay; every linear weight does."""
    from models.config import load_model_configs
    from models.dynamics import DynamicsModel
    from models.tokenizer import VideoTokenizer

    configs = load_model_configs("tiny")
    for model in (DynamicsModel(configs.dynamics), VideoTokenizer(configs.tokenizer)):
        decayed, plain = build_optimizer(model, OptimConfig(weight_decay=0.1)).param_groups
        assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
        names = {id(p): name for name, p in model.named_parameters()}
        decayed_names = {names[id(p)] for p in decayed["params"]}
        linear_weights = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
        assert decayed_names == linear_weights
        assert not any(("embedding" in name or "codebook" in name or "position" in name) for name in decayed_names)
        assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
