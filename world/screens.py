"""Non-gameplay shots that real uploads carry: title screens, menus, static slides and black
frames. Each function yields `n_frames` canvas frames; the few distinct images are drawn
once and repeated (a blinking prompt or a moving cursor is two or five images)."""

from collections.abc import Iterator

import numpy as np

from world.canvas import blank, draw_text, gradient, upscale
from world.game import Game
from world.level import generate_level
from world.render import LevelRenderer
from world.sprites import shade
from world.themes import get_theme

MENU_ITEMS = ("START GAME", "CONTINUE", "LEVEL SELECT", "OPTIONS", "QUIT")
SLIDE_COLORS = ((20, 24, 60), (90, 20, 40), (16, 70, 60), (60, 60, 64), (240, 240, 236), (250, 200, 40))


def title_frames(game_name: str, theme: str, level_seed: int, n_frames: int, fps: int) -> Iterator[np.ndarray]:
    """The game's title over its first level, with a blinking PRESS START."""
    level = generate_level(level_seed)
    look = get_theme(theme)
    base = upscale(LevelRenderer(level, look).render(Game(level)), 2)
    panel = base[24:84, 30:290]
    panel[:] = (panel.astype(np.uint16) * 2 // 5).astype(np.uint8)
    draw_text(base, game_name.upper(), (160, 54), 26, color=look.coin, shadow=shade(look.player_main, 0.5))
    draw_text(base, "(c) 2024 PIXEL WORKS", (160, 170), 9, color=(230, 230, 230))
    prompt = base.copy()
    draw_text(prompt, "PRESS START", (160, 118), 14)
    period = max(1, fps // 2)
    for frame in range(n_frames):
        yield prompt if (frame // period) % 2 == 0 else base


def menu_frames(game_name: str, theme: str, n_frames: int, fps: int, seed: int) -> Iterator[np.ndarray]:
    """A main menu whose cursor steps through the items."""
    look = get_theme(theme)
    base = gradient(shade(look.sky_top, 0.35), shade(look.sky_bottom, 0.25))
    base[20:170, 70:250] = shade(look.far_color, 0.4)
    base[20:22, 70:250] = base[168:170, 70:250] = look.coin
    draw_text(base, game_name.upper(), (160, 36), 14, color=look.coin)
    for index, item in enumerate(MENU_ITEMS):
        draw_text(base, item, (170, 64 + index * 22), 12, color=(235, 235, 235))
    images = []
    for index in range(len(MENU_ITEMS)):
        image = base.copy()
        draw_text(image, ">", (92, 64 + index * 22), 12, color=look.coin)
        images.append(image)
    rng = np.random.default_rng([seed, 0x3E4])
    step = max(1, int(fps * 0.6))
    cursor = 0
    for frame in range(n_frames):
        if frame and frame % step == 0:
            cursor = (cursor + int(rng.choice([-1, 1]))) % len(MENU_ITEMS)
        yield images[cursor]


def slide_frames(lines: tuple[str, ...], n_frames: int, seed: int) -> Iterator[np.ndarray]:
    """A static text slide (an episode card, 'thanks for watching', ...)."""
    rng = np.random.default_rng([seed, 0x51DE])
    background = SLIDE_COLORS[int(rng.integers(len(SLIDE_COLORS)))]
    image = gradient(background, shade(background, 0.7))
    ink = (20, 20, 20) if sum(background) > 500 else (245, 245, 245)
    top = 90 - 14 * (len(lines) - 1)
    for index, line in enumerate(lines):
        draw_text(image, line, (160, top + index * 28), 20 if index == 0 else 14, color=ink, shadow=None)
    for _ in range(n_frames):
        yield image


def black_frames(n_frames: int) -> Iterator[np.ndarray]:
    image = blank()
    for _ in range(n_frames):
        yield image
