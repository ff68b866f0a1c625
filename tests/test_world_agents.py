import pytest

from world.actions import N_ACTIONS
from world.agents import RandomAgent, ScriptedAgent, make_agent
from world.game import Game
from world.level import generate_level


def _play(agent, seed: int, max_frames: int = 3000) -> tuple[Game, list[int]]:
    game = Game(generate_level(seed))
    actions = []
    while not game.over and game.frame < max_frames:
        action = agent.act(game)
        actions.append(int(action))
        game.step(action)
    return game, actions


def test_scripted_agent_reaches_the_flag_most_of_the_time():
    """The scripted agent finishes at least 8 of 10 levels."""
    finished = sum(_play(ScriptedAgent(seed), seed)[0].status == "goal" for seed in range(100, 110))
    assert finished >= 8


def test_agents_are_deterministic_for_a_seed():
    """An agent's seed fixes its play."""
    assert _play(ScriptedAgent(5), 5)[1] == _play(ScriptedAgent(5), 5)[1]
    assert _play(RandomAgent(5), 5, 300)[1] == _play(RandomAgent(5), 5, 300)[1]


def test_random_agent_presses_every_action():
    """Over a few hundred frames the random agent uses the whole action set."""
    agent = RandomAgent(seed=1)
    game = Game(generate_level(1))
    pressed = {int(agent.act(game)) for _ in range(400)}
    assert pressed == set(range(N_ACTIONS))


def test_unknown_agent_is_an_error():
    """make_agent names the known agents when given an unknown one."""
    with pytest.raises(ValueError, match="scripted"):
        make_agent("greedy")
