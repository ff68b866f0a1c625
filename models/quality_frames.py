"""The quality model's input, without torch: which frames of a clip it sees, at what size.
Processing workers prepare it (models/quality.py, and torch, load only where the model runs)."""

import dataclasses
import json
import pathlib

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """The input fields of a QualityModelConfig: frames per clip and their size."""

    frames: int
    height: int
    width: int


def read_model_input(folder: str | pathlib.Path) -> ModelInput:
    """The input shape of a model folder (its config.json), read without torch."""
    model = json.loads((pathlib.Path(folder) / "config.json").read_text())["model"]
    return ModelInput(int(model["frames"]), int(model["height"]), int(model["width"]))


def pick_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """`count` evenly spaced frames of a clip (T, H, W, 3) -> (count, H, W, 3); the middle of
    each of `count` equal parts, so a clip's first and last frames (often inside a fade) are
    avoided."""
    index = ((np.arange(count) + 0.5) * len(frames) / count).astype(int)
    return frames[np.minimum(index, len(frames) - 1)]


def model_frames(frames: np.ndarray, config: ModelInput) -> np.ndarray:
    """A clip (T, H, W, 3) uint8 -> the model's input (K, h, w, 3) uint8: `config.frames` evenly
    spaced frames at the model's size (small: cheap to send to a scoring process). `config` is
    a ModelInput or a QualityModelConfig (same fields). Training evaluates through this too, so
    its figures are the scorer's."""
    size = (config.width, config.height)
    return np.stack([cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA)
                     for frame in pick_frames(frames, config.frames)])  # fmt: skip
