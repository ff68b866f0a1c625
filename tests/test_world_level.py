import numpy as np
import pytest

from world.game import Game
from world.level import EMPTY, ROWS, TILE, generate_level


def test_a_seed_always_gives_the_same_level():
    """generate_level is a pure function of its seed."""
    a, b = generate_level(42), generate_level(42)
    assert np.array_equal(a.tiles, b.tiles) and a.enemies == b.enemies and a.coins == b.coins
    assert not np.array_equal(generate_level(43).tiles[:, :60], a.tiles[:, :60])


@pytest.mark.parametrize("seed", range(20))
def test_levels_are_playable_in_shape(seed):
    """Gaps are at most 3 tiles, the player starts on the ground and the flag stands on ground."""
    level = generate_level(seed)
    open_columns = (level.tiles == EMPTY).all(axis=0)
    run = longest = 0
    for is_open in open_columns:
        run = run + 1 if is_open else 0
        longest = max(longest, run)
    assert longest <= 3
    assert Game(level).player.on_ground
    goal_column = int(level.goal_x // TILE)
    assert level.tiles[ROWS - 1, goal_column] != EMPTY and goal_column < level.tiles.shape[1]


def test_level_length_can_be_chosen():
    """`columns` sets the level's width; too short a level is an error."""
    assert generate_level(1, columns=60).width == 60 * TILE
    with pytest.raises(ValueError, match="40 columns"):
        generate_level(1, columns=10)
