"""AdamW with linear warmup then cosine decay, as in nanoGPT and the Genie paper (App. F)."""

import dataclasses
import math

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimiser, learning-rate schedule, step count and gradient handling."""

    max_steps: int = 1000  # optimiser steps in the whole run (a resumed run continues towards it)
    lr: float = 3e-4  # peak learning rate, reached at the end of warmup
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio at max_steps
    warmup_steps: int = 100  # linear warmup from 0
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.05  # applied to matrices only, not to norms, biases or embeddings' gains
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    grad_accumulation: int = 1  # micro-batches per optimiser step

    def __post_init__(self):
        if self.max_steps < 1 or self.grad_accumulation < 1 or self.warmup_steps < 0:
            raise ValueError("max_steps and grad_accumulation must be >= 1, warmup_steps >= 0")


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on parameters of 2+ dimensions only."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def build_schedule(optimizer: torch.optim.Optimizer, config: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning-rate multiplier per step: warmup to 1, then cosine down to min_lr_ratio."""

    def multiplier(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / (config.warmup_steps + 1)
        progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
