import numpy as np
import pytest

from world.actions import Action
from world.agents import RandomAgent
from world.env import PlatformerEnv


def _settled_env(seed: int = 4) -> PlatformerEnv:
    env = PlatformerEnv(seed=seed, theme="meadow")
    env.reset()
    return env


def _run(env: PlatformerEnv, action: Action, steps: int) -> dict:
    info = env.info()
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(action)
        assert not (terminated or truncated)
    return info


def test_same_seed_gives_the_same_episode():
    """Two environments with one seed, fed the same actions, give identical frames and infos."""
    episodes = []
    for _ in range(2):
        env, agent = PlatformerEnv(seed=11), RandomAgent(seed=3)
        observation, info = env.reset()
        trace = [(observation, info)]
        for _ in range(200):
            observation, reward, terminated, truncated, info = env.step(agent.act(env.game))
            trace.append((observation, {**info, "reward": reward}))
            if terminated or truncated:
                break
        episodes.append(trace)
    assert len(episodes[0]) == len(episodes[1]) > 50
    for (frame_a, info_a), (frame_b, info_b) in zip(*episodes):
        assert np.array_equal(frame_a, frame_b) and info_a == info_b


def test_reset_without_seed_replays_and_with_seed_switches_level():
    """reset() restarts the same level; reset(seed=s) builds level s."""
    env = PlatformerEnv(seed=1)
    first, _ = env.reset()
    _run(env, Action.RIGHT, 20)
    again, _ = env.reset()
    other, info = env.reset(seed=2)
    assert np.array_equal(first, again)
    assert info["level_seed"] == 2 and not np.array_equal(env.level.tiles, PlatformerEnv(seed=1).level.tiles)


def test_observation_is_the_rendered_frame():
    """Observations are 90x160 RGB uint8 frames equal to render()."""
    env = PlatformerEnv(seed=5)
    observation, _ = env.reset()
    assert observation.shape == (90, 160, 3) and observation.dtype == np.uint8
    observation, *_ = env.step(Action.RIGHT)
    assert np.array_equal(observation, env.render())


def test_idle_stays_put():
    """IDLE on the ground leaves the player exactly where it was."""
    env = _settled_env()
    start = env.info()
    end = _run(env, Action.IDLE, 30)
    assert (end["x"], end["y"], end["on_ground"]) == (start["x"], start["y"], True)


@pytest.mark.parametrize("action, sign", [(Action.RIGHT, 1), (Action.LEFT, -1)])
def test_walking_moves_the_player_that_way(action, sign):
    """RIGHT moves the player right and LEFT moves it left, along the ground."""
    env = _settled_env()
    _run(env, Action.RIGHT, 10)  # room to walk left without reaching the level's wall
    start = env.info()
    end = _run(env, action, 8)
    assert sign * (end["x"] - start["x"]) >= 8
    assert end["y"] == start["y"] and end["on_ground"]
    assert end["facing"] == sign


def test_running_is_faster_than_walking():
    """RUN_RIGHT covers more ground than RIGHT in the same number of frames."""
    walked = _run(_settled_env(), Action.RIGHT, 20)["x"]
    ran = _run(_settled_env(), Action.RUN_RIGHT, 20)["x"]
    assert ran > walked + 10


def test_jump_leaves_the_ground_and_gravity_brings_it_back():
    """JUMP lifts the player off the ground; with no input it falls back to the same floor."""
    env = _settled_env()
    floor = env.info()["y"]
    info = _run(env, Action.JUMP, 1)
    assert not info["on_ground"] and info["y"] < floor
    heights = [_run(env, Action.JUMP, 1)["y"] for _ in range(8)]
    assert min(heights) < floor - 20
    for _ in range(60):
        info = _run(env, Action.IDLE, 1)
        if info["on_ground"]:
            break
    assert info["on_ground"] and info["y"] == floor


@pytest.mark.parametrize("action, sign", [(Action.RIGHT_JUMP, 1), (Action.LEFT_JUMP, -1)])
def test_side_jumps_move_through_the_air(action, sign):
    """RIGHT_JUMP and LEFT_JUMP leave the ground and travel in their direction."""
    env = _settled_env()
    _run(env, Action.RIGHT, 10)
    start = _run(env, Action.IDLE, 10)  # at rest, facing right
    end = _run(env, action, 6)
    assert not end["on_ground"] and end["y"] < start["y"]
    assert sign * (end["x"] - start["x"]) > 5


def test_reaching_the_flag_ends_the_episode_with_reward():
    """Walking and jumping to the flag terminates the episode with the goal reward."""
    from world.agents import ScriptedAgent

    env = PlatformerEnv(seed=3, level_columns=60)
    env.reset()
    agent = ScriptedAgent(seed=3)
    for _ in range(2000):
        _, reward, terminated, truncated, info = env.step(agent.act(env.game))
        if terminated or truncated:
            break
    assert terminated and info["status"] == "goal" and reward >= 1.0


def test_walking_blindly_right_dies_with_a_penalty():
    """Holding RIGHT without jumping ends in a gap or an enemy: terminated, negative reward."""
    env = PlatformerEnv(seed=3)
    env.reset()
    for _ in range(3000):
        _, reward, terminated, truncated, info = env.step(Action.RIGHT)
        if terminated or truncated:
            break
    assert terminated and info["status"] == "dead" and reward < 0


def test_stepping_a_finished_episode_is_an_error():
    """After termination, step() raises until reset()."""
    env = PlatformerEnv(seed=3)
    env.reset()
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(Action.RIGHT)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(Action.IDLE)


def test_bad_action_and_theme_are_errors():
    """An out-of-range action or an unknown theme is rejected with a clear message."""
    with pytest.raises(ValueError, match="unknown theme"):
        PlatformerEnv(seed=0, theme="moon")
    env = PlatformerEnv(seed=0)
    env.reset()
    with pytest.raises(ValueError, match="action"):
        env.step(8)
