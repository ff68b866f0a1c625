"""AdamW with linear warmup then cosine decay, as in nanoGPT and the Genie paper (App. F)."""

import dataclasses
import math

import torch
from torch import nn

from schemas.config import ConfigError, at_least, in_range


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimiser, learning-rate schedule, step count and gradient handling."""

    max_steps: int = 1000  # optimiser steps in the whole run (a resumed run continues towards it)
    lr: float = 3e-4  # peak learning rate, reached at the end of warmup
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio at max_steps
    warmup_steps: int = 100  # linear warmup from 0
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.05  # on linear layers' weights only: not on embeddings, codebooks, positions, norms, biases
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    grad_accumulation: int = 1  # micro-batches per optimiser step

    def __post_init__(self):
        at_least(self, max_steps=1, lr=0.0, warmup_steps=0, weight_decay=0.0, grad_clip=0.0, grad_accumulation=1)
        in_range(self, "min_lr_ratio", 0.0, 1.0)
        for index, beta in enumerate(self.betas):
            if not 0.0 <= beta < 1.0:
                raise ConfigError(f"item {index} must be in [0, 1), got {beta!r}", key="betas")


def decayed_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters weight decay applies to: the weights of linear layers.

    An embedding table, a codebook or a position table is a lookup, not a map: decay would
    pull rarely used rows (codes, actions) towards zero between their updates. Norm gains
    and biases are not decayed either (nanoGPT and the paper decay matrices of maps only).
    """
    return {id(module.weight) for module in model.modules() if isinstance(module, nn.Linear)}


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on linear layers' weights only (see decayed_parameters)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    decayed = decayed_parameters(model)
    groups = [
        {"params": [p for p in parameters if id(p) in decayed], "weight_decay": config.weight_decay},
        {"params": [p for p in parameters if id(p) not in decayed], "weight_decay": 0.0},
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
