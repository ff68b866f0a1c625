"""MaskGIT sampling of new frames from the dynamics model (Chang et al. 2022; Genie Sec. 3).

A new frame starts fully masked. Each of `steps` steps predicts every masked token, draws a
candidate for each from the model's distribution softmax(logits) ("random sampling"), and
keeps the most confident candidates, leaving masked the number the cosine schedule says, so
after the last step every token is filled. The frame is then committed to the context and
the next one starts.

The temperature is MaskGIT's (Chang et al. 2022, its parallel decoding): Gumbel noise scaled
by temperature * (1 - step / steps) is added to the log-probability of each candidate before
the most confident are kept, so early steps choose which tokens to fix with some randomness
and the last ones by confidence alone; the candidates themselves are drawn at temperature 1.
Genie's "25 MaskGIT steps, temperature 2, random sampling" read in MaskGIT's terms. (Dividing
the logits by 2 instead, which this sampler did before, flattens every draw: the small models
of `genie run` then fill black backgrounds with scattered bright tokens; benchmarks/RESULTS.md,
"MaskGIT's temperature".)

A FramePredictor holds the context. With the KV cache (the default) the context frames go
through the model once and each step runs only the new frame, attending to cached temporal
keys and values; without it every step recomputes the whole context (the reference the
cache is tested against). The context window is the model's max_frames: when it is full,
the oldest frame is dropped, and the new first frame gets the "no action" embedding, as the
first frame of a training clip does.
"""

import math

import torch

from models.dynamics import DynamicsModel


def unmasking_schedule(num_tokens: int, steps: int) -> list[int]:
    """How many tokens are still masked after each step: cosine, strictly decreasing to 0."""
    if not 1 <= steps <= num_tokens:
        raise ValueError(f"need 1 <= steps <= tokens per frame ({num_tokens}), got {steps} steps")
    remaining, previous = [], num_tokens
    for step in range(steps):
        cosine = math.floor(num_tokens * math.cos(math.pi / 2 * (step + 1) / steps))
        # at least one token per step, and enough left masked for every later step to fill one
        previous = max(min(cosine, previous - 1), steps - 1 - step)
        remaining.append(previous)
    return remaining


