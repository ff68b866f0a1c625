"""Vector quantiser (van den Oord et al. 2017) with usage statistics and dead-code reset.

Each input vector is replaced by its nearest codebook entry; gradients pass straight
through to the encoder. The loss is the codebook term ||sg(z) - e||^2 plus the commitment
term beta * ||z - sg(e)||^2. Codebooks collapse (a few codes take everything) unless
something pushes back: here a code unused for `dead_code_patience` training steps is dead
(counted in the metrics) and, with `reset_dead_codes`, moved onto a random encoder output
of the current batch. With `l2_normalize`, inputs and codes are compared as unit vectors
(Yu et al. 2022, ViT-VQGAN): the lookup is by cosine similarity and the quantised vectors
lie on the unit sphere, which keeps far more of the codebook in use. With `bypass_steps`,
the first training steps skip the quantiser (a plain autoencoder warm-up), and with
`kmeans_init_iters` the codebook starts as k-means of the first quantised batch's inputs.

Note for data-parallel training: the reset draws from each replica's own batch, so
replicas' codebooks diverge unless the trainer keeps them in step (e.g. broadcasts the
codebook from rank 0 after each step, or sets reset_dead_codes = false).
"""

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from models.config import QuantizerConfig


class QuantizerOutput(NamedTuple):
    quantized: torch.Tensor  # (..., code_dim) codebook vectors, straight-through to the input
    codes: torch.Tensor  # (...) int64 indices
    loss: torch.Tensor  # () codebook + commitment loss
    metrics: dict[str, torch.Tensor]  # codebook_perplexity, codes_used, dead_codes, commitment


