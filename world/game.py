"""The platformer's rules: gravity, running, jumping, tile collisions, patrolling enemies,
coins and the goal. Pure Python floats stepped at a fixed frame rate, so a level, an action
sequence and a frame rate always give the same trajectory.
"""

import dataclasses
import math

from world.actions import Action
from world.level import ENEMY_SIZE, PLAYER_SIZE, TILE, Level

_EPSILON = 1e-6
_MAX_SUBSTEP = TILE / 2  # never move further than half a tile between collision checks


@dataclasses.dataclass(frozen=True)
class Physics:
    """Movement constants, in level pixels and seconds."""

    gravity: float = 620.0
    walk_speed: float = 60.0
    run_speed: float = 96.0
    jump_speed: float = 215.0
    jump_cut_speed: float = 90.0  # releasing jump while rising caps the upward speed here
    ground_accel: float = 900.0
    air_accel: float = 600.0
    max_fall_speed: float = 240.0
    enemy_speed: float = 20.0
    stomp_bounce: float = 150.0


@dataclasses.dataclass
class Body:
    """An axis-aligned box that moves through the tile grid."""

    x: float
    y: float
    width: int
    height: int
    vx: float = 0.0
    vy: float = 0.0
    on_ground: bool = False

    def overlaps(self, other: "Body") -> bool:
        return (self.x < other.x + other.width and other.x < self.x + self.width
                and self.y < other.y + other.height and other.y < self.y + self.height)


@dataclasses.dataclass
class Enemy:
    body: Body
    alive: bool = True
    squash_frames: int = 0  # frames left to show the squashed sprite after a stomp


@dataclasses.dataclass(frozen=True)
class StepEvents:
    """What happened during one step (the environment turns this into reward)."""

    coins: int = 0
    stomps: int = 0
    progress: float = 0.0  # pixels gained beyond the furthest x reached so far
    reached_goal: bool = False
    died: bool = False


def _rows(body: Body) -> range:
    return range(math.floor(body.y / TILE), math.floor((body.y + body.height - _EPSILON) / TILE) + 1)


def _columns(body: Body) -> range:
    return range(math.floor(body.x / TILE), math.floor((body.x + body.width - _EPSILON) / TILE) + 1)


def move_x(level: Level, body: Body, distance: float) -> bool:
    """Moves a body horizontally until a wall; returns whether it hit one."""
    steps = max(1, math.ceil(abs(distance) / _MAX_SUBSTEP))
    for _ in range(steps):
        new_x = body.x + distance / steps
        if distance > 0:
            column = math.floor((new_x + body.width - _EPSILON) / TILE)
            if any(level.solid(column, row) for row in _rows(body)):
                body.x = column * TILE - body.width
                return True
        else:
            column = math.floor(new_x / TILE)
            if any(level.solid(column, row) for row in _rows(body)):
                body.x = (column + 1) * TILE
                return True
        body.x = new_x
    return False


def move_y(level: Level, body: Body, distance: float) -> bool:
    """Moves a body vertically until a floor or ceiling; sets on_ground; returns whether it hit."""
    body.on_ground = False
    steps = max(1, math.ceil(abs(distance) / _MAX_SUBSTEP))
    for _ in range(steps):
        new_y = body.y + distance / steps
        if distance > 0:
            row = math.floor((new_y + body.height - _EPSILON) / TILE)
            if any(level.solid(column, row) for column in _columns(body)):
                body.y = row * TILE - body.height
                body.on_ground = True
                return True
        else:
            row = math.floor(new_y / TILE)
            if any(level.solid(column, row) for column in _columns(body)):
                body.y = (row + 1) * TILE
                return True
        body.y = new_y
    return False


def standing_on_ground(level: Level, body: Body) -> bool:
    """Whether a solid tile lies directly under the body's feet."""
    row = math.floor((body.y + body.height + _EPSILON) / TILE)
    return any(level.solid(column, row) for column in _columns(body))


