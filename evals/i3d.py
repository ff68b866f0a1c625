"""Inflated Inception-V1 (I3D; Carreira & Zisserman 2017, "Quo Vadis, Action Recognition?"),
the video network whose Kinetics-400 logits FVD compares (Unterthiner et al. 2018).

Written here in plain PyTorch, with the module and parameter names of the widely used
PyTorch port of DeepMind's Kinetics checkpoint (Conv3d_1a_7x7.conv3d.weight, Mixed_3b.b1b.bn.
running_mean, ..., logits.conv3d.bias), so a state dict converted from it loads unchanged.
Convolutions and max-pools pad like TensorFlow's "SAME" (computed from the input size, the
extra pixel after), batch norms use eps 1e-3, as in the original. Nothing is downloaded:
`load_i3d(path)` reads weights a user has, from a .safetensors file or a plain state dict
saved by torch.save (loaded with weights_only=True, so nothing is unpickled).

Input: (B, 3, T, 224, 224) in [-1, 1]; output: (B, num_classes) logits averaged over time.
"""

import pathlib

import torch
import torch.nn.functional as F
from torch import nn

# (name, kind, arguments) in forward order; an Inception module's six widths are
# (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3 "5x5", pool projection) as in Inception-V1
LAYERS = (
    ("Conv3d_1a_7x7", "conv", (64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "conv", (64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "conv", (192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "mixed", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "mixed", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "mixed", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "mixed", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "mixed", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "mixed", (384, 192, 384, 48, 128, 128)),
)
FEATURE_CHANNELS = 1024  # Mixed_5c's output: 384 + 384 + 128 + 128
KINETICS_CLASSES = 400


def same_padding(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """Pad (B, C, T, H, W) like TensorFlow's SAME: output size ceil(size / stride), extra after."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):  # W, H, T order for F.pad
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm + ReLU, or a plain biased conv for the logits."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm: bool = True, activation: bool = True):
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=not batch_norm)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(same_padding(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # zero padding, as the port this matches does (inputs to every pool are post-ReLU, >= 0)
        return F.max_pool3d(same_padding(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    def __init__(self, num_classes: int = KINETICS_CLASSES):
        super().__init__()
        channels = 3
        for name, kind, args in LAYERS:
            if kind == "conv":
                out, kernel, stride = args
                self.add_module(name, Unit3D(channels, out, kernel, stride))
                channels = out
            elif kind == "pool":
                self.add_module(name, MaxPool3dSame(*args))
            else:
                self.add_module(name, InceptionModule(channels, args))
                channels = args[0] + args[2] + args[4] + args[5]
        self.logits = Unit3D(channels, num_classes, batch_norm=False, activation=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> (B, 1024, T', H', W') Mixed_5c activations."""
        for name, _, _ in LAYERS:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> (B, num_classes) logits, averaged over time."""
        x = self.features(x)  # (B, 1024, T', 7, 7) at 224x224
        # the original's 2x7x7 average pool, stride 1 (shrunk to fit smaller inputs), then a
        # 1x1x1 conv to logits averaged over the positions that remain
        kernel = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
        x = self.logits(F.avg_pool3d(x, kernel, stride=1))  # (B, classes, t, h, w)
        return x.mean(dim=(2, 3, 4))


def load_i3d(path: str | pathlib.Path, device: torch.device | str = "cpu") -> InceptionI3d:
    """An I3D in eval mode with the weights of a .safetensors file or a torch.save'd state dict.

    The number of classes is read from the logits layer; every other tensor must match the
    architecture exactly (strict loading names any missing or unexpected key).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no I3D weights at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{path} is not a state dict of tensors")
    if "logits.conv3d.weight" not in state:
        raise ValueError(f"{path} has no 'logits.conv3d.weight': not an I3D state dict of this layout")
    model = InceptionI3d(num_classes=state["logits.conv3d.weight"].shape[0])
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)
