"""Visual themes: palettes, backdrop layers, tile style and character looks. A level's look
is one of these; the rules of play never depend on it.

DARK_THEMES are the looks of underground, castle and night levels in real games: a black or
near-black background (no sky, no parallax, or a starry sky over a dark city) with bright
tiles and sprites. Most of such a frame is black, which is what a fade or a blank screen
looks like to a careless scene splitter or quality filter; they are here so the pipeline is
measured on them (benchmarks/dark_footage.py)."""

import dataclasses

RGB = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Theme:
    """Everything the renderer needs to draw a level in one look."""

    name: str
    sky_top: RGB
    sky_bottom: RGB
    sky_detail: str  # "clouds", "stars", "sun" or "none"
    far_shape: str  # "mountains", "dunes", "city", "stalactites" or "none" (no layer)
    far_color: RGB
    near_shape: str  # "hills", "trees", "rocks", "columns" or "none" (no layer)
    near_color: RGB
    tile_style: str  # "grass", "sand", "stone", "snow", "metal", "ash"
    ground_top: RGB
    ground_fill: RGB
    ground_detail: RGB
    brick: RGB
    brick_mortar: RGB
    pillar: RGB
    pillar_light: RGB
    block: RGB
    player_style: str  # "cap", "robot", "knight"
    player_main: RGB
    player_second: RGB
    skin: RGB
    enemy_style: str  # "blob", "beetle", "spiky"
    enemy_color: RGB
    coin: RGB


THEMES: dict[str, Theme] = {theme.name: theme for theme in (
    Theme("meadow", (92, 148, 252), (176, 216, 255), "clouds", "mountains", (120, 160, 200),
          "hills", (72, 168, 64), "grass", (88, 200, 64), (156, 92, 44), (112, 64, 28),
          (200, 76, 12), (100, 36, 8), (40, 160, 40), (140, 228, 120), (228, 156, 60),
          "cap", (220, 40, 40), (40, 60, 200), (252, 188, 140), "blob", (160, 80, 24), (252, 216, 40)),
    Theme("desert", (244, 160, 80), (252, 220, 150), "sun", "dunes", (220, 150, 90),
          "rocks", (176, 100, 60), "sand", (240, 208, 120), (212, 160, 84), (180, 128, 60),
          (196, 120, 72), (120, 64, 32), (90, 150, 70), (150, 200, 110), (200, 140, 80),
          "knight", (60, 100, 180), (220, 200, 60), (236, 180, 130), "beetle", (40, 40, 40), (255, 240, 120)),
    Theme("cave", (20, 16, 36), (56, 44, 72), "stars", "stalactites", (60, 52, 84),
          "rocks", (84, 72, 100), "stone", (120, 116, 132), (76, 70, 90), (50, 46, 62),
          (96, 84, 120), (40, 34, 56), (70, 110, 130), (130, 180, 200), (150, 140, 170),
          "robot", (180, 190, 200), (240, 120, 40), (200, 210, 220), "spiky", (200, 60, 160), (120, 240, 255)),
    Theme("snow", (150, 190, 230), (232, 244, 255), "clouds", "mountains", (200, 215, 235),
          "trees", (60, 110, 100), "snow", (248, 252, 255), (140, 170, 210), (110, 140, 190),
          (120, 160, 210), (70, 100, 150), (100, 130, 170), (190, 220, 250), (170, 200, 230),
          "cap", (40, 140, 60), (200, 40, 60), (250, 200, 170), "blob", (90, 70, 160), (250, 200, 60)),
    Theme("night", (8, 12, 40), (40, 40, 100), "stars", "city", (30, 30, 70),
          "columns", (50, 50, 96), "metal", (150, 160, 180), (80, 86, 104), (56, 60, 76),
          (120, 60, 140), (60, 30, 70), (60, 160, 160), (140, 240, 240), (180, 180, 200),
          "robot", (240, 220, 80), (60, 200, 240), (230, 230, 240), "beetle", (220, 60, 60), (255, 230, 90)),
    Theme("volcano", (60, 10, 10), (200, 80, 30), "sun", "mountains", (90, 30, 30),
          "rocks", (60, 24, 24), "ash", (90, 80, 80), (56, 44, 44), (200, 70, 20),
          (130, 40, 30), (70, 16, 12), (110, 100, 100), (170, 160, 150), (160, 90, 60),
          "knight", (200, 200, 210), (200, 40, 40), (240, 190, 150), "spiky", (250, 160, 30), (255, 220, 60)),
    Theme("underground", (0, 0, 0), (0, 0, 0), "none", "none", (0, 0, 0),
          "none", (0, 0, 0), "stone", (60, 188, 252), (0, 112, 136), (0, 64, 88),
          (0, 136, 136), (0, 40, 48), (24, 160, 88), (120, 232, 152), (200, 120, 48),
          "cap", (228, 92, 16), (136, 112, 0), (252, 188, 140), "blob", (0, 136, 184), (252, 216, 40)),
    Theme("castle", (0, 0, 0), (4, 0, 0), "none", "none", (0, 0, 0),
          "columns", (28, 24, 28), "stone", (188, 188, 188), (120, 116, 116), (64, 60, 60),
          (152, 148, 148), (56, 52, 52), (200, 64, 16), (252, 160, 68), (216, 40, 0),
          "knight", (196, 196, 204), (200, 40, 40), (240, 190, 150), "spiky", (240, 140, 20), (255, 220, 60)),
    Theme("midnight", (0, 0, 4), (6, 6, 20), "stars", "city", (12, 12, 22),
          "none", (0, 0, 0), "metal", (170, 176, 196), (92, 96, 116), (52, 56, 70),
          (112, 60, 148), (48, 24, 64), (40, 150, 150), (130, 240, 240), (190, 190, 210),
          "robot", (250, 226, 80), (70, 210, 250), (232, 232, 240), "beetle", (236, 70, 70), (255, 236, 96)),
)}

DARK_THEMES: tuple[str, ...] = ("underground", "castle", "midnight")
THEME_NAMES: tuple[str, ...] = tuple(THEMES)


def get_theme(name: str) -> Theme:
    """The theme called `name`; an unknown name is an error listing the known ones."""
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r} (known: {', '.join(THEME_NAMES)})")
    return THEMES[name]
