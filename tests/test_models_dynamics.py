import dataclasses

import pytest
import torch
import torch.nn.functional as F

from models.config import load_model_configs
from models.dynamics import DynamicsModel

CONFIG = load_model_configs("tiny").dynamics
SMALL_GRID = dataclasses.replace(CONFIG, token_height=4, token_width=6)


def dynamics(config=SMALL_GRID) -> DynamicsModel:
    torch.manual_seed(0)
    return DynamicsModel(config)


def batch(config=SMALL_GRID, B: int = 2, T: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, config.num_codes, (B, T, config.token_height, config.token_width), generator=generator)
    actions = torch.randint(0, config.num_actions, (B, T - 1), generator=generator)
    return tokens, actions


def test_forward_shapes_on_the_real_token_grid():
    """On the 23x40 grid the forward gives (B, T, 23, 40, num_codes) logits, a scalar loss and metrics."""
    tokens, actions = batch(CONFIG, B=1, T=2)
    out = dynamics(CONFIG)(tokens, actions)
    assert out.logits.shape == (1, 2, 23, 40, CONFIG.num_codes)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert {"accuracy", "mask_rate"} <= set(out.metrics)


@pytest.mark.parametrize("conditioning", ["add", "token"])
def test_logits_are_causal_in_time(conditioning):
    """Changing frame t+1's tokens or the action into it leaves the logits of frames <= t unchanged."""
    model = dynamics(dataclasses.replace(SMALL_GRID, action_conditioning=conditioning)).eval()
    tokens, actions = batch()
    mask = model.draw_mask(tokens.shape, tokens.device, torch.Generator().manual_seed(2))
    changed_tokens, changed_actions = tokens.clone(), actions.clone()
    changed_tokens[:, 2] = (changed_tokens[:, 2] + 1) % SMALL_GRID.num_codes
    changed_actions[:, 1] = (changed_actions[:, 1] + 1) % SMALL_GRID.num_actions  # the action into frame 2
    before = model(tokens, actions, mask).logits
    after = model(changed_tokens, changed_actions, mask).logits
    torch.testing.assert_close(after[:, :2], before[:, :2])
    assert not torch.allclose(after[:, 2], before[:, 2])


@pytest.mark.parametrize("conditioning", ["add", "token"])
def test_action_changes_the_frame_it_leads_to(conditioning):
    """The action a_t conditions the logits of frame t+1."""
    model = dynamics(dataclasses.replace(SMALL_GRID, action_conditioning=conditioning)).eval()
    tokens, actions = batch()
    mask = torch.zeros(tokens.shape, dtype=torch.bool)
    changed = actions.clone()
    changed[:, 0] = (changed[:, 0] + 1) % SMALL_GRID.num_actions
    assert not torch.allclose(model(tokens, changed, mask).logits[:, 1], model(tokens, actions, mask).logits[:, 1])


def test_training_mask_keeps_first_frame_and_rates_in_range():
    """Drawn masks never mask frame 0, and later frames are masked at rates between 0.5 and 1."""
    model = dynamics()
    mask = model.draw_mask(torch.Size((64, 4, 8, 8)), torch.device("cpu"), torch.Generator().manual_seed(3))
    assert not mask[:, 0].any()
    rates = mask[:, 1:].float().mean(dim=(2, 3))  # (64, 3) per-frame rates
    assert rates.min() > 0.3 and 0.65 < rates.mean() < 0.85


def test_loss_is_cross_entropy_on_masked_tokens_only():
    """The loss is the mean cross-entropy over exactly the masked tokens."""
    model = dynamics().eval()
    tokens, actions = batch()
    mask = model.draw_mask(tokens.shape, tokens.device, torch.Generator().manual_seed(4))
    out = model(tokens, actions, mask)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[mask], tokens[mask]))


def test_mismatched_actions_are_a_clear_error():
    """Actions that are not (B, T-1) are refused with the expected shape in the message."""
    tokens, actions = batch()
    with pytest.raises(ValueError, match="expected actions"):
        dynamics()(tokens, actions[:, :-1])


def test_bf16_autocast_training_step_runs():
    """A training step under bf16 autocast gives a finite loss and finite gradients."""
    model = dynamics()
    tokens, actions = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(tokens, actions)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(parameter.grad).all() for parameter in model.parameters() if parameter.grad is not None)
