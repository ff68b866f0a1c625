"""Video tokenizer (Genie Sec. 2.1): an ST-ViViT VQ-VAE that turns frames into discrete tokens.

Frames are cut into patch_size x patch_size patches (90x160 padded to 92x160 -> a 23x40
grid at patch 4), an ST-transformer encoder maps them to code_dim vectors, a vector
quantiser snaps each to one of num_codes codes, and an ST-transformer decoder maps the codes
back to pixels. Both transformers are causal in time, so the tokens of frame t depend only
on frames <= t: a generated frame can be decoded without waiting for later ones.

With `temporal = false` in the encoder and decoder configs the tokenizer is spatial only (a
plain ViT VQ-VAE): every frame is coded on its own. The tiny and small configs are, because
at equal compute that learns faster than the ST design (benchmarks/RESULTS.md, issue 12);
the paper config keeps the ST design.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.config import TokenizerConfig
from models.patches import from_patches, to_patches
from models.quantizer import VectorQuantizer
from models.st_transformer import STBlock, STTransformer


class TokenizerOutput(NamedTuple):
    recon: torch.Tensor  # (B, T, C, H, W) reconstruction in [0, 1] space (not clamped)
    tokens: torch.Tensor  # (B, T, h, w) int64
    loss: torch.Tensor  # () reconstruction MSE + quantiser loss
    metrics: dict[str, torch.Tensor]  # recon_mse, psnr, commitment, codebook_perplexity, codes_used, dead_codes


class VideoTokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        grid_height, grid_width = config.grid
        tokens_per_frame = grid_height * grid_width
        patch_dim = config.patch_size ** 2 * config.channels
        encoder, decoder, code_dim = config.encoder, config.decoder, config.quantizer.code_dim
        self.encoder_in = nn.Linear(patch_dim, encoder.model_dim)
        self.encoder = STTransformer(encoder, tokens_per_frame, config.max_frames)
        self.encoder_out = nn.Linear(encoder.model_dim, code_dim)
        self.quantizer = VectorQuantizer(config.quantizer)
        self.decoder_in = nn.Linear(code_dim, decoder.model_dim)
        self.decoder = STTransformer(decoder, tokens_per_frame, config.max_frames)
        self.decoder_out = nn.Linear(decoder.model_dim, patch_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        # the transformers initialise themselves; the projections in and out: N(0, 0.02)
        for linear in (self.encoder_in, self.encoder_out, self.decoder_in, self.decoder_out):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    @property
    def blocks(self) -> list[STBlock]:
        """Every transformer block, encoder then decoder (for checkpointing and sharding)."""
        return [*self.encoder.blocks, *self.decoder.blocks]

    def encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        """video: (B, T, C, H, W) in [0, 1], T <= max_frames -> (B, T, h*w, code_dim) before quantising."""
        patches = to_patches(video * 2 - 1, self.config.patch_size)  # (B, T, S, p*p*C) in [-1, 1]
        return self.encoder_out(self.encoder(self.encoder_in(patches)))

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        """quantized: (B, T, h*w, code_dim) -> (B, T, C, H, W) in [0, 1] space (not clamped)."""
        patches = self.decoder_out(self.decoder(self.decoder_in(quantized)))  # (B, T, S, p*p*C)
        config = self.config
        return from_patches(patches, config.patch_size, config.frame_height, config.frame_width) * 0.5 + 0.5

    def forward(self, video: torch.Tensor) -> TokenizerOutput:
        """video: (B, T, C, H, W) in [0, 1] -> reconstruction, tokens, loss and metrics."""
        self._check_video(video, max_frames=self.config.max_frames)
        B, T = video.shape[:2]
        quantized = self.quantizer(self.encode_latents(video))
        recon = self.decode_latents(quantized.quantized)
        recon_mse = F.mse_loss(recon.float(), video)
        with torch.no_grad():
            clamped_mse = F.mse_loss(recon.float().clamp(0, 1), video)
        metrics = {"recon_mse": recon_mse.detach(), "psnr": -10 * torch.log10(clamped_mse.clamp_min(1e-10))}
        tokens = quantized.codes.view(B, T, *self.config.grid)  # (B, T, h, w)
        return TokenizerOutput(recon, tokens, recon_mse + quantized.loss, metrics | quantized.metrics)

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """video: (B, T, C, H, W) in [0, 1] -> tokens (B, T, h, w) int64.

        Videos longer than max_frames are coded in consecutive windows of max_frames frames.
        """
        self._check_video(video)
        B, T = video.shape[:2]
        windows = video.split(self.config.max_frames, dim=1)
        codes = torch.cat([self.quantizer.nearest_codes(self.encode_latents(window).flatten(0, 2).float())
                           .view(B, window.shape[1], -1) for window in windows], dim=1)  # (B, T, S)
        return codes.view(B, T, *self.config.grid)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, T, h, w) int64 -> video (B, T, C, H, W) clamped to [0, 1], windowed like encode."""
        if tokens.ndim != 4 or tuple(tokens.shape[2:]) != self.config.grid:
            raise ValueError(f"expected tokens (B, T, {self.config.grid[0]}, {self.config.grid[1]}), "
                             f"got {tuple(tokens.shape)}")
        windows = tokens.flatten(2).split(self.config.max_frames, dim=1)  # (B, t, S) each
        video = torch.cat([self.decode_latents(self.quantizer.lookup(window)) for window in windows], dim=1)
        return video.float().clamp(0, 1)

    def _check_video(self, video: torch.Tensor, max_frames: int | None = None) -> None:
        config = self.config
        expected = (config.channels, config.frame_height, config.frame_width)
        if video.ndim != 5 or tuple(video.shape[2:]) != expected:
            raise ValueError(f"expected video (B, T, {', '.join(map(str, expected))}), got {tuple(video.shape)}")
        if max_frames is not None and video.shape[1] > max_frames:
            raise ValueError(f"video has {video.shape[1]} frames; this tokenizer trains on at most {max_frames}")
