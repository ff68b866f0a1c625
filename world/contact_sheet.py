"""A PNG contact sheet for people: one labelled frame per theme and per junk kind, drawn by
the same code that renders the uploads, so what the sheet shows is what videos contain."""

import itertools
import pathlib

import numpy as np
from PIL import Image

from world.canvas import CANVAS, draw_text
from world.offtopic import TOPICS
from world.themes import THEME_NAMES
from world.timeline import QUALITY, Shot, play
from world.video import shot_frames

_LABEL_HEIGHT = 16
_COLUMNS = 4


def _frame_at(shot: Shot, index: int, fps: int) -> np.ndarray:
    return next(itertools.islice(shot_frames(shot, fps), min(index, shot.n_frames - 1), None)).copy()


def sample_shots(seed: int = 0, fps: int = 30) -> list[tuple[str, Shot]]:
    """(label, shot) pairs covering every theme, every junk kind and some off-topic footage."""
    rng = np.random.default_rng([seed, 0x5EE7])
    shots = []

    def gameplay(theme: str, junk: str | None, style_seed: int) -> Shot:
        level_seed = int(rng.integers(2**31))
        actions = play(level_seed, "scripted", level_seed, 3 * fps, fps)
        return Shot("gameplay", len(actions), QUALITY["clean_scripted"], junk=junk, theme=theme,
                    level_seed=level_seed, actions=actions, style_seed=style_seed)

    for theme in THEME_NAMES:
        shots.append((f"gameplay: {theme}", gameplay(theme, None, 0)))
    shots.append(("junk: face-cam", gameplay(str(rng.choice(THEME_NAMES)), "facecam", int(rng.integers(2**31)))))
    shots.append(("junk: letterbox 4:3", gameplay(str(rng.choice(THEME_NAMES)), "letterbox", 0)))
    shots.append(("junk: letterbox wide", gameplay(str(rng.choice(THEME_NAMES)), "letterbox", 1)))
    shots.append(("title screen", Shot("title", fps, 1, theme=str(rng.choice(THEME_NAMES)), text=("Pixel Quest",), style_seed=seed)))
    shots.append(("menu screen", Shot("menu", fps, 1, theme=str(rng.choice(THEME_NAMES)), text=("Robo Run",), style_seed=seed)))
    shots.append(("static slide", Shot("slide", fps, 1, text=("WORLD 1-2", "Coin Dash"), style_seed=seed)))
    shots.append(("black frames", Shot("black", fps, 1)))
    for topic in TOPICS[:3]:
        shots.append((f"off-topic: {topic}", Shot("offtopic", 2 * fps, 1, text=(topic,), style_seed=seed)))
    return shots


def make_contact_sheet(path: str | pathlib.Path, seed: int = 0, fps: int = 30) -> pathlib.Path:
    """Writes the sheet to `path` (PNG) and returns the path."""
    path = pathlib.Path(path)
    tiles = []
    for label, shot in sample_shots(seed, fps):
        tile = np.zeros((CANVAS[1] + _LABEL_HEIGHT, CANVAS[0], 3), dtype=np.uint8)
        tile[:CANVAS[1]] = _frame_at(shot, 2 * fps, fps)
        draw_text(tile, label, (4, CANVAS[1] + _LABEL_HEIGHT // 2), 11, color=(240, 240, 240), anchor="lm", shadow=None)
        tiles.append(tile)
    while len(tiles) % _COLUMNS:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + _COLUMNS], axis=1) for i in range(0, len(tiles), _COLUMNS)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path
