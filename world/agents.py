"""Agents that play the platformer: a scripted one that heads for the flag and a random one.
Both read the game state (`act(game) -> Action`) and draw choices from their own seeded
generator, so a seed gives the same play every time.
"""

import collections
import dataclasses
import math

import numpy as np

from world.actions import N_ACTIONS, Action
from world.game import Game


class ScriptedAgent:
    """Walks right and plans around danger by trying short action sequences on a copy of the
    game: it keeps walking while walking is safe for the next second, otherwise it takes the
    latest safe jump. `wander` is the chance, at each re-plan, of a harmless detour (a pause,
    a step back, a hop, a sprint) so videos show every action, as human play does."""

    def __init__(self, seed: int = 0, wander: float = 0.15):
        self.rng = np.random.default_rng([seed, 0xA6E])
        self.wander = wander
        self.plan: collections.deque[Action] = collections.deque()
        self.best_x = -1.0
        self.frames_without_progress = 0

    def act(self, game: Game) -> Action:
        if game.player.x > self.best_x + 1:
            self.best_x, self.frames_without_progress = game.player.x, 0
        else:
            self.frames_without_progress += 1
        if not self.plan:
            self.plan.extend(self._choose_plan(game))
        return self.plan.popleft()

    def _choose_plan(self, game: Game) -> list[Action]:
        """The opening frames of the first good candidate; it re-plans after them."""
        if self.frames_without_progress > 2 * game.fps:  # stuck: shake loose with random presses
            self.frames_without_progress = 0
            return [Action(int(self.rng.integers(N_ACTIONS)))] * max(1, game.fps // 4)
        wanted_progress = 0.5 * game.physics.walk_speed  # pixels over the one-second horizon
        best, best_score = None, (-1, 0.0)
        for candidate in self._candidates(game):
            frames, progress = _outcome(game, candidate.plan)
            if frames == len(candidate.plan) and (not candidate.needs_progress or progress >= wanted_progress):
                return candidate.plan[:candidate.commit]
            if best is None or (frames, progress) > best_score:
                best, best_score = candidate, (frames, progress)
        return best.plan[:best.commit]

    def _candidates(self, game: Game) -> list["_Candidate"]:
        """Plans over a one-second horizon, in order of preference."""
        fps = game.fps
        horizon, commit = fps, max(1, fps // 4)

        def padded(actions: list[Action], then: Action = Action.RIGHT) -> list[Action]:
            return (actions + [then] * horizon)[:horizon]

        candidates = []
        if self.rng.random() < self.wander:
            detour = self._detour(fps)
            candidates.append(_Candidate(padded(detour), len(detour), needs_progress=False))
        candidates.append(_Candidate([Action.RIGHT] * horizon, commit))
        _, walked = _outcome(game, [Action.RIGHT] * commit)
        can_walk = walked >= 0.5 * game.physics.walk_speed * commit / fps
        for delay in (commit, commit // 2, 0) if can_walk else (0,):  # the latest safe jump first
            for hold in (fps * 2 // 5, fps // 4, fps // 8):
                candidates.append(_Candidate(padded([Action.RIGHT] * delay + [Action.RIGHT_JUMP] * hold), commit))
            candidates.append(_Candidate(padded([Action.RIGHT] * delay, then=Action.RIGHT_JUMP), commit))
        candidates.append(_Candidate([Action.RUN_RIGHT] * horizon, commit))
        candidates.append(_Candidate(padded([Action.RUN_RIGHT] * (fps // 3), then=Action.RIGHT_JUMP), commit))
        candidates.append(_Candidate(padded([Action.IDLE] * commit, then=Action.RIGHT_JUMP), commit))
        candidates.append(_Candidate([Action.IDLE] * horizon, commit, needs_progress=False))
        candidates.append(_Candidate(padded([Action.LEFT] * (horizon // 2), then=Action.IDLE), commit, needs_progress=False))
        return candidates

    def _detour(self, fps: int) -> list[Action]:
        length = int(self.rng.integers(fps // 4, fps // 2 + 1))
        detours = (
            [Action.IDLE] * length,
            [Action.LEFT] * length,
            [Action.RUN_LEFT] * (length // 2),
            [Action.JUMP] * (fps // 4) + [Action.IDLE] * (fps // 4),
            [Action.LEFT_JUMP] * (fps // 4) + [Action.IDLE] * (fps // 4),
            [Action.RUN_RIGHT] * length,
        )
        return detours[int(self.rng.integers(len(detours)))]


@dataclasses.dataclass(frozen=True)
class _Candidate:
    plan: list[Action]
    commit: int  # frames of the plan to carry out before planning again
    needs_progress: bool = True  # accepted only if it also gets the player somewhere


def _outcome(game: Game, plan: list[Action]) -> tuple[int, float]:
    """Plays `plan` on a copy of the game: (frames survived, pixels moved right, infinite at the
    flag). A plan that ends in mid-air walks right until it lands, so a leap into a pit fails."""
    future = game.clone()
    for index, action in enumerate(plan):
        future.step(action)
        if future.status == "dead":
            return index, future.player.x - game.player.x
        if future.status == "goal":
            return len(plan), math.inf
    for _ in range(game.fps):
        if future.over or future.player.on_ground:
            break
        future.step(Action.RIGHT)
    frames = len(plan) - 1 if future.status == "dead" else len(plan)
    return frames, future.player.x - game.player.x


class RandomAgent:
    """Presses a uniformly random action and holds it for a random 1 to `max_hold` frames."""

    def __init__(self, seed: int = 0, max_hold: int = 8):
        self.rng = np.random.default_rng([seed, 0x4A4D])
        self.max_hold = max_hold
        self.action = Action.IDLE
        self.hold = 0

    def act(self, game: Game) -> Action:
        if self.hold <= 0:
            self.action = Action(int(self.rng.integers(N_ACTIONS)))
            self.hold = int(self.rng.integers(1, self.max_hold + 1))
        self.hold -= 1
        return self.action


AGENTS = {"scripted": ScriptedAgent, "random": RandomAgent}


def make_agent(name: str, seed: int = 0) -> ScriptedAgent | RandomAgent:
    """An agent by name ("scripted" or "random")."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r} (known: {', '.join(AGENTS)})")
    return AGENTS[name](seed=seed)
