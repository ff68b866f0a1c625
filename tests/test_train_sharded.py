"""FSDP2 on 2 CPU workers (gloo): sharded init from the meta device, mixed precision, hybrid
sharding, and sharded checkpoints that resume on 2 workers or on 1.

One spawn of 2 processes runs every distributed scenario (a process group costs ~10 s to
start here) and leaves its results in files; each test checks one of them.
"""

import dataclasses
import json
import pathlib
import shutil

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import webdataset

from schemas import token_shard as token_spec
from schemas.ids import clip_id
from train.checkpoint import load_meta, restore_training_state, save_checkpoint, state_digest
from train.context import LocalContext
from train.loop import TrainConfig, train
from train.metrics import MetricsConfig
from train.optimizer import OptimConfig, build_optimizer, build_schedule
from train.parallelize import ParallelConfig, build_model
from train.windows import DataConfig

pytestmark = pytest.mark.slow
T, SEED = 2, 3


def tiny_dynamics():
    from models.config import load_model_configs
    from models.dynamics import DynamicsModel

    return DynamicsModel(load_model_configs("tiny").dynamics)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens, actions and a fixed mask for the tiny dynamics model."""
    from models.config import load_model_configs

    config = load_model_configs("tiny").dynamics
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, config.num_codes, (2, 3, config.token_height, config.token_width), generator=generator)
    actions = torch.randint(0, config.num_actions, (2, 2), generator=generator)
    mask = torch.rand(tokens.shape, generator=generator) < 0.6
    mask[:, 0] = False
    return tokens, actions, mask


def token_shards(folder: pathlib.Path, shards: int = 2) -> pathlib.Path:
    """Token shards of 2-frame clips for the tiny dynamics model, drawn from 8 of its codes."""
    from models.config import load_model_configs

    dynamics = load_model_configs("tiny").dynamics
    grid = (dynamics.token_height, dynamics.token_width)
    rng = np.random.default_rng(0)
    folder.mkdir()
    for shard in range(shards):
        with webdataset.TarWriter(str(folder / f"tokens-{shard}.tar")) as writer:
            for index in range(2):
                meta = {"clip_id": clip_id(f"v{shard}", 10 * index, 10 * index + T), "video_id": f"v{shard}", "n_frames": T, "grid_height": grid[0],
                        "grid_width": grid[1], "num_codes": dynamics.num_codes, "num_actions": dynamics.num_actions,
                        "tokenizer_checkpoint": "t", "lam_checkpoint": "l", "source_shard": "s.tar",
                        "source_spec_version": "1"}
                tokens = rng.integers(0, 8, (T, *grid)).astype(np.uint16)
                writer.write(token_spec.encode_token_sample(tokens, rng.integers(0, 8, T - 1).astype(np.uint8), meta))
    return folder


def run_config(shards: pathlib.Path, parallel: ParallelConfig) -> TrainConfig:
    return TrainConfig(
        model="tiny",
        seed=SEED,
        data=DataConfig(shards=(str(shards),), window_frames=T, batch_size=1, shuffle_block_clips=1, loader_processes=0),
        optim=OptimConfig(max_steps=4, warmup_steps=0, lr=1e-2),
        parallel=parallel,
        metrics=MetricsConfig(log_every=1, checkpoint_every=2, sample_every=0, tensorboard=False),
    )


FSDP_FP32 = ParallelConfig(strategy="fsdp", mixed_precision="fp32")
FSDP_BF16 = ParallelConfig(strategy="fsdp", mixed_precision="bf16", reduce_dtype="fp32")


def full_state(model, optimizer=None) -> dict:
    """Model (and optimizer) state gathered to plain CPU tensors (collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = {"model": get_model_state_dict(model, options=options)}
    if optimizer is not None:
        state["optimizer"] = get_optimizer_state_dict(model, optimizer, options=options)
    return state


def scenarios(rank: int, world: int, folder: pathlib.Path) -> None:
    """What each of the 2 spawned workers runs; rank 0 saves the results under `folder`."""
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        device = torch.device("cpu")
        save = (lambda name, value: torch.save(value, folder / name)) if rank == 0 else (lambda name, value: None)

        # sharded from the meta device, initialised per shard
        model = build_model(tiny_dynamics, FSDP_FP32, device, SEED)
        save("init.pt", full_state(model)["model"])

        # the same model loaded with given weights (a whole model's), and its loss on a fixed batch
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        given = torch.load(folder / "given.pt", weights_only=True)
        set_model_state_dict(model, given, options=StateDictOptions(full_state_dict=True))
        save("loaded_loss.pt", model(*batch()).loss.detach())

        # bf16 policy: what forward sees, what the optimiser keeps
        model = build_model(tiny_dynamics, FSDP_BF16, device, SEED)
        seen = {}
        model.blocks[0].mlp.register_forward_pre_hook(lambda module, args: seen.update(forward=module.fc.weight.dtype))
        optimizer = build_optimizer(model, OptimConfig())
        model(*batch()).loss.backward()
        optimizer.step()
        dtypes = {"forward": str(seen["forward"]), "master": sorted({str(p.dtype) for p in model.parameters()}),
                  "grads": sorted({str(p.grad.dtype) for p in model.parameters()}),
                  "sharded": all(p.to_local().numel() < p.numel() for p in model.blocks[0].parameters() if p.ndim == 2)}
        save("dtypes.pt", dtypes)

        # a checkpoint written by 2 workers, and the state it holds (gathered only to check)
        scheduler = build_schedule(optimizer, OptimConfig())
        scheduler.step()
        checkpoint = folder / "direct_checkpoint"
        save_checkpoint(checkpoint, model, optimizer, scheduler, {"step": 1}, rank, {"data_positions": []})
        save("saved_state.pt", full_state(model, optimizer))
        fresh = build_model(tiny_dynamics, FSDP_BF16, device, SEED + 1)
        fresh_optimizer = build_optimizer(fresh, OptimConfig())
        restore_training_state(checkpoint, fresh, fresh_optimizer, build_schedule(fresh_optimizer, OptimConfig()))
        save("restored_2_state.pt", full_state(fresh, fresh_optimizer))

        # hybrid sharding: 2 replicas of a 1-rank shard group
        hybrid = build_model(tiny_dynamics, dataclasses.replace(FSDP_FP32, shard_group_size=1), device, SEED)
        weight = hybrid.blocks[0].mlp.fc.weight
        save("hybrid.pt", {"mesh": list(weight.device_mesh.shape), "placements": [str(p) for p in weight.placements],
                           "loss": hybrid(*batch()).loss.detach()})

        # the training loop: 4 steps straight, and from step 2's checkpoint again on 2 workers
        shards = folder / "shards"
        straight = folder / "straight"
        train("dynamics", run_config(shards, FSDP_BF16), LocalContext(straight, straight / "ckpt", keep=3, show_progress=False))
        dist.barrier()
        resumed = folder / "resumed_on_2"
        if rank == 0:
            shutil.copytree(straight / "ckpt" / "checkpoint_000000002", resumed / "ckpt" / "checkpoint_000000002")
        dist.barrier()
        train("dynamics", run_config(shards, FSDP_BF16), LocalContext(resumed, resumed / "ckpt", keep=3, show_progress=False))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("sharded")
    token_shards(folder / "shards")
    torch.manual_seed(11)
    given = tiny_dynamics()
    torch.save(given.state_dict(), folder / "given.pt")
    mp.spawn(scenarios, args=(2, folder), nprocs=2)
    return folder


def metrics(log_dir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in open(log_dir / "metrics.jsonl")]


def losses(log_dir: pathlib.Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in metrics(log_dir) if "loss" in r}


def test_sharded_init_from_meta_equals_the_whole_model_init(results):
    """A dynamics model built on the meta device, sharded over 2 workers and initialised per shard has the whole model's initial weights."""
    whole = build_model(tiny_dynamics, FSDP_FP32, torch.device("cpu"), SEED)  # one process: built whole
    sharded = torch.load(results / "init.pt", weights_only=True)
    assert sharded.keys() == whole.state_dict().keys()
    assert all(torch.equal(sharded[key], value) for key, value in whole.state_dict().items())


def test_sharded_model_loaded_with_weights_computes_what_the_whole_one_does(results):
    """Loaded with a whole model's weights, the sharded model's loss on a fixed batch is the whole model's."""
    whole = tiny_dynamics()
    whole.load_state_dict(torch.load(results / "given.pt", weights_only=True))
    expected = whole(*batch()).loss.detach()
    assert torch.allclose(torch.load(results / "loaded_loss.pt", weights_only=True), expected, rtol=1e-5)


def test_bf16_policy_computes_in_bf16_and_keeps_fp32_master_weights(results):
    """Under the bf16 policy forward sees bf16 weights; the sharded parameters and their gradients stay fp32."""
    dtypes = torch.load(results / "dtypes.pt", weights_only=True)
    assert dtypes == {"forward": "torch.bfloat16", "master": ["torch.float32"], "grads": ["torch.float32"], "sharded": True}


def test_hybrid_sharding_replicates_across_groups(results):
    """shard_group_size 1 on 2 workers makes a 2 x 1 (replicate, shard) mesh whose model computes the same loss."""
    hybrid = torch.load(results / "hybrid.pt", weights_only=True)
    assert hybrid["mesh"] == [2, 1] and hybrid["placements"] == ["R", "S(0)"]  # replicate x shard(dim 0)
    whole = build_model(tiny_dynamics, FSDP_FP32, torch.device("cpu"), SEED)
    assert torch.allclose(hybrid["loss"], whole(*batch()).loss.detach(), rtol=1e-5)


def test_checkpoint_of_2_workers_restores_the_same_state_on_2(results):
    """Restored on 2 workers, a 2-worker checkpoint gives back exactly the model and optimizer state it saved."""
    saved = torch.load(results / "saved_state.pt", weights_only=True)
    restored = torch.load(results / "restored_2_state.pt", weights_only=True)
    assert state_digest(saved) > 0
    assert_same_state(saved, restored)


def test_checkpoint_of_2_workers_restores_the_same_state_on_1(results):
    """Restored in one plain process, a 2-worker checkpoint gives back exactly the model and optimizer state it saved."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    saved = torch.load(results / "saved_state.pt", weights_only=True)
    model = build_model(tiny_dynamics, FSDP_BF16, torch.device("cpu"), SEED + 1)
    optimizer = build_optimizer(model, OptimConfig())
    scheduler = build_schedule(optimizer, OptimConfig())
    restore_training_state(results / "direct_checkpoint", model, optimizer, scheduler)
    assert_same_state(saved, {"model": model.state_dict(), "optimizer": get_optimizer_state_dict(model, optimizer)})
    assert scheduler.last_epoch == 1


def test_training_resumed_on_2_workers_continues_exactly(results):
    """From step 2's checkpoint, 2 workers log the steps and losses of the uninterrupted run."""
    straight, resumed = losses(results / "straight"), losses(results / "resumed_on_2")
    assert sorted(resumed) == [3, 4] and resumed == {step: straight[step] for step in (3, 4)}
    resume = next(r for r in metrics(results / "resumed_on_2") if r.get("event") == "resume")
    assert (resume["step"], resume["saved_world_size"], resume["world_size"]) == (2, 2, 2)


def test_training_resumed_on_1_worker_continues_the_run(results, tmp_path):
    """From a 2-worker checkpoint, one worker resumes at step 3 with the saved optimizer state and goes on learning."""
    shutil.copytree(results / "straight" / "ckpt" / "checkpoint_000000002", tmp_path / "ckpt" / "checkpoint_000000002")
    train("dynamics", run_config(results / "shards", FSDP_BF16), LocalContext(tmp_path, tmp_path / "ckpt", show_progress=False))
    straight, resumed = losses(results / "straight"), losses(tmp_path)
    assert sorted(resumed) == [3, 4]
    assert max(resumed.values()) < straight[1]  # continues from the trained weights, not from scratch
    resume = next(r for r in metrics(tmp_path) if r.get("event") == "resume")
    on_2 = next(r for r in metrics(results / "resumed_on_2") if r.get("event") == "resume")
    assert (resume["step"], resume["saved_world_size"], resume["world_size"]) == (2, 2, 1)
    assert resume["optimizer_digest"] == pytest.approx(on_2["optimizer_digest"], rel=1e-9)
    assert load_meta(tmp_path / "ckpt" / "checkpoint_000000004")["step"] == 4


def assert_same_state(expected: dict, actual: dict) -> None:
    """Equal nested state dicts: same keys, equal tensors and values."""
    if isinstance(expected, dict):
        assert sorted(map(str, expected)) == sorted(map(str, actual))
        for key in expected:
            assert_same_state(expected[key], actual[key])
    elif isinstance(expected, (list, tuple)):
        assert len(expected) == len(actual)
        for a, b in zip(expected, actual):
            assert_same_state(a, b)
    elif isinstance(expected, torch.Tensor):
        assert torch.equal(expected, actual.to(expected.device))
    else:
        assert expected == actual
