"""Sharded checkpoints on storage given as a URI, and what loading refuses."""

import pytest
import torch

from train.checkpoint import CheckpointError, latest_checkpoint, load_meta, save_checkpoint
from train.components import load_trained
from train.optimizer import OptimConfig, build_optimizer, build_schedule


def tiny_dynamics():
    from models.config import load_model_configs
    from models.dynamics import DynamicsModel

    return DynamicsModel(load_model_configs("tiny").dynamics)


def write(location: str, step: int) -> torch.nn.Module:
    from schemas.config import to_dict

    torch.manual_seed(step)
    model = tiny_dynamics()
    optimizer = build_optimizer(model, OptimConfig())
    meta = {"component": "dynamics", "step": step, "model_config": to_dict(model.config)}
    save_checkpoint(f"{location}/checkpoint_{step:09d}", model, optimizer, build_schedule(optimizer, OptimConfig()),
                    meta, 0, {"data_positions": []})
    return model


def test_checkpoint_on_an_fsspec_uri_loads_back():
    """Written to an fsspec URI (memory://), the newest checkpoint of a run is found and its model rebuilt."""
    write("memory://runs/dyn", 1)
    model = write("memory://runs/dyn", 2)
    newest = latest_checkpoint("memory://runs/dyn")
    assert str(newest).endswith("checkpoint_000000002") and load_meta(newest)["step"] == 2
    loaded = load_trained(newest, "dynamics")
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in model.state_dict().items())


def test_a_format_1_checkpoint_is_refused_with_a_message(tmp_path):
    """A checkpoint of the earlier full-state-dict format is refused, saying what it is."""
    (tmp_path / "meta.json").write_text('{"format": 1, "component": "dynamics"}')
    with pytest.raises(CheckpointError, match="format 1"):
        load_meta(tmp_path)
