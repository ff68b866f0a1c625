"""Latent action model (Genie Sec. 2.1): learns discrete actions from unlabelled video.

The encoder reads raw pixels (the paper found pixels give more controllable actions than
tokens) cut into 16x16 patches, plus one learned action-query token per frame. Temporal
attention is causal, so the query token of frame t+1 has seen frames <= t+1. The latent
action a_t is quantised to one of num_codes (8) codes. The decoder sees only frames <= t and
a_t and predicts frame t+1 as a change to frame t: because the past alone cannot tell which
way things move next, the tiny codebook has to carry it. The decoder is only the training
signal; at inference `infer_actions` uses the encoder and codebook.

Two objectives, chosen by LAMConfig:
- the paper's (the config defaults; paper.toml): a_t is frame t+1's projected query
  (`action = "frame"`), every transition goes through the quantiser, and the quantiser loss
  is added with weight 1 as in VQ-VAE;
- the project's departure (tiny.toml, small.toml): a_t is the change of the projected query
  from frame t to t+1 (`action = "change"`: zero when nothing changes, free of the offset
  between frame positions); the quantiser loss is weighted per element
  (`quantizer_loss_weight = "per_element"`: one action of code_dim numbers explains a whole
  frame of C*H*W pixels, and weighted equally the commitment pull outweighs the
  reconstruction gradient reaching the action ~1000x); and `unquantized_fraction` of the
  training transitions feed the decoder their continuous action instead of its code
  (through codes alone the decoder sees no difference between actions until the codes
  happen to split along one, so nothing tells the encoder which way to move).
Measured on offline-world video (benchmarks/lam_actions.py, benchmarks/RESULTS.md "LAM
objective"): after 200 tiny steps neither has learned the world's actions (held-out NMI with
the true actions 0.022 for the paper's, 0.047 for the departure, which also keeps all 8 codes
in use against 5); the departure measures better, by a margin one seed cannot separate from
noise; on the synthetic-motion test (tests/test_models_lam.py) the departure separates the
two motions in 300 steps, while with unquantized_fraction 0 the tiny LAM used 2 codes and
separated them at chance (issue 9's review). So tiny.toml and small.toml keep the departure.
The PSNR the LAM logs is always the one through the codes (what inference gives).

Options for motion, all off by default and in every shipped config (measured in
benchmarks/RESULTS.md "Motion priors"; none has made the codes follow the world's actions):
`motion_input` adds each patch's cost volume against the frame before to the encoder's
tokens (models/motion.py), `decoder_output = "shift"` predicts frame t+1 as frame t moved
by per-patch shift kernels plus a change, and `change_weight` weights the training MSE
towards the pixels that change.

Options for scroll, off by default, on in local.toml (`genie run`'s LAM; benchmarks/lam_actions.py
variants "scroll" and "scroll-paper", RESULTS.md "Scroll options for the LAM"): with the
departure's tiny decoder the true action buys no PSNR over no action in 300 steps, so the
encoder gets no gradient to encode it. `action_shift` makes the decoder first move frame t by
kernels computed from the action alone ("band": each band of patch_size rows sideways;
"patch": each patch sideways and vertically), so a scroll is bought only through the
action; `band_motion_input` shows the action query each band's horizontal cost volume (the
whole width votes, where a single sky patch matches every shift). With both, the paper's
objective measured better than the departure (held-out NMI 0.25 / 0.21 against 0.20 / 0.17
at 600 steps, two seeds; 0.07 / 0.05 for the departure without them), so local.toml uses
the paper's objective with them.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models import motion
from models.config import LAMConfig
from models.patches import from_patches, to_patches
from models.quantizer import VectorQuantizer
from models.st_transformer import STBlock, STTransformer


class LAMOutput(NamedTuple):
    recon: torch.Tensor  # (B, T-1, C, H, W) predicted frames 1..T-1 in [0, 1] space (not clamped)
    actions: torch.Tensor  # (B, T-1) int64 in [0, num_codes)
    loss: torch.Tensor  # () prediction MSE + quantiser loss
    metrics: dict[str, torch.Tensor]  # recon_mse, psnr, commitment, codebook_perplexity, codes_used, dead_codes


class LatentActionModel(nn.Module):
    def __init__(self, config: LAMConfig):
        super().__init__()
        self.config = config
        grid_height, grid_width = config.grid
        tokens_per_frame = grid_height * grid_width
        patch_dim = config.patch_size ** 2 * config.channels
        encoder, decoder, code_dim = config.encoder, config.decoder, config.quantizer.code_dim
        self.encoder_in = nn.Linear(patch_dim, encoder.model_dim)
        self.motion_in = nn.Linear(2 * (2 * config.max_shift + 1), encoder.model_dim) if config.motion_input else None
        self.band_motion_in = nn.Linear(grid_height * (2 * config.max_shift + 1), encoder.model_dim) if config.band_motion_input else None
        self.action_query = nn.Parameter(torch.empty(encoder.model_dim))
        self.encoder = STTransformer(encoder, tokens_per_frame + 1, config.max_frames)
        self.encoder_out = nn.Linear(encoder.model_dim, code_dim)
        self.quantizer = VectorQuantizer(config.quantizer)
        self.decoder_in = nn.Linear(patch_dim, decoder.model_dim)
        self.action_in = nn.Linear(code_dim, decoder.model_dim)
        self.decoder = STTransformer(decoder, tokens_per_frame, config.max_frames - 1)
        shift_outputs = {"none": 0, "band": grid_height, "patch": 2 * tokens_per_frame}[config.action_shift]
        self.action_shift = nn.Linear(code_dim, shift_outputs * config.kernel_shifts) if shift_outputs else None
        # "shift": per patch, horizontal and vertical shift logits before the change
        self.decoder_out = nn.Linear(decoder.model_dim, patch_dim + (2 * config.kernel_shifts if config.decoder_output == "shift" else 0))
        self._init_weights()

    def _init_weights(self) -> None:
        # the transformers initialise themselves; the query N(0, 0.02); the projections
        # N(0, 1 / fan_in), so an action reaches the decoder at the scale of a token
        nn.init.normal_(self.action_query, std=0.02)
        for linear in (self.encoder_in, self.motion_in, self.band_motion_in, self.encoder_out, self.decoder_in, self.action_in):
            if linear is not None:
                nn.init.normal_(linear.weight, std=linear.in_features ** -0.5)
                nn.init.zeros_(linear.bias)
        # the predicted change starts at zero and the shift kernels at mostly "no shift":
        # the untrained decoder (nearly) copies the last frame
        nn.init.zeros_(self.decoder_out.weight)
        nn.init.zeros_(self.decoder_out.bias)
        shifts = self.config.kernel_shifts
        if self.config.decoder_output == "shift":
            with torch.no_grad():  # 90% on shift 0
                self.decoder_out.bias[-2 * shifts:].view(2, shifts)[:, shifts // 2] = math.log(9 * (shifts - 1))
        if self.action_shift is not None:  # 90% on shift 0
            nn.init.zeros_(self.action_shift.weight)
            nn.init.zeros_(self.action_shift.bias)
            with torch.no_grad():
                self.action_shift.bias.view(-1, shifts)[:, shifts // 2] = math.log(9 * (shifts - 1))

    @property
    def blocks(self) -> list[STBlock]:
        """Every transformer block, encoder then decoder (for checkpointing and sharding)."""
        return [*self.encoder.blocks, *self.decoder.blocks]

    def encode_actions(self, video: torch.Tensor) -> torch.Tensor:
        """video: (B, T, C, H, W) in [0, 1] -> (B, T-1, code_dim) continuous actions."""
        config = self.config
        pixels = video * 2 - 1
        x = self.encoder_in(to_patches(pixels, config.patch_size))  # (B, T, S, D)
        if self.motion_in is not None:
            x = x + self.motion_in(self._motion(pixels))
        query = self.action_query.to(x.dtype).expand(*x.shape[:2], 1, -1)  # (B, T, 1, D)
        if self.band_motion_in is not None:
            query = query + self.band_motion_in(self._band_motion(pixels).flatten(2))[:, :, None]
        x = self.encoder(torch.cat([query, x], dim=2))  # (B, T, 1+S, D)
        summary = self.encoder_out(x[:, :, 0])  # (B, T, code_dim): each frame's query token
        if config.action == "change":
            return summary[:, 1:] - summary[:, :-1]  # a_t: how the summary changes from frame t to t+1
        return summary[:, 1:]  # a_t: frame t+1's query, which has seen frames <= t+1

    def _motion(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (B, T, C, H, W) -> (B, T, S, 2K): each patch's cost volume (models/motion.py)."""
        return self._against_previous(pixels, motion.cost_volume)

    def _band_motion(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (B, T, C, H, W) -> (B, T, h, K): each row band's cost volume (models/motion.py)."""
        return self._against_previous(pixels, motion.band_cost_volume)

    def _against_previous(self, pixels: torch.Tensor, volume) -> torch.Tensor:
        """`volume` of each frame against the one before; zero for the first frame, which has none."""
        config = self.config
        B, T = pixels.shape[:2]
        costs = volume(pixels[:, :-1].flatten(0, 1), pixels[:, 1:].flatten(0, 1),
                       config.max_shift, config.patch_size, config.motion_temperature)
        costs = costs.view(B, T - 1, *costs.shape[1:])
        return torch.cat([torch.zeros_like(costs[:, :1]), costs], dim=1)

    def forward(self, video: torch.Tensor) -> LAMOutput:
        """video: (B, T, C, H, W) in [0, 1], 2 <= T <= max_frames -> predicted frames 1..T-1, actions, loss."""
        self._check_video(video, max_frames=self.config.max_frames)
        config = self.config
        patches = to_patches(video * 2 - 1, config.patch_size)  # (B, T, S, p*p*C)
        latent = self.encode_actions(video)  # (B, T-1, code_dim)
        quantized = self.quantizer(latent)
        actions = quantized.quantized
        mixed = self.training and config.unquantized_fraction > 0
        if mixed:
            continuous = torch.rand(*actions.shape[:-1], 1, device=actions.device) < config.unquantized_fraction
            actions = torch.where(continuous, latent.float(), actions)  # (B, T-1, code_dim)
        recon = self._predict(video, patches, actions)
        target = video[:, 1:]
        recon_mse = F.mse_loss(recon.float(), target)
        loss = recon_mse
        if config.change_weight > 0:
            weight = 1 + config.change_weight * (target - video[:, :-1]).abs().mean(2, keepdim=True)
            loss = ((recon.float() - target).pow(2) * weight).mean() / weight.mean()
        with torch.no_grad():
            # PSNR through the codes alone: what inference gives
            through_codes = self._predict(video, patches, quantized.quantized) if mixed else recon
            clamped_mse = F.mse_loss(through_codes.float().clamp(0, 1), target)
        metrics = {"recon_mse": recon_mse.detach(), "psnr": -10 * torch.log10(clamped_mse.clamp_min(1e-10))}
        loss = loss + config.quantizer_weight * quantized.loss
        return LAMOutput(recon, quantized.codes, loss, metrics | quantized.metrics)

    def _predict(self, video: torch.Tensor, patches: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Frames 1..T-1 from frames 0..T-2 and actions (B, T-1, code_dim) -> (B, T-1, C, H, W)."""
        config = self.config
        x = self.decoder_in(patches[:, :-1]) + self.action_in(actions)[:, :, None]  # (B, T-1, S, D)
        predicted = self.decoder_out(self.decoder(x))  # (B, T-1, S, p*p*C [+ 2K shift logits])
        patch_dim = patches.shape[-1]
        change = from_patches(predicted[..., :patch_dim], config.patch_size, config.frame_height, config.frame_width)
        last = video[:, :-1]
        B, T = last.shape[:2]
        grid_height, grid_width = config.grid
        if self.action_shift is not None:  # frame t moved by the action alone
            logits = self.action_shift(actions).float()
            if config.action_shift == "band":
                horizontal, vertical = logits.view(B * T, grid_height, 1, -1).softmax(-1).expand(-1, -1, grid_width, -1), None
            else:
                horizontal, vertical = logits.view(B * T, grid_height, grid_width, 2, -1).softmax(-1).unbind(-2)
            last = motion.apply_shift_kernels(last.flatten(0, 1), horizontal, vertical, config.patch_size,
                                              config.shift_stride).view(last.shape)
        if config.decoder_output == "shift":  # frame t moved by each patch's shift kernels
            logits = predicted[..., patch_dim:].float().reshape(B * T, grid_height, grid_width, 2, -1)
            horizontal, vertical = logits.softmax(-1).unbind(-2)
            last = motion.apply_shift_kernels(last.flatten(0, 1), horizontal, vertical, config.patch_size,
                                              config.shift_stride).view(last.shape)
        return last + change  # frame t (moved) plus the predicted change

    @torch.no_grad()
    def infer_actions(self, video: torch.Tensor) -> torch.Tensor:
        """video: (B, T, C, H, W) in [0, 1], 2 <= T <= max_frames -> (B, T-1) int64 action codes."""
        self._check_video(video, max_frames=self.config.max_frames)
        actions = self.encode_actions(video).float()  # (B, T-1, code_dim)
        return self.quantizer.nearest_codes(actions.flatten(0, 1)).view(actions.shape[:2])

    def _check_video(self, video: torch.Tensor, max_frames: int) -> None:
        config = self.config
        expected = (config.channels, config.frame_height, config.frame_width)
        if video.ndim != 5 or tuple(video.shape[2:]) != expected:
            raise ValueError(f"expected video (B, T, {', '.join(map(str, expected))}), got {tuple(video.shape)}")
        if not 2 <= video.shape[1] <= max_frames:
            raise ValueError(f"video has {video.shape[1]} frames; the LAM needs 2 to {max_frames}")
