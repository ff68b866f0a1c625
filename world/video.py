"""Renders a VideoPlan into an MP4 upload: every shot's frames composed on the canvas,
fades applied around their cuts, and the whole stream encoded by ffmpeg."""

import pathlib
from collections.abc import Iterator

import numpy as np

from world.canvas import CANVAS, blank, upscale
from world.encoder import VideoWriter
from world.facecam import FaceCam
from world.game import Game
from world.level import generate_level
from world.offtopic import offtopic_frames
from world.render import VIEW, LevelRenderer
from world.screens import black_frames, menu_frames, slide_frames, title_frames
from world.themes import get_theme
from world.timeline import Shot, VideoPlan

# Letterboxed gameplay: a 4:3 view between side bars, or a wide view between top and bottom bars.
LETTERBOX_VIEWS = ((120, 90), (160, 68))


def check_upload_format(width: int, height: int, fps: int) -> None:
    """Raises ValueError unless uploads would be 16:9, even-sized, >= 640x360, at 30 or 60 fps."""
    if width * 9 != height * 16 or width < 640 or width % 2:
        raise ValueError(f"width x height must be 16:9, even and at least 640x360, got {width}x{height}")
    if fps not in (30, 60):
        raise ValueError(f"fps must be 30 or 60, got {fps}")


def gameplay_frames(shot: Shot, fps: int) -> Iterator[np.ndarray]:
    """Replays the shot's actions on its level, yielding canvas frames (with its junk drawn)."""
    view = LETTERBOX_VIEWS[shot.style_seed % 2] if shot.junk == "letterbox" else VIEW
    level = generate_level(shot.level_seed)
    renderer = LevelRenderer(level, get_theme(shot.theme), view)
    game = Game(level, fps)
    facecam = FaceCam(shot.style_seed) if shot.junk == "facecam" else None
    canvas = blank()
    x0, y0 = (CANVAS[0] - 2 * view[0]) // 2, (CANVAS[1] - 2 * view[1]) // 2
    for index, action in enumerate(shot.actions):
        canvas[y0:y0 + 2 * view[1], x0:x0 + 2 * view[0]] = upscale(renderer.render(game), 2)
        if facecam is not None:
            facecam.draw(canvas, index, fps)
        yield canvas
        game.step(action)


def shot_frames(shot: Shot, fps: int) -> Iterator[np.ndarray]:
    """The canvas frames of any shot. Frames may be reused images: copy before changing one."""
    if shot.kind == "gameplay":
        return gameplay_frames(shot, fps)
    if shot.kind == "title":
        return title_frames(shot.text[0], shot.theme, shot.style_seed, shot.n_frames, fps)
    if shot.kind == "menu":
        return menu_frames(shot.text[0], shot.theme, shot.n_frames, fps, shot.style_seed)
    if shot.kind == "slide":
        return slide_frames(shot.text, shot.n_frames, shot.style_seed)
    if shot.kind == "black":
        return black_frames(shot.n_frames)
    return offtopic_frames(shot.text[0], shot.n_frames, fps, shot.style_seed)


def fade_levels(plan: VideoPlan) -> dict[int, float]:
    """Brightness of each frame inside a fade: 0 at the fade's middle (its cut frame), rising
    linearly to 1 over plan.fade_frames on either side. Frames not listed are at full brightness."""
    width = plan.fade_frames
    levels: dict[int, float] = {}
    for cut, kind in zip(plan.cut_frames(), plan.transitions):
        if kind == "fade":
            for frame in range(cut - width + 1, cut + width):
                levels[frame] = min(levels.get(frame, 1.0), abs(frame - cut) / width)
    return levels


def plan_frames(plan: VideoPlan) -> Iterator[np.ndarray]:
    """Every canvas frame of the plan in order, fades applied."""
    fades = fade_levels(plan)
    index = 0
    for shot in plan.shots:
        for frame in shot_frames(shot, plan.fps):
            level = fades.get(index)
            if level is not None:
                frame = (frame.astype(np.uint16) * int(level * 256) >> 8).astype(np.uint8)
            yield frame
            index += 1


def render_video(plan: VideoPlan, path: str | pathlib.Path, width: int = 640, height: int = 360,
                 crf: int = 23, preset: str = "superfast") -> dict:
    """Writes the plan's MP4 to `path` and returns its ground-truth sidecar."""
    check_upload_format(width, height, plan.fps)
    with VideoWriter(path, width, height, plan.fps, crf=crf, preset=preset) as writer:
        for frame in plan_frames(plan):
            writer.write(frame)
    if writer.frames != plan.n_frames:
        raise RuntimeError(f"rendered {writer.frames} frames, the plan has {plan.n_frames}")
    return plan.truth()
