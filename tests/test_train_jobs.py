"""`genie train` and `genie tokenize` on a real local Ray (2 CPUs, 2 training workers, gloo).

One Ray instance and one run per job serve the whole module (a 2-worker TorchTrainer
costs ~20 s to start): the tokenizer run is interrupted and rerun, the LAM run has a
worker SIGKILLed mid-way, their checkpoints feed the tokenize job, whose token shards feed
the dynamics run.
"""

import dataclasses
import json
import os
import pathlib
import signal

import pytest
import torch

from jobs.tokenize import REPORT_FILE, TokenizeJobConfig
from jobs.tokenize import run as run_tokenize
from jobs.resources import WorkerResources
from jobs.train import TrainJobConfig, fit
from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.config import load
from train.checkpoint import load_meta, restore_training_state, state_digest
from train.components import load_trained, video_from_frames
from schemas.shard_io import iter_samples, list_shards
from train.tokenize_clips import TokenizeConfig

pytestmark = pytest.mark.slow
CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "jobs" / "configs"


def tiny_job(component: str, shards, storage: pathlib.Path, steps: int) -> TrainJobConfig:
    """The component's tiny job config, pointed at test shards and shrunk to 2-frame windows."""
    config = load(TrainJobConfig, CONFIGS / f"train_{component}_tiny.toml")
    train = config.train
    return dataclasses.replace(
        config,
        run=dataclasses.replace(config.run, storage_path=str(storage), max_failures=1, checkpoints_to_keep=5),
        train=dataclasses.replace(
            train,
            data=dataclasses.replace(train.data, shards=tuple(map(str, shards)), window_frames=2, batch_size=1),
            optim=dataclasses.replace(train.optim, max_steps=steps, warmup_steps=1),
            metrics=dataclasses.replace(train.metrics, log_every=1, checkpoint_every=2, sample_every=2),
        ),
    )


def saved_optimizer(checkpoint: pathlib.Path, component: str) -> dict:
    """The full optimizer state of a (sharded) checkpoint, restored in this process."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    from train.optimizer import OptimConfig, build_optimizer, build_schedule

    model = load_trained(checkpoint, component).train()
    optimizer = build_optimizer(model, OptimConfig())
    restore_training_state(checkpoint, model, optimizer, build_schedule(optimizer, OptimConfig()))
    return get_optimizer_state_dict(model, optimizer)


def records(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, object_store_memory=300 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tokenizer_run(local_ray, clip_shards, tmp_path_factory):
    """The tiny tokenizer trained to step 2, then the same run rerun with max_steps 4."""
    storage = tmp_path_factory.mktemp("train")
    first = fit("tokenizer", tiny_job("tokenizer", [clip_shards], storage, steps=2))
    second = fit("tokenizer", tiny_job("tokenizer", [clip_shards], storage, steps=4))
    return storage / "tokenizer-tiny", first, second


@pytest.fixture(scope="module")
def lam_run(local_ray, clip_shards, tmp_path_factory):
    """The tiny LAM for 6 steps, rank 1's process SIGKILLed after step 3 on the first attempt."""

    def kill_rank_1(step, start_step, rank):
        if step == 3 and start_step == 0 and rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    storage = tmp_path_factory.mktemp("train")
    result = fit("lam", tiny_job("lam", [clip_shards], storage, steps=6), after_step=kill_rank_1)
    return storage / "lam-tiny", result


@pytest.fixture(scope="module")
def token_shards(tokenizer_run, lam_run, clip_shards, tmp_path_factory):
    """Two clip shards tokenized with the trained tiny tokenizer and LAM."""
    output = tmp_path_factory.mktemp("tokens")
    config = TokenizeJobConfig(
        clip_shards=tuple(str(path) for path in sorted(clip_shards.glob("*.tar"))[:2]),
        output=str(output),
        tokenize=TokenizeConfig(tokenizer_checkpoint=str(tokenizer_run[0]), lam_checkpoint=str(lam_run[0]),
                                window_frames=2, batch_windows=8),
        resources=WorkerResources(workers=2),
    )
    return output, config, run_tokenize(config)


def test_training_logs_metrics_tensorboard_and_samples(tokenizer_run):
    """A run logs loss, PSNR, codebook use and throughput as JSON lines and TensorBoard, and saves sample PNGs."""
    run_dir = tokenizer_run[0]
    metrics = [r for r in records(run_dir / "logs" / "metrics.jsonl") if "loss" in r]
    for name in ("loss", "psnr", "codebook_perplexity", "dead_codes", "tokens_per_s", "lr", "grad_norm"):
        assert all(name in record for record in metrics), name
    assert list((run_dir / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run_dir / "logs" / "samples").glob("*.png")) == ["step_000000002.png", "step_000000004.png"]
    starts = [records(run_dir / "logs" / "ranks" / f"rank{rank}.jsonl") for rank in range(2)]
    assert all(len(rank_starts) == 2 for rank_starts in starts)


