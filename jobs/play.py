"""`genie play`: one image in, a new frame per chosen action out; or play it in the browser.

    genie play --tokenizer out/run/train/tokenizer-tiny --dynamics out/run/train/dynamics-tiny \\
        --image start.png --out play.png                  # one frame for each latent action
    genie play ... --actions 2,2,5,5,1 --out play.png      # a sequence: each frame follows the last
    genie play ... --image start.png --serve               # a local page: keys 0-7 play, R resets

--tokenizer and --dynamics take a checkpoint or a run folder (its newest checkpoint). The
image is fitted into 160x90 (scaled, then padded with black), the training frame size; with
--clips instead of --image, the first frame of the first clip there starts the world (past
a fade from black). The PNG shows the start image and the generated frames left to right (one row per branch).
--serve opens the play page on 127.0.0.1:--port (jobs/play_page.py) instead of writing a PNG.
"""

import argparse
import pathlib
import sys

import cv2
import numpy as np
import torch

from schemas.config import ConfigError
from schemas.shard import FRAME_HEIGHT, FRAME_WIDTH


def fit_image(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB of any size -> (90, 160, 3), aspect kept, padded with black."""
    scale = min(FRAME_WIDTH / image.shape[1], FRAME_HEIGHT / image.shape[0])
    width, height = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
    top, left = (FRAME_HEIGHT - height) // 2, (FRAME_WIDTH - width) // 2
    canvas[top:top + height, left:left + width] = resized
    return canvas


def read_image(path: pathlib.Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"cannot read an image from {path}")
    return fit_image(image[..., ::-1])


def play_image(world, image: np.ndarray, actions: list[int] | None, seed: int = 0) -> np.ndarray:
    """Frames (rows, 1 + n, 90, 160, 3) uint8: each row the start image then its generated frames.

    With actions: one row, one frame per action in sequence. Without: one row per latent
    action, each a single frame from the start image (what each action does there).
    """
    generator = torch.Generator().manual_seed(seed)
    start = torch.from_numpy(image).permute(2, 0, 1).float().div(255)  # (C, H, W)
    if actions is None:
        rows = world.num_actions
        world.reset(start.expand(rows, -1, -1, -1))
        frames = [world.step(torch.arange(rows), generator)]
    else:
        rows = 1
        world.reset(start[None])
        frames = [world.step(torch.tensor([action]), generator) for action in actions]
    return to_uint8(torch.stack([start.expand(rows, -1, -1, -1), *frames], dim=1))  # (rows, 1+n, ...)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(..., C, H, W) float in [0, 1] -> (..., H, W, C) uint8."""
    return (video.movedim(-3, -1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def write_grid(frames: np.ndarray, path: pathlib.Path) -> None:
    rows, columns, height, width, _ = frames.shape
    grid = frames.transpose(0, 2, 1, 3, 4).reshape(rows * height, columns * width, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(grid[..., ::-1])):
        raise OSError(f"cannot write {path}")


def load_world(tokenizer: str, dynamics: str, steps: int, temperature: float):
    from models.playable import PlayableWorld
    from train.checkpoint import latest_checkpoint
    from train.components import load_trained

    return PlayableWorld(load_trained(latest_checkpoint(tokenizer), "tokenizer"),
                         load_trained(latest_checkpoint(dynamics), "dynamics"), steps, temperature)


def first_clip_frame(locations: list[str], min_contrast: float = 8.0) -> np.ndarray:
    """The first frame (90, 160, 3) uint8 with something to see in the first readable clip of
    these clip shards: a clip that opens on a fade from black starts where the picture does
    (grey-level standard deviation >= min_contrast), or at frame 0 if it never does."""
    from schemas.shard import decode_sample
    from schemas.shard_io import iter_samples, list_shards

    for shard in list_shards(locations):
        for sample in iter_samples(shard):
            frames = decode_sample(sample)[0]  # (T, H, W, 3)
            contrast = frames.astype(np.float32).mean(-1).std(axis=(1, 2))  # (T,)
            visible = np.flatnonzero(contrast >= min_contrast)
            return frames[visible[0] if len(visible) else 0]
    raise ConfigError(f"no clip in {locations} to start playing from")


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that make a world and its start image (genie play, genie rollout)."""
    parser.add_argument("--tokenizer", required=True, help="tokenizer checkpoint or run folder")
    parser.add_argument("--dynamics", required=True, help="dynamics checkpoint or run folder")
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--image", type=pathlib.Path, help="the starting image (PNG, JPEG, ...)")
    start.add_argument("--clips", nargs="+", help="clip shards: the first clip's first frame starts the world")
    parser.add_argument("--steps", type=int, default=25, help="MaskGIT steps per frame")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)


def world_from_arguments(options: argparse.Namespace):
    """(PlayableWorld, start image (90, 160, 3) uint8) from add_world_arguments' options."""
    image = read_image(options.image) if options.image else first_clip_frame(options.clips)
    return load_world(options.tokenizer, options.dynamics, options.steps, options.temperature), image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie play", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    add_world_arguments(parser)
    parser.add_argument("--actions", help="comma-separated latent actions to play in sequence; default: each action once")
    parser.add_argument("--out", type=pathlib.Path, help="PNG to write (not with --serve)")
    parser.add_argument("--serve", action="store_true", help="play in the browser on a local page instead")
    parser.add_argument("--port", type=int, default=8771, help="the page's port on 127.0.0.1 (with --serve)")
    options = parser.parse_args(argv)
    if options.serve == bool(options.out):
        parser.error("give --out PNG, or --serve for the play page")
    try:
        actions = [int(a) for a in options.actions.split(",")] if options.actions else None
    except ValueError:
        parser.error(f"--actions must be comma-separated integers, got {options.actions!r}")
    world, image = world_from_arguments(options)
    if options.serve:
        from jobs.play_page import serve

        serve(world, image, options.port, options.seed)
        return 0
    frames = play_image(world, image, actions, options.seed)
    write_grid(frames, options.out)
    print(f"wrote {options.out}: {frames.shape[0]} row(s) of the start image and {frames.shape[1] - 1} generated frame(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
