"""Draws a game state as a small pixel-art frame with numpy.

The level's tiles (and its flag) are drawn once into one wide image; a frame is the sky,
the parallax layers and that image sliced at the camera, with the moving sprites on top.
"""

import numpy as np

from world import backdrop, sprites
from world.game import Game
from world.level import BLOCK, BRICK, EMPTY, GROUND, PILLAR, TILE, Level
from world.sprites import Sprite
from world.themes import Theme

VIEW = (160, 90)  # default view (width, height) in level pixels
_CAMERA_LEAD = 0.4  # the player sits this far across the view; more of the level ahead shows


def blit(frame: np.ndarray, sprite: Sprite, x: int, y: int) -> None:
    """Draws a sprite with its top-left at (x, y), clipped to the frame."""
    rgb, mask = sprite
    height, width = mask.shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + width, frame.shape[1]), min(y + height, frame.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    region = frame[y0:y1, x0:x1]
    np.copyto(region, rgb[y0 - y:y1 - y, x0 - x:x1 - x], where=mask[y0 - y:y1 - y, x0 - x:x1 - x, None])


def _variants(tiles: np.ndarray) -> np.ndarray:
    """Which tile image (index into sprites.VARIANTS) each grid cell shows."""
    index = {name: i for i, name in enumerate(sprites.VARIANTS)}
    above = np.vstack([np.full((1, tiles.shape[1]), EMPTY, dtype=tiles.dtype), tiles[:-1]])
    rows, columns = np.indices(tiles.shape)
    variants = np.zeros(tiles.shape, dtype=np.intp)
    ground = tiles == GROUND
    alt = (rows * 7 + columns * 13) % 5 == 0
    variants[ground] = index["ground_fill"]
    variants[ground & alt] = index["ground_fill_alt"]
    variants[ground & (above == EMPTY)] = index["ground_top"]
    variants[tiles == BRICK] = index["brick"]
    variants[tiles == PILLAR] = index["pillar"]
    variants[(tiles == PILLAR) & (above != PILLAR)] = index["pillar_top"]
    variants[tiles == BLOCK] = index["block"]
    return variants


def _draw_flag(rgb: np.ndarray, mask: np.ndarray, level: Level, theme: Theme) -> None:
    column = int(level.goal_x // TILE)
    ground_rows = np.flatnonzero(level.tiles[:, column] != EMPTY)
    ground_y = int(ground_rows[0]) * TILE if ground_rows.size else level.height
    pole_x, top = column * TILE + 3, max(2, ground_y - 7 * TILE)
    rgb[top:ground_y, pole_x:pole_x + 2] = (230, 230, 230)
    rgb[top:ground_y, pole_x + 1] = (150, 150, 150)
    rgb[top - 2:top + 1, pole_x - 1:pole_x + 3] = theme.coin
    for i in range(7):  # a pennant flying left of the pole
        rgb[top + 2 + i, pole_x - 8 + abs(3 - i) * 2:pole_x] = theme.player_main
        mask[top + 2 + i, pole_x - 8 + abs(3 - i) * 2:pole_x] = True
    mask[top - 2:ground_y, pole_x - 1:pole_x + 3] |= rgb[top - 2:ground_y, pole_x - 1:pole_x + 3].any(axis=-1)


class LevelRenderer:
    """Renders one level in one theme at a fixed view size."""

    def __init__(self, level: Level, theme: Theme, view: tuple[int, int] = VIEW):
        width, height = view
        if not (16 <= width <= level.width and 16 <= height <= level.height):
            raise ValueError(f"view {view} does not fit a {level.width}x{level.height} level")
        self.level, self.theme, self.view = level, theme, view
        self.camera_y = level.height - height
        tiles = sprites.tile_set(theme)[_variants(level.tiles)]  # (R, C, T, T, 3)
        rows, columns = level.tiles.shape
        self.tiles_rgb = tiles.transpose(0, 2, 1, 3, 4).reshape(rows * TILE, columns * TILE, 3)
        self.tiles_mask = np.repeat(np.repeat(level.tiles != EMPTY, TILE, 0), TILE, 1)
        _draw_flag(self.tiles_rgb, self.tiles_mask, level, theme)
        self.tiles_rgb = self.tiles_rgb[self.camera_y:]
        self.tiles_mask = self.tiles_mask[self.camera_y:]
        self.sky = backdrop.sky(theme, width, height)
        self.layers = backdrop.layers(theme, width, height)
        self.player = sprites.player_sprites(theme)
        self.player_left = {pose: sprites.mirror(sprite) for pose, sprite in self.player.items()}
        self.enemy = sprites.enemy_sprites(theme)
        self.enemy_right = {name: sprites.mirror(sprite) for name, sprite in self.enemy.items()}
        self.coins = sprites.coin_sprites(theme)

    def camera_x(self, game: Game) -> int:
        """The view's left edge: follows the player, clamped to the level."""
        width = self.view[0]
        centre = game.player.x + game.player.width / 2
        return int(np.clip(round(centre - width * _CAMERA_LEAD), 0, self.level.width - width))

    def render(self, game: Game) -> np.ndarray:
        """The frame for the game's current state, (view height, view width, 3) uint8."""
        width, height = self.view
        camera_x = self.camera_x(game)
        frame = self.sky.copy()
        for layer in self.layers:
            rgb, mask = layer.window(camera_x, width)
            np.copyto(frame, rgb, where=mask[..., None])
        np.copyto(frame, self.tiles_rgb[:, camera_x:camera_x + width],
                  where=self.tiles_mask[:, camera_x:camera_x + width, None])
        tick = game.frame * 30 // game.fps  # animation runs at the same speed at any frame rate
        coin = self.coins[(tick // 5) % len(self.coins)]
        for x, y in game.coins_left:
            if camera_x - 8 < x < camera_x + width + 8:
                blit(frame, coin, round(x) - 2 - camera_x, round(y) - 3 - self.camera_y)
        for enemy in game.enemies:
            body = enemy.body
            if not enemy.alive and enemy.squash_frames == 0:
                continue
            if not camera_x - 8 < body.x < camera_x + width:
                continue
            name = "squashed" if not enemy.alive else ("walk1", "walk2")[(tick // 8) % 2]
            looks = self.enemy_right if body.vx > 0 else self.enemy
            blit(frame, looks[name], round(body.x) - camera_x, round(body.y) - self.camera_y)
        blit(frame, self._player_sprite(game, tick), round(game.player.x) - camera_x, round(game.player.y) - self.camera_y)
        return frame

    def _player_sprite(self, game: Game, tick: int) -> Sprite:
        player = game.player
        if not player.on_ground:
            pose = "jump"
        elif abs(player.vx) < 5:
            pose = "stand"
        else:
            pose = ("run1", "run2")[(tick // 4) % 2]
        return (self.player if game.facing > 0 else self.player_left)[pose]
