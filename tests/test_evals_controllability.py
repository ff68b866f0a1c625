"""ΔtPSNR and its bootstrap interval (evals/controllability.py), and the rollouts it scores (evals/rollouts.py)."""

import dataclasses

import numpy as np
import pytest
import torch

from evals import rollouts
from evals.controllability import bootstrap_interval, delta_psnr
from evals.images import psnr
from models.config import load_model_configs
from models.dynamics import DynamicsModel
from models.lam import LatentActionModel
from models.tokenizer import VideoTokenizer


def test_bootstrap_interval_covers_the_mean_at_the_expected_width():
    """For 400 draws of N(1, 1) the 95% interval holds 1 and is about 2 * 1.96 / sqrt(400) wide."""
    values = np.random.default_rng(0).normal(1.0, 1.0, 400)
    low, high = bootstrap_interval(values, confidence=0.95, resamples=4000)
    assert low < 1.0 < high
    assert high - low == pytest.approx(2 * 1.96 / 20, rel=0.15)


def test_bootstrap_resamples_whole_groups():
    """Windows of one clip move together: two clips with constant values give an interval spanning both."""
    values = np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
    low, high = bootstrap_interval(values, groups=np.array([0, 0, 0, 1, 1, 1]), resamples=2000)
    assert (low, high) == (0.0, 10.0)
    low, high = bootstrap_interval(values, resamples=2000)  # as six independent windows: narrower
    assert 0.0 < low and high < 10.0


def test_delta_psnr_is_the_mean_difference_at_frame_t():
    """ΔtPSNR at t reads column t-1 of both tables; a constant 2 dB gain gives 2 with a zero-width interval."""
    random = np.random.default_rng(1).uniform(15, 25, size=(12, 6))
    inferred = random.copy()
    inferred[:, 3] += 2.0
    result = delta_psnr(inferred, random, t=4, groups=np.repeat(np.arange(4), 3))
    assert (result.value, result.low, result.high) == pytest.approx((2.0, 2.0, 2.0))
    assert (result.windows, result.groups, result.t) == (12, 4, 4)
    assert delta_psnr(inferred, random, t=3).value == pytest.approx(0.0)
    with pytest.raises(ValueError, match="outside"):
        delta_psnr(inferred, random, t=7)


H, W = 16, 32  # small frames keep CPU rollouts fast: a 4x8 token grid


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    configs = load_model_configs("tiny")
    tokenizer = VideoTokenizer(dataclasses.replace(configs.tokenizer, frame_height=H, frame_width=W)).eval()
    lam = LatentActionModel(dataclasses.replace(configs.lam, frame_height=H, frame_width=W)).eval()
    grid = tokenizer.config.grid
    dynamics = DynamicsModel(dataclasses.replace(configs.dynamics, token_height=grid[0], token_width=grid[1])).eval()
    return tokenizer, lam, dynamics


def test_a_dynamics_model_that_ignores_actions_has_zero_delta_psnr(tiny_models):
    """With every action embedded alike, inferred and random actions generate the same frames: ΔtPSNR = 0."""
    tokenizer, lam, dynamics = tiny_models
    deaf = DynamicsModel(dynamics.config).eval()
    deaf.load_state_dict(dynamics.state_dict())
    with torch.no_grad():
        deaf.action_embedding.weight.zero_()
    video = torch.rand(2, 5, 3, H, W, generator=torch.Generator().manual_seed(3))
    inferred = rollouts.infer_actions(lam, video)  # (2, 4)
    random = rollouts.random_actions(inferred.shape, dynamics.config.num_actions, torch.Generator().manual_seed(4))
    assert not torch.equal(inferred, random)
    tables = [psnr(rollouts.rollout(tokenizer, deaf, video[:, 0], actions, steps=2, temperature=2.0, seed=5),
                   video[:, 1:]).numpy() for actions in (inferred, random)]
    result = delta_psnr(*tables, t=4)
    assert (result.value, result.low, result.high) == (0.0, 0.0, 0.0)
    # the same rollouts through a model that reads its actions do differ
    heard = [rollouts.rollout(tokenizer, dynamics, video[:, 0], actions, steps=2, temperature=2.0, seed=5)
             for actions in (inferred, random)]
    assert not torch.equal(*heard)


def test_next_frames_are_predicted_from_the_real_past(tiny_models):
    """Teacher forcing: the prediction of frame k depends on real frames < k only, never on frame k itself."""
    tokenizer, lam, dynamics = tiny_models
    video = torch.rand(1, 4, 3, H, W, generator=torch.Generator().manual_seed(6))
    actions = torch.tensor([[1, 2, 3]])
    predicted = rollouts.next_frames(tokenizer, dynamics, video, actions, steps=2, temperature=2.0, seed=0)
    assert predicted.shape == (1, 3, 3, H, W)
    changed_last = video.clone()
    changed_last[:, 3] = 1 - changed_last[:, 3]
    again = rollouts.next_frames(tokenizer, dynamics, changed_last, actions, steps=2, temperature=2.0, seed=0)
    torch.testing.assert_close(again, predicted)
