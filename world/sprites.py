"""Pixel-art sprites and tiles, painted from small letter templates and a theme's palette.

A sprite is a pair (rgb, mask): an (H, W, 3) uint8 image and an (H, W) bool of opaque
pixels. Characters face right; the renderer mirrors them.
"""

import numpy as np

from world.level import TILE
from world.themes import RGB, Theme

Sprite = tuple[np.ndarray, np.ndarray]

_DARK: RGB = (24, 20, 28)
_WHITE: RGB = (250, 250, 250)


def shade(color: RGB, factor: float) -> RGB:
    """A color scaled towards black (factor < 1) or white (factor > 1)."""
    if factor <= 1:
        return tuple(int(c * factor) for c in color)
    return tuple(int(c + (255 - c) * (factor - 1)) for c in color)


def paint(template: list[str], palette: dict[str, RGB]) -> Sprite:
    """Turns rows of letters into a sprite; '.' is transparent, other letters index the palette."""
    height, width = len(template), len(template[0])
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=bool)
    for y, row in enumerate(template):
        if len(row) != width:
            raise ValueError(f"template row {y} is {len(row)} wide, expected {width}")
        for x, letter in enumerate(row):
            if letter != ".":
                rgb[y, x] = palette[letter]
                mask[y, x] = True
    return rgb, mask


def mirror(sprite: Sprite) -> Sprite:
    rgb, mask = sprite
    return rgb[:, ::-1].copy(), mask[:, ::-1].copy()


# player: 7 x 10, head (4 rows) + torso (3 rows) + legs (3 rows) ---------------------------

_HEADS = {
    "cap": ["..HHHH.", ".HHHHHH", "..SSKS.", "..SSSS."],
    "robot": ["...K...", ".HHHHH.", ".HHWKW.", ".HHHHH."],
    "knight": ["..HHH..", ".HHHHH.", ".HHHKKH", ".HHHHH."],
}
_TORSOS = {
    "cap": (["HBBBH..", "S.BBB.S", "..BBB.."], ["HBBBH.S", "S.BBB..", "..BBB.."]),
    "robot": (["..BBB..", "HBBBBBH", "H.BBB.H"], ["H.BBB.H", "HBBBBBH", "..BBB.."]),
    "knight": ([".BBBBB.", "SBBBBBS", ".BBBBB."], ["SBBBBBS", ".BBBBB.", ".BBBBB."]),
}
_LEGS = {
    "stand": ["..L.L..", "..L.L..", ".FF.FF."],
    "run1": [".LL.LL.", ".L...L.", "FF...FF"],
    "run2": ["..LLL..", "..LL...", "..FFF.."],
    "jump": [".LL.LL.", ".L...LF", "FF....."],
}
PLAYER_POSES = tuple(_LEGS)


def player_sprites(theme: Theme) -> dict[str, Sprite]:
    """The player's poses (stand, run1, run2, jump), facing right."""
    style = theme.player_style
    palette = {
        "H": theme.player_main, "B": theme.player_second, "S": theme.skin, "K": _DARK, "W": _WHITE,
        "L": theme.player_second if style == "cap" else shade(theme.player_main, 0.8),
        "F": (96, 48, 16) if style == "cap" else _DARK,
    }
    sprites = {}
    for pose in PLAYER_POSES:
        torso = _TORSOS[style][1 if pose == "jump" else 0]
        sprites[pose] = paint(_HEADS[style] + torso + _LEGS[pose], palette)
    return sprites


# enemies: 8 x 8, two walking frames, facing left ------------------------------------------

_ENEMIES = {
    "blob": ["..EEEE..", ".EEEEEE.", "EKWEEKWE", "EKWEEKWE", "EEEEEEEE", ".EEEEEE.", "..DDDD..", ".FF..FF."],
    "beetle": ["........", "...EEEE.", "..EDEDEE", ".EEEEEEE", "WKEEEEEE", "KKDDDDDD", ".F.F.F..", "F.F.F.F."],
    "spiky": ["E..E..E.", ".EEEEEE.", "EEEEEEEE", "EKWEEKWE", "EEEEEEEE", "EEDDDDEE", ".EEEEEE.", ".FF..FF."],
}


def enemy_sprites(theme: Theme) -> dict[str, Sprite]:
    """An enemy's two walking frames and its squashed look, facing left."""
    template = _ENEMIES[theme.enemy_style]
    palette = {"E": theme.enemy_color, "D": shade(theme.enemy_color, 0.6), "K": _DARK, "W": _WHITE, "F": _DARK}
    walk2 = template[:-1] + [template[-1][::-1] if template[-1] != template[-1][::-1] else "FF....FF"]
    squashed = ["." * 8] * 5 + [template[2], template[4], template[-2]]
    return {"walk1": paint(template, palette), "walk2": paint(walk2, palette), "squashed": paint(squashed, palette)}


# coins: 5 x 7, three spin frames ----------------------------------------------------------

