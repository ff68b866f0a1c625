import dataclasses
import math

import pytest
import torch

from models.config import load_model_configs
from models.dynamics import DynamicsModel
from models.sampler import FramePredictor, generate, unmasking_schedule

# a small token grid and a 4-frame window keep generation fast and make the window slide
CONFIG = dataclasses.replace(load_model_configs("tiny").dynamics, token_height=4, token_width=6, max_frames=4)


def dynamics(config=CONFIG) -> DynamicsModel:
    torch.manual_seed(0)
    return DynamicsModel(config).eval()


def context(B: int = 2, T0: int = 2, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, CONFIG.num_codes, (B, T0, CONFIG.token_height, CONFIG.token_width), generator=generator)
    actions = torch.randint(0, CONFIG.num_actions, (B, T0 - 1 + n), generator=generator)
    return tokens, actions


def test_schedule_is_cosine_and_strictly_decreasing_to_zero():
    """The number still masked falls every step, follows the cosine, and reaches 0 at the last step."""
    schedule = unmasking_schedule(920, 25)
    assert len(schedule) == 25 and schedule[-1] == 0
    assert all(later < earlier for earlier, later in zip([920] + schedule, schedule))
    assert schedule[12] == math.floor(920 * math.cos(math.pi / 2 * 13 / 25))


def test_schedule_with_more_steps_than_tokens_is_refused():
    """Asking for more steps than tokens per frame is a clear error."""
    with pytest.raises(ValueError, match="steps"):
        unmasking_schedule(10, 11)


@pytest.mark.parametrize("use_cache", [True, False])
def test_every_masked_token_is_filled_in_exactly_the_configured_steps(use_cache):
    """Generating a frame takes `steps` model calls on masked input, each with fewer masks, ending with none."""
    model = dynamics()
    masked_per_call = []
    hook = model.token_embedding.register_forward_hook(
        lambda module, inputs, output: masked_per_call.append(int((inputs[0][:, -1] == model.mask_id).sum())))
    tokens, actions = context(B=1, n=1)
    new = generate(model, tokens, actions, steps=7, temperature=2.0, use_cache=use_cache,
                   generator=torch.Generator().manual_seed(0))
    hook.remove()
    sampling_calls = [count for count in masked_per_call if count > 0]
    assert len(sampling_calls) == 7
    assert sampling_calls[0] == CONFIG.token_height * CONFIG.token_width
    assert all(later < earlier for earlier, later in zip(sampling_calls, sampling_calls[1:]))
    assert not (new == model.mask_id).any() and new.shape == (1, 1, CONFIG.token_height, CONFIG.token_width)


def test_cached_and_uncached_generation_give_the_same_frames():
    """With the same seed, the KV-cache sampler generates exactly the frames of full recomputation,
    also after the context window slides."""
    model = dynamics()
    tokens, actions = context(B=2, T0=2, n=4)  # 6 frames through a 4-frame window
    frames = [generate(model, tokens, actions, steps=6, use_cache=use_cache,
                       generator=torch.Generator().manual_seed(5)) for use_cache in (True, False)]
    assert frames[0].shape == (2, 4, CONFIG.token_height, CONFIG.token_width)
    assert torch.equal(frames[0], frames[1])


def test_cached_and_uncached_agree_with_prepended_action_token():
    """The cache also reproduces recomputation when the action is a prepended token."""
    model = dynamics(dataclasses.replace(CONFIG, action_conditioning="token"))
    tokens, actions = context(B=1, T0=1, n=3)
    frames = [generate(model, tokens, actions, steps=5, use_cache=use_cache,
                       generator=torch.Generator().manual_seed(6)) for use_cache in (True, False)]
    assert torch.equal(frames[0], frames[1])


