"""Checkpoints of (untrained) models for tests of the jobs that load them, written by the
training code's own save_checkpoint, so they have whatever layout training writes."""

import pathlib

import torch

from schemas.config import to_dict
from train.checkpoint import save_checkpoint


def write_model_checkpoint(run: pathlib.Path, component: str, model: torch.nn.Module, step: int = 1,
                           window_frames: int | None = None) -> pathlib.Path:
    """A run folder holding one checkpoint of `model` as a trained `component`; returns the run folder."""
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    meta = {"component": component, "step": step, "model_config": to_dict(model.config)}
    if window_frames is not None:
        meta["data_position"] = {"window_frames": window_frames}
    save_checkpoint(run / f"checkpoint_{step:09d}", model, optimizer, scheduler, meta, rank=0, rank_state={})
    return run