class FramePredictor:
    """The context of a generation and logits for the frame after it."""

    def __init__(self, dynamics: DynamicsModel, tokens: torch.Tensor, actions: torch.Tensor, use_cache: bool):
        """tokens: (B, T0, h, w) context, actions: (B, T0-1) between its frames."""
        self.dynamics = dynamics
        self.window = dynamics.config.max_frames - 1  # context frames beside the one being generated
        self.tokens = tokens  # (B, t, h, w) the context, at most `window` frames
        self.frame_actions = dynamics.incoming_actions(actions)  # (B, t)
        self._trim()
        self.cache = None
        if use_cache:
            dtype = next(dynamics.parameters()).dtype
            if torch.is_autocast_enabled(tokens.device.type):
                dtype = torch.get_autocast_dtype(tokens.device.type)
            self.cache = dynamics.new_kv_cache(tokens.shape[0], tokens.device, dtype)
            self._fill_cache()

    def logits(self, frame: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """frame: (B, h, w) with mask ids, action: (B,) into it -> (B, h, w, num_codes)."""
        if self.cache is not None:
            return self.cached_frame_logits(frame[:, None], action[:, None])[:, 0]
        tokens = torch.cat([self.tokens, frame[:, None]], dim=1)  # (B, t+1, h, w)
        frame_actions = torch.cat([self.frame_actions, action[:, None]], dim=1)  # (B, t+1)
        return self.dynamics.logits(tokens, frame_actions)[:, -1]

    def cached_frame_logits(self, frame: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One frame (B, 1, h, w) at the cache position -> logits (B, 1, h, w, num_codes).

        The only model call in a cached generation step (a benchmark may replace it with a
        CUDA-graph replay); it writes the frame's keys and values into the cache slot.
        """
        return self.dynamics.logits(frame, action, self.cache)

    def commit(self, frame: torch.Tensor, action: torch.Tensor) -> None:
        """Append a finished frame (B, h, w) and its incoming action (B,) to the context."""
        self.tokens = torch.cat([self.tokens, frame[:, None]], dim=1)
        self.frame_actions = torch.cat([self.frame_actions, action[:, None]], dim=1)
        slid = self._trim()
        if self.cache is None:
            return
        if slid:  # positions shifted: rebuild the cache from the new window
            self.cache.reset()
            self._fill_cache()
        else:  # write the finished frame's keys and values into its slot
            self.cached_frame_logits(frame[:, None], action[:, None])
            self.cache.advance()

    def _trim(self) -> bool:
        if self.tokens.shape[1] <= self.window:
            return False
        self.tokens = self.tokens[:, -self.window:]
        self.frame_actions = self.frame_actions[:, -self.window:].clone()
        self.frame_actions[:, 0] = self.dynamics.no_action_id
        return True

    def _fill_cache(self) -> None:
        self.dynamics.logits(self.tokens, self.frame_actions, self.cache)
        self.cache.advance(self.tokens.shape[1])


def _gumbel(shape: torch.Size, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    uniform = torch.rand(shape, device=device, generator=generator).clamp_(1e-20, 1.0)
    return -torch.log(-torch.log(uniform))


def sample_frame(predictor: FramePredictor, action: torch.Tensor, steps: int, temperature: float,
                 generator: torch.Generator | None) -> torch.Tensor:
    """MaskGIT-sample one frame (B, h, w) reached by `action` (B,) from the predictor's context."""
    dynamics = predictor.dynamics
    B, (h, w) = action.shape[0], (dynamics.config.token_height, dynamics.config.token_width)
    S, device = h * w, action.device
    tokens = torch.full((B, S), dynamics.mask_id, dtype=torch.long, device=device)
    masked = torch.ones(B, S, dtype=torch.bool, device=device)
    for step, still_masked in enumerate(unmasking_schedule(S, steps)):
        logits = predictor.logits(tokens.view(B, h, w), action).view(B, S, -1).float()  # (B, S, V)
        log_probs = torch.log_softmax(logits, -1)
        candidates = (log_probs + _gumbel(log_probs.shape, device, generator)).argmax(-1)  # a draw, (B, S)
        confidence = log_probs.gather(-1, candidates[..., None])[..., 0]  # (B, S)
        confidence = confidence + temperature * (1 - (step + 1) / steps) * _gumbel(confidence.shape, device, generator)
        candidates = torch.where(masked, candidates, tokens)
        confidence = confidence.masked_fill(~masked, math.inf)  # tokens already chosen stay chosen
        least_confident = confidence.topk(still_masked, dim=1, largest=False).indices  # (B, still_masked)
        masked = torch.zeros_like(masked).scatter_(1, least_confident, True)
        tokens = candidates.masked_fill(masked, dynamics.mask_id)
    return tokens.view(B, h, w)


@torch.no_grad()
def generate(dynamics: DynamicsModel, context_tokens: torch.Tensor, actions: torch.Tensor, steps: int = 25,
             temperature: float = 2.0, generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Generate the frames that follow a context.

    context_tokens: (B, T0, h, w) int64, T0 >= 1; actions: (B, T0-1+n) int64, the actions
    between the context frames followed by the n actions to play -> (B, n, h, w) int64.
    """
    B, T0 = context_tokens.shape[:2]
    if context_tokens.ndim != 4 or T0 < 1:
        raise ValueError(f"expected context tokens (B, T0 >= 1, h, w), got {tuple(context_tokens.shape)}")
    if actions.ndim != 2 or actions.shape[0] != B or actions.shape[1] < T0:
        raise ValueError(f"expected actions (B, T0-1+n) with n >= 1 = ({B}, >= {T0}), got {tuple(actions.shape)}")
    predictor = FramePredictor(dynamics, context_tokens, actions[:, :T0 - 1], use_cache)
    return play(predictor, actions[:, T0 - 1:], steps, temperature, generator)


@torch.no_grad()
def play(predictor: FramePredictor, actions: torch.Tensor, steps: int = 25, temperature: float = 2.0,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Generate one frame per action (B, n) after the predictor's context -> (B, n, h, w) int64."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    frames = []
    for action in actions.unbind(1):
        frame = sample_frame(predictor, action, steps, temperature, generator)
        predictor.commit(frame, action)
        frames.append(frame)
    return torch.stack(frames, dim=1)  # (B, n, h, w)