def test_rerun_continues_the_step_count(tokenizer_run):
    """Rerunning a finished or interrupted run resumes from its checkpoint and continues its step count."""
    run_dir, first, second = tokenizer_run
    assert first.metrics["step"] == 2 and second.metrics["step"] == 4
    steps = [r["step"] for r in records(run_dir / "logs" / "metrics.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4]
    resume = [r for r in records(run_dir / "logs" / "metrics.jsonl") if r.get("event") == "resume"]
    assert [r["step"] for r in resume] == [2]
    assert load_meta(pathlib.Path(second.checkpoint.path))["step"] == 4


def test_killed_worker_restarts_from_its_checkpoint(lam_run):
    """A SIGKILLed worker makes the run restart from step 2's checkpoint, with its optimizer state, and finish at step 6."""
    run_dir, result = lam_run
    assert result.metrics["step"] == 6 and load_meta(pathlib.Path(result.checkpoint.path))["step"] == 6
    rank_1 = records(run_dir / "logs" / "ranks" / "rank1.jsonl")
    assert [(r["step"], r["resumed"]) for r in rank_1] == [(0, False), (2, True)]
    assert rank_1[0]["pid"] != rank_1[1]["pid"]
    resume = next(r for r in records(run_dir / "logs" / "metrics.jsonl") if r.get("event") == "resume")
    saved = saved_optimizer(run_dir / "checkpoint_000000002", "lam")
    assert resume["step"] == 2 and resume["optimizer_digest"] == pytest.approx(state_digest(saved), rel=1e-9)
    steps = [r["step"] for r in records(run_dir / "logs" / "metrics.jsonl") if "loss" in r]
    assert steps[-4:] == [3, 4, 5, 6]


def test_tokenize_writes_token_shards_that_read_back(token_shards, tokenizer_run, lam_run, clip_shards):
    """Every clip becomes a token sample whose tokens and actions are the trained encoders' outputs."""
    output, config, rows = token_shards
    assert [row["status"] for row in rows] == ["ok", "ok"] and [row["clips"] for row in rows] == [4, 4]
    assert len(records(output / REPORT_FILE)) == 2
    tokenizer = load_trained(tokenizer_run[0] / "checkpoint_000000004", "tokenizer")
    lam = load_trained(lam_run[0] / "checkpoint_000000006", "lam")
    for source in config.clip_shards:
        clips = [clip_spec.decode_sample(sample) for sample in iter_samples(source)]
        tokens = [token_spec.decode_token_sample(sample) for sample in iter_samples(str(output / pathlib.Path(source).name))]
        assert [meta["clip_id"] for _, meta in clips] == [meta["clip_id"] for _, _, meta in tokens]
        for (frames, _), (clip_tokens, actions, meta) in zip(clips, tokens):
            assert clip_tokens.shape == (20, 23, 40) and actions.shape == (19,)
            assert (meta["num_codes"], meta["num_actions"]) == (tokenizer.config.quantizer.num_codes, lam.config.quantizer.num_codes)
            video = video_from_frames(torch.from_numpy(frames)[None], torch.device("cpu"))[0]  # (20, C, H, W)
            # Batched differently, float sums may differ in the last bit and flip a rare near-tie.
            expected_tokens = tokenizer.encode(video[None, 2:4])[0]
            assert (expected_tokens == torch.from_numpy(clip_tokens[2:4].astype("int64"))).float().mean() > 0.99
            pairs = torch.stack([video[t : t + 2] for t in range(19)])  # every transition with its 2 frames
            assert (lam.infer_actions(pairs)[:, 0] == torch.from_numpy(actions.astype("int64"))).float().mean() > 0.9


def test_tokenize_rerun_skips_finished_shards(token_shards):
    """Tokenizing again leaves existing token shards alone and says so."""
    output, config, _ = token_shards
    before = {path.name: path.stat().st_mtime_ns for path in output.glob("*.tar")}
    rows = run_tokenize(config)
    assert [row["reason"] for row in rows] == ["already tokenized"] * 2
    assert {path.name: path.stat().st_mtime_ns for path in output.glob("*.tar")} == before


def test_dynamics_trains_on_token_shards_sharded_with_fsdp(token_shards, tmp_path_factory):
    """The tiny dynamics job trains on the tokenize job's shards under FSDP2, and a rerun restores its sharded state."""
    output = token_shards[0]
    storage = tmp_path_factory.mktemp("train")
    results = []
    for steps in (2, 4):
        config = tiny_job("dynamics", [output], storage, steps=steps)
        parallel = dataclasses.replace(config.train.parallel, strategy="fsdp")
        results.append(fit("dynamics", dataclasses.replace(config, train=dataclasses.replace(config.train, parallel=parallel))))
    assert [result.metrics["step"] for result in results] == [2, 4] and "accuracy" in results[1].metrics
    run_dir = storage / "dynamics-tiny"
    resume = next(r for r in records(run_dir / "logs" / "metrics.jsonl") if r.get("event") == "resume")
    saved = saved_optimizer(run_dir / "checkpoint_000000002", "dynamics")
    assert resume["optimizer_digest"] == pytest.approx(state_digest(saved), rel=1e-9)
    assert len(list_shards([str(output)])) == 2


def test_missing_or_too_few_shards_fail_before_any_worker_starts(clip_shards, tmp_path):
    """A shard folder that does not exist, or fewer shards than workers, is a plain error from the driver."""
    from schemas.shard_io import ShardError

    with pytest.raises(ShardError, match="does not exist"):
        fit("lam", tiny_job("lam", [tmp_path / "nowhere"], tmp_path, steps=2))
    with pytest.raises(ShardError, match="at least one shard per worker"):
        fit("lam", tiny_job("lam", [sorted(clip_shards.glob("*.tar"))[0]], tmp_path, steps=2))


def test_run_name_must_be_a_plain_folder_name():
    """A run name that could steer the storage path elsewhere is refused when the config loads."""
    from jobs.train import TrainJobConfig
    from schemas.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="'run.name': '../elsewhere' must be a plain folder name"):
        from_dict(TrainJobConfig, {"run": {"name": "../elsewhere"}})
