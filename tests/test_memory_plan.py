"""The memory plan per GPU: the paper configs on their stated cluster, a cluster too small, the activation model."""

import dataclasses
import pathlib

import pytest
import torch

from jobs.train import MemoryPlanError, TrainJobConfig, check_memory_plan, main, memory_plan
from schemas.config import ConfigError, load
from train.memory_plan import ClusterSpec, activation_bytes_per_token

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "jobs" / "configs"


@pytest.mark.parametrize("component", ["tokenizer", "lam", "dynamics"])
def test_paper_configs_fit_their_cluster(component):
    """Each paper-size job config passes the memory-plan check on its 8 x 8 H100 80 GB cluster."""
    config = load(TrainJobConfig, CONFIGS / f"train_{component}_paper.toml")
    assert (config.cluster.nodes, config.cluster.gpus_per_node, config.cluster.gpu) == (8, 8, "H100")
    plan = check_memory_plan(component, config)
    assert plan.fits and plan.total < 80e9


def test_dynamics_plan_counts_the_sharded_states():
    """The 10.1B dynamics model sharded over a node's 8 GPUs holds 16 bytes per parameter / 8 of state per GPU."""
    plan = memory_plan("dynamics", load(TrainJobConfig, CONFIGS / "train_dynamics_paper.toml"))
    assert 10.0e9 < plan.parameters_total < 10.2e9 and plan.shard_group == 8 and plan.global_batch == 512
    states = plan.parameters + plan.gradients + plan.optimizer
    assert states == pytest.approx(16 * plan.parameters_total / 8)
    assert plan.activations_without_checkpointing > 80e9 > plan.activations_with_checkpointing


def test_too_small_cluster_is_refused_with_the_numbers(tmp_path, capsys):
    """On 8 x 8 A10G (24 GB) the dynamics plan does not fit: the check refuses it and --plan prints the numbers."""
    text = (CONFIGS / "train_dynamics_paper.toml").read_text().replace('gpu = "H100"', 'gpu = "A10G"')
    path = tmp_path / "small_cluster.toml"
    path.write_text(text)
    config = load(TrainJobConfig, path)
    with pytest.raises(MemoryPlanError, match=r"DOES NOT FIT") as refused:
        check_memory_plan("dynamics", config)
    assert "optimizer (AdamW, fp32)" in str(refused.value) and "of 24 GB" in str(refused.value)
    assert main(["dynamics", "--config", str(path), "--plan"]) == 1
    printed = capsys.readouterr().out
    assert "10.1B parameters" in printed and "total" in printed and "DOES NOT FIT" in printed


def test_workers_must_match_the_cluster():
    """A stated cluster whose GPU count differs from the worker count is a config error naming scaling.workers."""
    config = load(TrainJobConfig, CONFIGS / "train_dynamics_paper.toml")
    with pytest.raises(ConfigError, match="'scaling.workers'"):
        dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, nodes=4))


def test_unknown_gpu_is_a_config_error():
    """A cluster naming a GPU the table does not know, without its memory, is refused naming the key."""
    with pytest.raises(ConfigError, match="'gpu'"):
        ClusterSpec(gpu="Z9000")
    assert ClusterSpec(gpu="Z9000", gpu_memory_gb=32).memory_gb == 32


@pytest.mark.parametrize("dims", [(64, 2, 32, 4.0), (256, 4, 64, 2.0)])
def test_activation_model_matches_what_a_block_saves(dims):
    """The plan's bytes per token per ST block are within 15% of what a bf16 block saves for backward."""
    from models.config import TransformerConfig
    from models.st_transformer import STBlock

    model_dim, heads, head_dim, mlp_ratio = dims
    config = TransformerConfig(num_layers=1, model_dim=model_dim, num_heads=heads, head_dim=head_dim, mlp_ratio=mlp_ratio)
    block = STBlock(config).to(torch.bfloat16)

    def saved_bytes(tokens_per_frame: int) -> int:
        storages = {}

        def pack(tensor):
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
            return tensor

        x = torch.randn(2, 4, tokens_per_frame, model_dim, dtype=torch.bfloat16, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            block(x)
        return sum(storages.values())

    per_token = (saved_bytes(80) - saved_bytes(40)) / (2 * 4 * 40)  # the slope: weights cancel out
    assert per_token == pytest.approx(activation_bytes_per_token(model_dim, config.attention_dim, config.mlp_dim), rel=0.15)
