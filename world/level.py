"""Procedural levels: a tile grid with ground, gaps, platforms and obstacles, enemy spawns,
coins and a goal flag, all drawn from one integer seed.

Every obstacle is sized so that the player's jump (about 4.5 tiles high, 5 tiles far at
walking speed) clears it: gaps are at most 3 tiles wide and walls at most 3 tiles tall.
"""

import dataclasses

import numpy as np

TILE = 8  # pixels per tile side
ROWS = 12  # tiles per level column; the level is ROWS * TILE = 96 pixels tall

EMPTY, GROUND, BRICK, PILLAR, BLOCK = range(5)
SOLID_KINDS = (GROUND, BRICK, PILLAR, BLOCK)

PLAYER_SIZE = (7, 10)  # width, height in pixels
ENEMY_SIZE = (8, 8)


@dataclasses.dataclass(frozen=True)
class Level:
    """A generated level. Positions are in level pixels, y grows downwards."""

    seed: int
    tiles: np.ndarray  # (ROWS, columns) uint8 tile kinds, read-only
    start: tuple[float, float]  # player's top-left at reset
    enemies: tuple[tuple[float, float], ...]  # enemy top-left spawn points
    coins: tuple[tuple[float, float], ...]  # coin centres
    goal_x: float  # the flagpole's x; reaching it finishes the level

    @property
    def width(self) -> int:
        return self.tiles.shape[1] * TILE

    @property
    def height(self) -> int:
        return self.tiles.shape[0] * TILE

    def solid(self, column: int, row: int) -> bool:
        """Whether a tile blocks movement; the level's sides are walls, above and below are open."""
        if column < 0 or column >= self.tiles.shape[1]:
            return True
        if row < 0 or row >= self.tiles.shape[0]:
            return False
        return self.tiles[row, column] != EMPTY


class _Builder:
    """Lays chunks left to right, tracking the cursor column and the ground height."""

    def __init__(self, rng: np.random.Generator, columns: int):
        self.rng = rng
        self.tiles = np.zeros((ROWS, columns), dtype=np.uint8)
        self.enemies: list[tuple[float, float]] = []
        self.coins: list[tuple[float, float]] = []
        self.column = 0
        self.ground = 2  # ground height in tiles

    def surface_y(self, height: int) -> float:
        return float((ROWS - height) * TILE)

    def flat(self, width: int) -> None:
        end = min(self.column + width, self.tiles.shape[1])
        self.tiles[ROWS - self.ground:, self.column:end] = GROUND
        self.column = end

    def enemy(self, column: int, height: int) -> None:
        self.enemies.append((float(column * TILE), self.surface_y(height) - ENEMY_SIZE[1]))

    def coin_row(self, column: int, count: int, height_tiles: float) -> None:
        y = self.surface_y(0) - height_tiles * TILE + TILE / 2
        self.coins.extend((float((column + i) * TILE + TILE / 2), y) for i in range(count))

    # chunks -----------------------------------------------------------------------------

    def chunk_flat(self) -> None:
        width = int(self.rng.integers(4, 10))
        start = self.column
        self.flat(width)
        if width >= 6 and self.rng.random() < 0.5:
            self.enemy(start + width // 2, self.ground)
        elif self.rng.random() < 0.4:
            self.coin_row(start + 1, width - 2, self.ground + 2)

    def chunk_gap(self) -> None:
        width = int(self.rng.integers(2, 4))
        start = self.column
        self.column += width
        for i in range(width):  # an arc of coins over the gap
            lift = 2.5 + (1.0 if 0 < i < width - 1 or width == 2 else 0.0)
            self.coins.append((float((start + i) * TILE + TILE / 2),
                               self.surface_y(self.ground) - lift * TILE + TILE / 2))
        self.ground = int(np.clip(self.ground + self.rng.integers(-1, 1), 1, 5))
        self.flat(int(self.rng.integers(3, 6)))

    def chunk_step(self) -> None:
        change = int(self.rng.choice([-2, -1, 1, 2]))
        self.ground = int(np.clip(self.ground + change, 1, 5))
        self.flat(int(self.rng.integers(4, 8)))

    def chunk_pillar(self) -> None:
        self.flat(2)
        height = int(self.rng.integers(2, 4))
        top = ROWS - self.ground - height
        self.flat(2)
        self.tiles[top:ROWS - self.ground, self.column - 2:self.column] = PILLAR
        self.coins.append((float(self.column * TILE - TILE), self.surface_y(self.ground + height + 1) + TILE / 2))
        self.flat(3)

    def chunk_platform(self) -> None:
        width = int(self.rng.integers(8, 13))
        start = self.column
        self.flat(width)
        lift = int(self.rng.integers(3, 5))
        length = int(self.rng.integers(3, 6))
        row = ROWS - self.ground - lift
        self.tiles[row, start + 2:start + 2 + length] = BRICK
        self.coin_row(start + 2, length, self.ground + lift + 1)
        if self.rng.random() < 0.6:
            self.enemy(start + width - 2, self.ground)

    def chunk_stairs(self) -> None:
        steps = int(self.rng.integers(2, 4))
        for step in range(1, steps + 1):
            self.flat(1)
            self.tiles[ROWS - self.ground - step:ROWS - self.ground, self.column - 1] = BLOCK
        self.flat(2)
        self.tiles[ROWS - self.ground - steps:ROWS - self.ground, self.column - 2:self.column] = BLOCK
        self.flat(3)

    def chunk_patrol(self) -> None:
        width = int(self.rng.integers(9, 13))
        start = self.column
        self.flat(width)
        self.enemy(start + 3, self.ground)
        self.enemy(start + width - 3, self.ground)


_CHUNKS = (_Builder.chunk_flat, _Builder.chunk_gap, _Builder.chunk_step, _Builder.chunk_pillar,
           _Builder.chunk_platform, _Builder.chunk_stairs, _Builder.chunk_patrol)
_CHUNK_ODDS = np.array([3, 3, 2, 2, 2, 1, 1], dtype=float) / 14


def generate_level(seed: int, columns: int | None = None) -> Level:
    """The level for `seed`; `columns` overrides the drawn length (at least 40 tiles)."""
    rng = np.random.default_rng([seed, 0x1E7E1])
    columns = int(columns if columns is not None else rng.integers(60, 200))
    if columns < 40:
        raise ValueError(f"a level needs at least 40 columns, got {columns}")
    builder = _Builder(rng, columns)
    builder.flat(10)
    while builder.column < columns - 16:
        _CHUNKS[rng.choice(len(_CHUNKS), p=_CHUNK_ODDS)](builder)
    builder.flat(columns - builder.column)
    tiles = builder.tiles[:, :columns].copy()
    tiles.flags.writeable = False
    start_height = int((tiles[:, 2] != EMPTY).sum())
    return Level(
        seed=seed,
        tiles=tiles,
        start=(2.0 * TILE, float((ROWS - start_height) * TILE - PLAYER_SIZE[1])),
        enemies=tuple(builder.enemies),
        coins=tuple(builder.coins),
        goal_x=float((columns - 6) * TILE),
    )