_COINS = (
    [".CCC.", "CCYCC", "CCYCC", "CCYCC", "CCYCC", "CCYCC", ".CCC."],
    ["..C..", ".CYC.", ".CYC.", ".CYC.", ".CYC.", ".CYC.", "..C.."],
    ["..C..", "..Y..", "..Y..", "..Y..", "..Y..", "..Y..", "..C.."],
)


def coin_sprites(theme: Theme) -> list[Sprite]:
    palette = {"C": theme.coin, "Y": shade(theme.coin, 1.5)}
    frames = [paint(template, palette) for template in _COINS]
    return frames + [frames[1]]


# tiles: TILE x TILE ------------------------------------------------------------------------

VARIANTS = ("empty", "ground_top", "ground_fill", "ground_fill_alt", "brick", "pillar", "pillar_top", "block")


def _speckled(base: RGB, detail: RGB, rng: np.random.Generator, density: float) -> np.ndarray:
    tile = np.empty((TILE, TILE, 3), dtype=np.uint8)
    tile[:] = base
    tile[rng.random((TILE, TILE)) < density] = detail
    return tile


def _ground_fill(theme: Theme, rng: np.random.Generator) -> np.ndarray:
    if theme.tile_style == "stone":  # cobbles: irregular mortar lines
        tile = _speckled(theme.ground_fill, shade(theme.ground_fill, 1.15), rng, 0.15)
        tile[[3, 7], :] = theme.ground_detail
        tile[0:3, int(rng.integers(1, 7))] = theme.ground_detail
        tile[4:7, int(rng.integers(1, 7))] = theme.ground_detail
        return tile
    if theme.tile_style == "metal":  # riveted plate
        tile = _speckled(theme.ground_fill, theme.ground_fill, rng, 0.0)
        tile[0, :] = shade(theme.ground_fill, 1.3)
        tile[:, 0] = shade(theme.ground_fill, 1.3)
        tile[7, :] = theme.ground_detail
        tile[:, 7] = theme.ground_detail
        tile[[2, 2, 5, 5], [2, 5, 2, 5]] = shade(theme.ground_fill, 1.5)
        return tile
    return _speckled(theme.ground_fill, theme.ground_detail, rng, 0.12)


def _ground_top(theme: Theme, fill: np.ndarray) -> np.ndarray:
    tile = fill.copy()
    top, light = theme.ground_top, shade(theme.ground_top, 1.25)
    if theme.tile_style == "grass":
        tile[:3] = top
        tile[3, ::2] = top
        tile[0, 1::3] = light
    elif theme.tile_style == "snow":
        tile[:3] = top
        tile[3, 1:7] = top
        tile[3, [0, 7]] = shade(top, 0.85)
    elif theme.tile_style == "sand":
        tile[:2] = top
        tile[2, [0, 1, 4, 5]] = top
        tile[0, ::4] = light
    elif theme.tile_style == "ash":
        tile[:2] = top
        tile[1, [1, 5]] = theme.ground_detail  # embers
    else:  # stone, metal: a lighter capping course
        tile[:2] = top
        tile[0] = light
    return tile


def _brick(theme: Theme) -> np.ndarray:
    tile = np.empty((TILE, TILE, 3), dtype=np.uint8)
    tile[:] = theme.brick
    tile[0] = shade(theme.brick, 1.25)
    tile[[3, 7], :] = theme.brick_mortar
    tile[0:3, 4] = theme.brick_mortar
    tile[4:7, 0] = theme.brick_mortar
    return tile


def _pillar(theme: Theme, cap: bool) -> np.ndarray:
    tile = np.empty((TILE, TILE, 3), dtype=np.uint8)
    tile[:] = theme.pillar
    tile[:, 1:3] = theme.pillar_light
    tile[:, 6:] = shade(theme.pillar, 0.7)
    if cap:
        tile[0:2] = theme.pillar_light
        tile[2] = shade(theme.pillar, 0.6)
    return tile


def _block(theme: Theme) -> np.ndarray:
    tile = np.empty((TILE, TILE, 3), dtype=np.uint8)
    tile[:] = theme.block
    tile[0, :] = shade(theme.block, 1.35)
    tile[:, 0] = shade(theme.block, 1.35)
    tile[7, :] = shade(theme.block, 0.55)
    tile[:, 7] = shade(theme.block, 0.55)
    tile[3:5, 3:5] = shade(theme.block, 0.8)
    return tile


def tile_set(theme: Theme) -> np.ndarray:
    """The theme's tiles, (len(VARIANTS), TILE, TILE, 3) uint8: one image per entry of VARIANTS."""
    rng = np.random.default_rng(sum(map(ord, theme.name)))
    fill = _ground_fill(theme, rng)
    images = {
        "empty": np.zeros((TILE, TILE, 3), dtype=np.uint8),
        "ground_top": _ground_top(theme, fill),
        "ground_fill": fill,
        "ground_fill_alt": _ground_fill(theme, rng),
        "brick": _brick(theme),
        "pillar": _pillar(theme, cap=False),
        "pillar_top": _pillar(theme, cap=True),
        "block": _block(theme),
    }
    return np.stack([images[name] for name in VARIANTS])
