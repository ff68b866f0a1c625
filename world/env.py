"""A gym-style environment around the platformer (same API shape as gymnasium, no dependency).

    env = PlatformerEnv(seed=3, theme="snow")
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(Action.RIGHT)

Observations are the rendered frames, (90, 160, 3) uint8 by default. Reward: +1 for reaching
the flag, -1 for dying, 0.1 per coin, 0.2 per stomped enemy, and 0.001 per pixel of new
ground covered to the right. Everything is determined by the seed and the actions.
"""

import numpy as np

from world.actions import N_ACTIONS, Action
from world.game import Game, Physics
from world.level import generate_level
from world.render import VIEW, LevelRenderer
from world.themes import THEME_NAMES, get_theme

GOAL_REWARD = 1.0
DEATH_REWARD = -1.0
COIN_REWARD = 0.1
STOMP_REWARD = 0.2
PROGRESS_REWARD_PER_PIXEL = 0.001


def theme_for_seed(seed: int) -> str:
    """The theme a level gets when none is asked for."""
    return THEME_NAMES[int(np.random.default_rng([seed, 0x7EE]).integers(len(THEME_NAMES)))]


class PlatformerEnv:
    """One level per seed. `reset()` replays the same level; `reset(seed=s)` switches to level s."""

    action_count = N_ACTIONS

    def __init__(self, seed: int = 0, theme: str | None = None, fps: int = 30, view: tuple[int, int] = VIEW,
                 max_steps: int | None = None, level_columns: int | None = None, physics: Physics = Physics()):
        if theme is not None:
            get_theme(theme)  # fail now on an unknown name
        self.fixed_theme = theme
        self.fps, self.view, self.physics, self.level_columns = fps, view, physics, level_columns
        self.max_steps = max_steps if max_steps is not None else 90 * fps
        self.seed = seed
        self._build(seed)

    def _build(self, seed: int) -> None:
        self.seed = seed
        self.theme = self.fixed_theme or theme_for_seed(seed)
        self.level = generate_level(seed, self.level_columns)
        self.renderer = LevelRenderer(self.level, get_theme(self.theme), self.view)
        self.game = Game(self.level, self.fps, self.physics)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        """Starts the level again (a new level when `seed` is given); returns (obs, info)."""
        if seed is not None and seed != self.seed:
            self._build(seed)
        else:
            self.game = Game(self.level, self.fps, self.physics)
        return self.render(), self.info()

    def step(self, action: Action | int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Plays one frame; returns (obs, reward, terminated, truncated, info)."""
        if not 0 <= int(action) < N_ACTIONS:
            raise ValueError(f"action must be in [0, {N_ACTIONS}), got {action}")
        if self.game.over or self.game.frame >= self.max_steps:
            raise RuntimeError("the episode is over; call reset()")
        events = self.game.step(action)
        reward = (events.coins * COIN_REWARD + events.stomps * STOMP_REWARD
                  + events.progress * PROGRESS_REWARD_PER_PIXEL)
        if events.reached_goal:
            reward += GOAL_REWARD
        if events.died:
            reward += DEATH_REWARD
        terminated = self.game.over
        truncated = not terminated and self.game.frame >= self.max_steps
        return self.render(), reward, terminated, truncated, self.info()

    def render(self) -> np.ndarray:
        """The current frame, (height, width, 3) uint8."""
        return self.renderer.render(self.game)

    def info(self) -> dict:
        player = self.game.player
        return {
            "x": player.x, "y": player.y, "vx": player.vx, "vy": player.vy,
            "on_ground": player.on_ground, "facing": self.game.facing,
            "coins": self.game.coins, "status": self.game.status, "frame": self.game.frame,
            "progress": min(1.0, (player.x + player.width) / self.level.goal_x),
            "camera_x": self.renderer.camera_x(self.game), "level_seed": self.seed, "theme": self.theme,
        }
