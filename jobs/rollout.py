"""`genie rollout`: what the latent actions do over time, as a video and a grid.

    genie rollout --tokenizer RUN --dynamics RUN --image start.png --actions 2,2,2,5,5,1 --video rollout.mp4
    genie rollout --tokenizer RUN --dynamics RUN --clips out/run/ingest/shards --frames 8 --grid actions.png

--video plays the action sequence from the start image (--image, or --clips: the first
clip's first frame) and writes every frame, the start image
first, as an MP4 (H.264 through ffmpeg) or a GIF, by the file's suffix, each pixel shown as
a 4x4 block at the training rate of 10 frames per second. --grid holds each latent action
for --frames frames: a row per action, columns in time, the start image first.
"""

import argparse
import pathlib
import sys

import numpy as np
import torch

from jobs.play import add_world_arguments, world_from_arguments
from schemas.shard import FRAME_RATE

VIDEO_SCALE = 4  # 160x90 frames -> 640x360 video
VIDEO_SUFFIXES = (".mp4", ".gif")


def play_sequence(world, image: np.ndarray, actions: list[int], seed: int = 0) -> np.ndarray:
    """The start image then one frame per action: (1 + len(actions), 90, 160, 3) uint8."""
    from jobs.play import play_image

    return play_image(world, image, actions, seed)[0]


def hold_each_action(world, image: np.ndarray, frames: int, seed: int = 0) -> np.ndarray:
    """(num_actions, 1 + frames, 90, 160, 3) uint8: row a holds latent action a for `frames` frames."""
    from jobs.play import to_uint8

    generator = torch.Generator().manual_seed(seed)
    start = torch.from_numpy(image).permute(2, 0, 1).float().div(255)  # (C, H, W)
    rows = world.num_actions
    world.reset(start.expand(rows, -1, -1, -1))
    generated = [world.step(torch.arange(rows), generator) for _ in range(frames)]
    return to_uint8(torch.stack([start.expand(rows, -1, -1, -1), *generated], dim=1))


def write_video(frames: np.ndarray, path: pathlib.Path, fps: int = FRAME_RATE) -> None:
    """(n, H, W, 3) uint8 RGB -> an MP4 or GIF (by suffix), pixels as VIDEO_SCALE-square blocks."""
    path = pathlib.Path(path)
    if path.suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"a rollout video is {' or '.join(VIDEO_SUFFIXES)}, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(gif_bytes(frames, fps))
        partial.replace(path)
        return
    from world.encoder import VideoWriter

    # the writer takes 320x180 frames (the world's canvas, 2x ours) and scales them up itself
    height, width = frames.shape[1:3]
    with VideoWriter(path, width * VIDEO_SCALE, height * VIDEO_SCALE, fps) as writer:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame.repeat(2, 0).repeat(2, 1)))


def gif_bytes(frames: np.ndarray, fps: int = FRAME_RATE) -> bytes:
    """(n, H, W, 3) uint8 RGB -> a looping GIF, pixels as VIDEO_SCALE-square blocks."""
    import io

    from PIL import Image

    images = [Image.fromarray(frame.repeat(VIDEO_SCALE, 0).repeat(VIDEO_SCALE, 1)) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    return buffer.getvalue()


def write_action_grid(rows: np.ndarray, path: pathlib.Path, scale: int = 1) -> None:
    """(num_actions, columns, H, W, 3) uint8 -> a PNG with each row labelled by its action."""
    from evals.report import frame_grid, write_png

    write_png(frame_grid(rows, scale=scale, labels=[f"action {a}" for a in range(len(rows))]), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie rollout", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    add_world_arguments(parser)
    parser.add_argument("--actions", help="comma-separated latent actions played in sequence (for --video)")
    parser.add_argument("--video", type=pathlib.Path, help="MP4 or GIF of the action sequence")
    parser.add_argument("--grid", type=pathlib.Path, help="PNG: a row per latent action, columns in time")
    parser.add_argument("--frames", type=int, default=8, help="frames each grid row holds its action")
    parser.add_argument("--scale", type=int, default=1, help="grid pixels per frame pixel")
    options = parser.parse_args(argv)
    if not options.video and not options.grid:
        parser.error("nothing to write: give --video and/or --grid")
    if options.video and options.video.suffix not in VIDEO_SUFFIXES:
        parser.error(f"--video must end in {' or '.join(VIDEO_SUFFIXES)}")
    if options.video and not options.actions:
        parser.error("--video plays --actions: give them")
    if options.frames < 1 or options.scale < 1:
        parser.error("--frames and --scale must be at least 1")
    try:
        actions = [int(a) for a in options.actions.split(",")] if options.actions else []
    except ValueError:
        parser.error(f"--actions must be comma-separated integers, got {options.actions!r}")
    world, image = world_from_arguments(options)
    if options.video:
        frames = play_sequence(world, image, actions, options.seed)
        write_video(frames, options.video)
        print(f"wrote {options.video}: the start image and {len(frames) - 1} generated frame(s)")
    if options.grid:
        write_action_grid(hold_each_action(world, image, options.frames, options.seed), options.grid, options.scale)
        print(f"wrote {options.grid}: {world.num_actions} actions x {options.frames} frame(s) after the start image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