def test_same_seed_same_frames_other_seed_other_frames():
    """The generator's seed alone decides the sample: the same seed repeats it, another changes it."""
    model = dynamics()
    tokens, actions = context(B=1, n=2)
    first, again, other = (generate(model, tokens, actions, steps=4, generator=torch.Generator().manual_seed(seed))
                           for seed in (7, 7, 8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_missing_actions_are_a_clear_error():
    """Fewer actions than the context needs to produce a frame is refused."""
    tokens, actions = context(B=1, T0=3, n=1)
    with pytest.raises(ValueError, match="expected actions"):
        generate(dynamics(), tokens, actions[:, :1])


@pytest.mark.parametrize("conditioning", ["add", "token"])
def test_cached_logits_match_recomputation_frame_after_frame(conditioning):
    """Logits through the KV cache equal full recomputation at every step of every frame, past the window slide.

    Each frame is queried half-masked (as during sampling) and then committed unmasked, so a
    cache that kept the masked query's keys and values for the finished frame fails here.
    """
    model = dynamics(dataclasses.replace(CONFIG, action_conditioning=conditioning))
    tokens, actions = context(B=2, T0=2, n=0)
    generator = torch.Generator().manual_seed(2)
    cached, uncached = (FramePredictor(model, tokens, actions[:, :1], use_cache=use_cache) for use_cache in (True, False))
    with torch.no_grad():
        for _ in range(CONFIG.max_frames + 1):  # fills the window, then slides it twice
            frame = torch.randint(0, CONFIG.num_codes, tokens.shape[:1] + tokens.shape[2:], generator=generator)
            action = torch.randint(0, CONFIG.num_actions, (2,), generator=generator)
            query = frame.masked_fill(torch.rand(frame.shape, generator=generator) < 0.5, model.mask_id)
            torch.testing.assert_close(cached.logits(query, action), uncached.logits(query, action), rtol=1e-5, atol=1e-5)
            cached.commit(frame, action)
            uncached.commit(frame, action)


def test_past_the_window_the_context_is_the_latest_frames_starting_without_an_action():
    """Generating past max_frames slides the window: the logits are the model's on the latest max_frames-1
    frames, the first of them given the "no action" embedding as a training window's first frame."""
    model = dynamics()
    tokens, actions = context(B=1, T0=2, n=5)  # a 2-frame context, then 5 frames through a 4-frame window
    generated = generate(model, tokens, actions, steps=3, generator=torch.Generator().manual_seed(1))
    video, window = torch.cat([tokens, generated], dim=1), CONFIG.max_frames - 1  # 7 frames; 3 in context
    predictor = FramePredictor(model, video[:, :-1], actions[:, :video.shape[1] - 2], use_cache=True)
    probe, action = torch.full_like(video[:, -1], model.mask_id), actions[:, -1]
    context_actions = torch.cat([torch.full((1, 1), model.no_action_id), actions[:, -window:]], dim=1)  # (1, 4)
    expected = model.logits(torch.cat([video[:, -1 - window:-1], probe[:, None]], dim=1), context_actions)[:, -1]
    with torch.no_grad():
        torch.testing.assert_close(predictor.logits(probe, action), expected, rtol=1e-5, atol=1e-5)


class _FixedLogits:
    """A context whose every token has the same next-token distribution: 90% code 0, 10% code 1."""

    def __init__(self, dynamics: DynamicsModel):
        self.dynamics = dynamics

    def logits(self, frame: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        logits = torch.full(frame.shape + (CONFIG.num_codes,), -math.inf)
        logits[..., 0], logits[..., 1] = math.log(0.9), math.log(0.1)
        return logits


def test_temperature_randomises_which_tokens_are_kept_not_the_draws():
    """MaskGIT's temperature: with none, the likelier code wins the confidence ranking (the rare
    one is kept far below its 10%); a huge one keeps tokens in random order, so the share tends
    to the model's 10% and no further (dividing the logits by 100 would give ~50%)."""
    from models.sampler import sample_frame

    def rare_share(temperature):
        frames = sample_frame(_FixedLogits(dynamics()), torch.zeros(256, dtype=torch.long), steps=6,
                              temperature=temperature, generator=torch.Generator().manual_seed(3))
        assert frames.shape == (256, CONFIG.token_height, CONFIG.token_width)
        return float((frames == 1).float().mean())

    none, genie, huge = rare_share(0.0), rare_share(2.0), rare_share(100.0)
    assert none < genie < huge
    assert none < 0.04 and 0.07 < huge < 0.12
