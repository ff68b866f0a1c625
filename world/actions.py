"""The platformer's discrete action set: what a player can press on one frame."""

import enum


class Action(enum.IntEnum):
    """One frame's input. The values are the ids written to sidecars and used by agents."""

    IDLE = 0
    LEFT = 1
    RIGHT = 2
    JUMP = 3
    LEFT_JUMP = 4
    RIGHT_JUMP = 5
    RUN_LEFT = 6
    RUN_RIGHT = 7

    @property
    def direction(self) -> int:
        """-1 for left, +1 for right, 0 for neither."""
        if self in (Action.LEFT, Action.LEFT_JUMP, Action.RUN_LEFT):
            return -1
        if self in (Action.RIGHT, Action.RIGHT_JUMP, Action.RUN_RIGHT):
            return 1
        return 0

    @property
    def jump(self) -> bool:
        return self in (Action.JUMP, Action.LEFT_JUMP, Action.RIGHT_JUMP)

    @property
    def run(self) -> bool:
        return self in (Action.RUN_LEFT, Action.RUN_RIGHT)


N_ACTIONS = len(Action)