class Game:
    """One play of a level: the player, the enemies, the coins left, and whether it is over."""

    def __init__(self, level: Level, fps: int = 30, physics: Physics = Physics()):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.level = level
        self.fps = fps
        self.dt = 1.0 / fps
        self.physics = physics
        self.player = Body(*level.start, *PLAYER_SIZE)
        self.player.on_ground = standing_on_ground(level, self.player)
        self.facing = 1
        self.enemies = [Enemy(Body(x, y, *ENEMY_SIZE, vx=-physics.enemy_speed)) for x, y in level.enemies]
        self.coins_left = list(level.coins)
        self.coins = 0
        self.frame = 0
        self.best_x = self.player.x
        self.status = "playing"  # "playing", "goal" or "dead"

    @property
    def over(self) -> bool:
        return self.status != "playing"

    def clone(self) -> "Game":
        """An independent copy to simulate ahead with (the level is shared, it never changes)."""
        copy = object.__new__(Game)
        copy.__dict__.update(self.__dict__)
        copy.player = dataclasses.replace(self.player)
        copy.enemies = [Enemy(dataclasses.replace(enemy.body), enemy.alive, enemy.squash_frames) for enemy in self.enemies]
        copy.coins_left = list(self.coins_left)
        return copy

    def step(self, action: Action | int) -> StepEvents:
        """Advances one frame under `action`; a finished game does not change."""
        if self.over:
            return StepEvents()
        action = Action(action)
        self.frame += 1
        self._move_player(action)
        self._move_enemies()
        stomps, hit = self._touch_enemies()
        coins = self._collect_coins()
        progress = max(0.0, self.player.x - self.best_x)
        self.best_x = max(self.best_x, self.player.x)
        died = hit or self.player.y > self.level.height + TILE
        reached_goal = not died and self.player.x + self.player.width >= self.level.goal_x
        if died:
            self.status = "dead"
        elif reached_goal:
            self.status = "goal"
        return StepEvents(coins=coins, stomps=stomps, progress=progress, reached_goal=reached_goal, died=died)

    def _move_player(self, action: Action) -> None:
        physics, player = self.physics, self.player
        target = action.direction * (physics.run_speed if action.run else physics.walk_speed)
        accel = (physics.ground_accel if player.on_ground else physics.air_accel) * self.dt
        player.vx = min(player.vx + accel, target) if player.vx < target else max(player.vx - accel, target)
        if action.direction:
            self.facing = action.direction
        if action.jump and player.on_ground:
            player.vy = -physics.jump_speed
        elif not action.jump and player.vy < -physics.jump_cut_speed:
            player.vy = -physics.jump_cut_speed
        player.vy = min(player.vy + physics.gravity * self.dt, physics.max_fall_speed)
        if move_x(self.level, player, player.vx * self.dt):
            player.vx = 0.0
        if move_y(self.level, player, player.vy * self.dt):
            player.vy = 0.0

    def _move_enemies(self) -> None:
        physics = self.physics
        for enemy in self.enemies:
            if not enemy.alive:
                enemy.squash_frames = max(0, enemy.squash_frames - 1)
                continue
            body = enemy.body
            body.vy = min(body.vy + physics.gravity * self.dt, physics.max_fall_speed)
            if move_x(self.level, body, body.vx * self.dt) or self._at_edge(body):
                body.vx = -body.vx
            if move_y(self.level, body, body.vy * self.dt):
                body.vy = 0.0

    def _at_edge(self, body: Body) -> bool:
        """Whether a walking body's leading foot is over empty space (patrollers turn there)."""
        if not body.on_ground:
            return False
        foot_x = body.x + body.width + 1 if body.vx > 0 else body.x - 1
        row = math.floor((body.y + body.height + _EPSILON) / TILE)
        return not self.level.solid(math.floor(foot_x / TILE), row)

    def _touch_enemies(self) -> tuple[int, bool]:
        stomps, hit = 0, False
        player = self.player
        for enemy in self.enemies:
            if not enemy.alive or not player.overlaps(enemy.body):
                continue
            falling_onto = player.vy > 0 and player.y + player.height - enemy.body.y <= 4 + player.vy * self.dt
            if falling_onto:
                enemy.alive = False
                enemy.squash_frames = self.fps // 2
                player.vy = -self.physics.stomp_bounce
                stomps += 1
            else:
                hit = True
        return stomps, hit

    def _collect_coins(self) -> int:
        player = self.player
        kept = [(x, y) for x, y in self.coins_left
                if not (player.x - 2 < x < player.x + player.width + 2 and player.y - 3 < y < player.y + player.height + 3)]
        collected = len(self.coins_left) - len(kept)
        self.coins_left = kept
        self.coins += collected
        return collected
