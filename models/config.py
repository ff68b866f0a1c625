"""Model configurations: one frozen dataclass per component, read from models/configs/*.toml.

A config file has the sections [tokenizer], [lam] and [dynamics] (with sub-tables for their
transformer stacks and quantisers); `load_model_configs("tiny" | "local" | "small" | "paper" | path)`
reads one (a file may start from a named one: `based_on = "tiny"`, then only the keys
it changes) through schemas/config.py, so an unknown or mistyped key is an error naming it,
and then checks that the three components agree with each other (token grid, vocabulary,
number of actions).
"""

import dataclasses
import math
import pathlib
import tomllib
from typing import Literal

from schemas.config import ConfigError, at_least, from_dict

CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"
NAMED_CONFIGS = ("tiny", "local", "small", "paper")


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """A stack of ST blocks: spatial attention, causal temporal attention, MLP (pre-norm)."""

    num_layers: int
    model_dim: int
    num_heads: int
    head_dim: int = 64  # per-head width, independent of model_dim / num_heads
    mlp_ratio: float = 4.0  # MLP hidden width = mlp_ratio * model_dim, rounded to 64
    qk_norm: bool = True  # RMS-normalise queries and keys per head (the paper's fix at scale)
    activation_checkpointing: bool = False  # recompute each block in backward to save memory
    temporal: bool = True  # causal temporal attention in each block; false: frames are independent (spatial only)

    @property
    def attention_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def mlp_dim(self) -> int:
        return max(64, 64 * round(self.mlp_ratio * self.model_dim / 64))


@dataclasses.dataclass(frozen=True)
class QuantizerConfig:
    """A VQ codebook with straight-through gradients and dead-code reset."""

    num_codes: int
    code_dim: int
    commitment_weight: float = 0.25  # beta in ||z - sg(e)||^2
    dead_code_patience: int = 200  # training steps a code may go unused before it counts as dead
    reset_dead_codes: bool = True  # move dead codes onto random encoder outputs of the batch
    # which outputs: "uniform" draws any; "error" draws in proportion to the squared distance
    # to their code (k-means++ seeding), so new codes go where the codebook fits worst
    reset_draw: Literal["uniform", "error"] = "uniform"
    # 0: the codebook learns by its loss term through the optimiser; > 0: each code is the
    # exponential moving average (this decay per step) of the inputs it was chosen for
    # (van den Oord et al. 2017, App. A.1), which follows a moving encoder far faster
    ema_decay: float = 0.0
    # compare unit vectors (ViT-VQGAN): lookup by cosine similarity, codes on the unit sphere;
    # keeps the codebook in use where plain Euclidean codes collapse onto a few entries
    l2_normalize: bool = False
    # training steps at the start that pass the inputs through unquantised: the encoder and
    # decoder first learn as a plain autoencoder, whose outputs the codebook is then fitted to
    bypass_steps: int = 0
    # > 0: the first quantised training step sets the codebook to k-means (k-means++ seeding,
    # this many Lloyd iterations) of that batch's inputs; 0: codes start as random draws of
    # them through the dead-code reset
    kmeans_init_iters: int = 0
    # data-parallel training: the EMA averages and usage counts sum every replica's batch
    # (an all-reduce in forward); otherwise only rank 0's count, as the trainer broadcasts its codebook
    ema_all_ranks: bool = False

    def __post_init__(self):
        at_least(self, bypass_steps=0, kmeans_init_iters=0)
        if self.dead_code_patience < 1:
            raise ConfigError(f"dead_code_patience must be >= 1, got {self.dead_code_patience}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}", key="ema_decay")


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """ST-ViViT VQ-VAE over pixels: frames -> (h, w) grid of discrete tokens per frame."""

    encoder: TransformerConfig
    decoder: TransformerConfig
    quantizer: QuantizerConfig
    patch_size: int = 4
    frame_height: int = 90
    frame_width: int = 160
    channels: int = 3
    max_frames: int = 16  # temporal positions; longer videos are coded in windows of this

    @property
    def grid(self) -> tuple[int, int]:
        return math.ceil(self.frame_height / self.patch_size), math.ceil(self.frame_width / self.patch_size)