class VectorQuantizer(nn.Module):
    def __init__(self, config: QuantizerConfig):
        super().__init__()
        self.config = config
        self.codebook = nn.Embedding(config.num_codes, config.code_dim)
        nn.init.normal_(self.codebook.weight)
        # training steps since each code was last chosen; starting at the patience makes the
        # first training batch re-seed every code it does not use (a data-dependent init)
        self.register_buffer("steps_unused", torch.full((config.num_codes,), config.dead_code_patience))
        if config.ema_decay:
            # running (count, sum) of the inputs each code was chosen for; code = sum / count
            self.codebook.weight.requires_grad_(False)
            self.register_buffer("ema_count", torch.ones(config.num_codes))
            self.register_buffer("ema_sum", self.codebook.weight.detach().clone())
        if config.bypass_steps or config.kmeans_init_iters:
            self.register_buffer("training_steps", torch.zeros((), dtype=torch.long))

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (..., code_dim) -> quantized (..., code_dim), codes (...)."""
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            if self.config.l2_normalize:
                z = F.normalize(z, dim=-1)
            flat = z.reshape(-1, self.config.code_dim)  # (M, code_dim)
            if self.training and self._warming_up(flat):
                codes = self.nearest_codes(flat)
                metrics = self._usage(codes) | {"commitment": torch.zeros((), device=z.device)}
                # zero, but a learned codebook stays in the graph: DDP expects a gradient for every parameter
                loss = 0.0 * self._codes().sum()
                return QuantizerOutput(z, codes.view(z.shape[:-1]), loss, metrics)
            codes = self.nearest_codes(flat)  # (M,)
            chosen = self.lookup(codes)  # (M, code_dim)
            codebook_loss = F.mse_loss(chosen, flat.detach())
            commitment = F.mse_loss(flat, chosen.detach())
            loss = self.config.commitment_weight * commitment
            if not self.config.ema_decay:
                loss = loss + codebook_loss
            quantized = flat + (chosen - flat).detach()  # straight-through estimator
            if self.training:
                counts, sums = self._batch_statistics(flat.detach(), codes)
                self._count_unused_steps(counts)
                if self.config.ema_decay:
                    self._ema_update(counts, sums)
            metrics = self._usage(codes) | {"commitment": commitment.detach()}
            if self.training and self.config.reset_dead_codes:
                self._reset_dead_codes(flat.detach(), chosen.detach())
        return QuantizerOutput(quantized.view(z.shape), codes.view(z.shape[:-1]), loss, metrics)

    @torch.no_grad()
    def nearest_codes(self, flat: torch.Tensor) -> torch.Tensor:
        """flat: (M, code_dim) -> (M,) index of the nearest code in Euclidean distance."""
        codebook = self._codes().float()  # (K, code_dim)
        if self.config.l2_normalize:
            return (F.normalize(flat, dim=-1) @ codebook.T).argmax(1)
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.T
                     + codebook.pow(2).sum(1))  # (M, K)
        return distances.argmin(1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (...) int64 -> (..., code_dim) codebook vectors."""
        return F.embedding(codes, self._codes())

    def _codes(self) -> torch.Tensor:
        """(K, code_dim) the codebook as used: its rows, or their unit vectors."""
        weight = self.codebook.weight
        if not self.config.l2_normalize:
            return weight
        # normalise a copy: the dead-code reset rewrites the weight in place after this
        # forward, and backward needs the values normalize saw
        return F.normalize(weight.clone(), dim=-1)

    @torch.no_grad()
    def _warming_up(self, flat: torch.Tensor) -> bool:
        """Count a training step; True while it is one of the bypass_steps (pass through
        unquantised). The first quantised step fits the codebook with k-means if configured.

        Reads a counter from the device, but only in runs that set these options."""
        if not hasattr(self, "training_steps"):
            return False
        step = int(self.training_steps)
        self.training_steps.add_(1)
        if step == self.config.bypass_steps and self.config.kmeans_init_iters:
            self._fit_codebook(flat.detach())
        return step < self.config.bypass_steps

    @torch.no_grad()
    def _fit_codebook(self, flat: torch.Tensor) -> None:
        """Set every code to k-means of the rows of `flat` (M, code_dim): k-means++ seeding
        (each next code drawn in proportion to the squared distance to the nearest code so far,
        so flat background, most of a frame, gets few codes), then Lloyd iterations in which
        an empty cluster keeps its code."""
        K = self.config.num_codes
        codes = torch.empty(K, flat.shape[1], dtype=flat.dtype, device=flat.device)
        codes[0] = flat[torch.randint(flat.shape[0], (), device=flat.device)]
        nearest = (flat - codes[0]).pow(2).sum(1)  # (M,) squared distance to the nearest code so far
        for index in range(1, K):
            codes[index] = flat[torch.multinomial(nearest + 1e-12, 1)[0]]
            nearest = torch.minimum(nearest, (flat - codes[index]).pow(2).sum(1))
        for _ in range(self.config.kmeans_init_iters):
            assigned = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codes.T + codes.pow(2).sum(1)).argmin(1)
            counts = torch.bincount(assigned, minlength=K).to(flat.dtype)  # (K,)
            sums = torch.zeros_like(codes).index_add_(0, assigned, flat)
            codes = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], codes)
        if self.config.ema_all_ranks and dist.is_available() and dist.is_initialized():
            dist.broadcast(codes, src=0)  # one codebook from this step on, so the all-reduced averages agree
        self.codebook.weight.copy_(codes)
        if self.config.ema_decay:
            self.ema_count.fill_(1.0)
            self.ema_sum.copy_(codes)
        self.steps_unused.zero_()

    @torch.no_grad()
    def _usage(self, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        counts = torch.bincount(codes, minlength=self.config.num_codes).float()  # (K,)
        probabilities = counts / counts.sum()
        entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum()
        return {
            "codebook_perplexity": entropy.exp(),
            "codes_used": (counts > 0).sum().float(),
            "dead_codes": (self.steps_unused >= self.config.dead_code_patience).sum().float(),
        }

    @torch.no_grad()
    def _batch_statistics(self, flat: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (K,) how often each code was chosen and (K, D) the sum of its inputs, over this
        replica's batch or, with ema_all_ranks, every replica's."""
        counts = torch.bincount(codes, minlength=self.config.num_codes).to(flat.dtype)
        sums = torch.zeros(self.config.num_codes, flat.shape[1], dtype=flat.dtype, device=flat.device)
        sums.index_add_(0, codes, flat)
        if self.config.ema_all_ranks and dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        return counts, sums

    @torch.no_grad()
    def _count_unused_steps(self, counts: torch.Tensor) -> None:
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)

    @torch.no_grad()
    def _ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        decay = self.config.ema_decay
        used = counts > 0  # an unused code keeps its average (the dead-code reset handles it)
        self.ema_count.copy_(torch.where(used, decay * self.ema_count + (1 - decay) * counts, self.ema_count))
        self.ema_sum.copy_(torch.where(used[:, None], decay * self.ema_sum + (1 - decay) * sums, self.ema_sum))
        self.codebook.weight.copy_(self.ema_sum / self.ema_count[:, None])

    @torch.no_grad()
    def _reset_dead_codes(self, flat: torch.Tensor, chosen: torch.Tensor) -> None:
        """Move dead codes onto random rows of `flat` (M, code_dim); with reset_draw = "error"
        drawn in proportion to each row's squared distance to its code `chosen` (M, code_dim).

        Written without data-dependent branches, so a step never waits on the device.
        """
        dead = self.steps_unused >= self.config.dead_code_patience  # (K,)
        K = self.config.num_codes
        if self.config.reset_draw == "error":
            errors = (flat - chosen).pow(2).sum(1)  # (M,)
            rows = torch.multinomial(errors.float() + 1e-12, K, replacement=True)
        else:
            rows = torch.randint(flat.shape[0], (K,), device=flat.device)
        candidates = flat[rows]  # (K, D)
        self.codebook.weight.copy_(torch.where(dead[:, None], candidates, self.codebook.weight))
        if self.config.ema_decay:  # a reset code starts its average afresh, at its new place
            self.ema_count.masked_fill_(dead, 1.0)
            self.ema_sum.copy_(torch.where(dead[:, None], candidates, self.ema_sum))
        self.steps_unused.masked_fill_(dead, 0)