@dataclasses.dataclass(frozen=True)
class LAMConfig:
    """Latent action model: VQ-VAE on raw pixels whose codes are the actions between frames."""

    encoder: TransformerConfig
    decoder: TransformerConfig
    quantizer: QuantizerConfig
    patch_size: int = 16
    frame_height: int = 90
    frame_width: int = 160
    channels: int = 3
    max_frames: int = 16
    # what the latent action of transition t -> t+1 is (models/lam.py): "frame" = the encoder's
    # summary of frame t+1 (the paper), "change" = how the summary changes from frame t to t+1
    action: Literal["frame", "change"] = "frame"
    # weight of the quantiser loss beside the prediction MSE: 1 = VQ-VAE (the paper); "per
    # element" = code_dim / (channels * height * width), as if both losses were sums
    quantizer_loss_weight: float | Literal["per_element"] = 1.0
    # training only: fraction of transitions whose continuous latent action reaches the
    # decoder instead of its code (0 = the paper's VQ-VAE; see models/lam.py)
    unquantized_fraction: float = 0.0
    # motion by candidate shifts of up to max_shift pixels (models/motion.py): the encoder also
    # sees each patch's cost volume against the frame before (motion_input); the decoder
    # predicts frame t+1 as frame t moved per patch by softmax shift kernels plus a change
    # (decoder_output "shift") instead of as frame t plus a change ("change", the paper's)
    motion_input: bool = False
    decoder_output: Literal["change", "shift"] = "change"
    max_shift: int = 12
    shift_stride: int = 2  # the decoder's candidate shifts: -max_shift..max_shift in these steps
    motion_temperature: float = 0.01  # of the cost volume's softmax, in mean squared error of [-1, 1] pixels
    # training loss: each pixel's squared error weighted by 1 + change_weight * |x_t+1 - x_t|
    # (mean over channels, normalised to mean weight 1): 0 = plain MSE (the paper); more makes
    # the few pixels that move (a player sprite) count beside the many that do not
    change_weight: float = 0.0
    # scroll, the motion of a whole row band (models/motion.py): the action query token of frame t
    # also sees each band of patch_size rows' horizontal cost volume against frame t-1
    # (band_motion_input); the decoder first moves frame t by softmax kernels computed from the
    # action alone (action_shift), so only the action can buy a scroll: "band" = each band
    # sideways, "patch" = each patch sideways then up or down (a sprite where it usually is)
    band_motion_input: bool = False
    action_shift: Literal["none", "band", "patch"] = "none"

    def __post_init__(self):
        if self.max_shift < 1:
            raise ConfigError(f"max_shift must be >= 1, got {self.max_shift}", key="max_shift")
        if self.change_weight < 0:
            raise ConfigError(f"change_weight must be >= 0, got {self.change_weight}", key="change_weight")
        if self.shift_stride < 1 or self.max_shift % self.shift_stride:
            raise ConfigError(f"shift_stride must divide max_shift {self.max_shift}, got {self.shift_stride}",
                              key="shift_stride")
        if not 0.0 <= self.unquantized_fraction < 1.0:
            raise ConfigError(f"unquantized_fraction must be in [0, 1), got {self.unquantized_fraction}",
                              key="unquantized_fraction")
        if self.quantizer_loss_weight != "per_element" and not self.quantizer_loss_weight >= 0:
            raise ConfigError(f"must be >= 0 or 'per_element', got {self.quantizer_loss_weight!r}",
                              key="quantizer_loss_weight")

    @property
    def kernel_shifts(self) -> int:
        """Candidate shifts per direction of the decoder's shift kernels."""
        return 2 * self.max_shift // self.shift_stride + 1

    @property
    def quantizer_weight(self) -> float:
        """The quantiser loss weight as a number."""
        if self.quantizer_loss_weight == "per_element":
            return self.quantizer.code_dim / (self.channels * self.frame_height * self.frame_width)
        return float(self.quantizer_loss_weight)

    @property
    def grid(self) -> tuple[int, int]:
        return math.ceil(self.frame_height / self.patch_size), math.ceil(self.frame_width / self.patch_size)


@dataclasses.dataclass(frozen=True)
class DynamicsConfig:
    """MaskGIT transformer over token grids, conditioned on latent actions."""

    transformer: TransformerConfig
    num_codes: int = 1024  # tokenizer vocabulary; id num_codes is the mask token
    num_actions: int = 8  # LAM codebook size
    token_height: int = 23
    token_width: int = 40
    max_frames: int = 16
    # "add": the action embedding is added to every token of the frame it leads to (the paper);
    # "token": it is prepended to the frame as one extra token.
    action_conditioning: Literal["add", "token"] = "add"
    mask_rate_min: float = 0.5  # training masks each frame after the first at a rate ~ U(min, max)
    mask_rate_max: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.mask_rate_min <= self.mask_rate_max <= 1.0:
            raise ConfigError(f"need 0 <= mask_rate_min <= mask_rate_max <= 1, "
                              f"got {self.mask_rate_min}, {self.mask_rate_max}")


@dataclasses.dataclass(frozen=True)
class ModelConfigs:
    """The three Genie components, as one config file describes them."""

    tokenizer: TokenizerConfig
    lam: LAMConfig
    dynamics: DynamicsConfig


def _path(name_or_path: str | pathlib.Path) -> pathlib.Path:
    return CONFIG_DIR / f"{name_or_path}.toml" if name_or_path in NAMED_CONFIGS else pathlib.Path(name_or_path)


def _read(name_or_path: str | pathlib.Path, seen: tuple[str, ...] = ()) -> dict:
    """A config file's tables; `based_on = "NAME"` starts from that named config and
    overrides only the keys the file gives."""
    path = _path(name_or_path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from None
    base = data.pop("based_on", None)
    if base is None:
        return data
    if base not in NAMED_CONFIGS or base in seen:
        raise ConfigError(f"{path}: based_on must name one of {', '.join(NAMED_CONFIGS)} (not itself), got {base!r}",
                          key="based_on")
    return _merge(_read(base, (*seen, str(name_or_path))), data)


def _merge(base: dict, changes: dict) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def load_model_configs(name_or_path: str | pathlib.Path) -> ModelConfigs:
    """Read a named config (tiny, local, small, paper) or a TOML file, and check its parts agree."""
    path = _path(name_or_path)
    configs = from_dict(ModelConfigs, _read(name_or_path))
    tokenizer, lam, dynamics = configs.tokenizer, configs.lam, configs.dynamics
    if (dynamics.token_height, dynamics.token_width) != tokenizer.grid:
        raise ConfigError(f"{path}: dynamics token grid {dynamics.token_height}x{dynamics.token_width} "
                          f"!= tokenizer grid {tokenizer.grid[0]}x{tokenizer.grid[1]}")
    if dynamics.num_codes != tokenizer.quantizer.num_codes:
        raise ConfigError(f"{path}: dynamics.num_codes {dynamics.num_codes} "
                          f"!= tokenizer.quantizer.num_codes {tokenizer.quantizer.num_codes}")
    if dynamics.num_actions != lam.quantizer.num_codes:
        raise ConfigError(f"{path}: dynamics.num_actions {dynamics.num_actions} "
                          f"!= lam.quantizer.num_codes {lam.quantizer.num_codes}")
    return configs
