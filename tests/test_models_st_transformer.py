import dataclasses

import torch

from models.config import TransformerConfig
from models.st_transformer import Attention, STTransformer

CONFIG = TransformerConfig(num_layers=2, model_dim=32, num_heads=2, head_dim=16)
FRAMES, TOKENS = 5, 6


def stack(config: TransformerConfig = CONFIG) -> STTransformer:
    torch.manual_seed(0)
    return STTransformer(config, tokens_per_frame=TOKENS, max_frames=8)


def test_output_keeps_input_shape():
    """An ST-transformer maps (B, T, S, D) to (B, T, S, D)."""
    x = torch.randn(3, FRAMES, TOKENS, CONFIG.model_dim)
    assert stack()(x).shape == x.shape


def test_temporal_attention_is_causal():
    """Changing frame t+1 leaves every output at frames <= t unchanged, and changes frame t+1."""
    model = stack()
    x = torch.randn(2, FRAMES, TOKENS, CONFIG.model_dim)
    changed = x.clone()
    changed[:, 3] += torch.randn_like(changed[:, 3])
    before, after = model(x), model(changed)
    torch.testing.assert_close(after[:, :3], before[:, :3])
    assert not torch.allclose(after[:, 3], before[:, 3])


def test_without_temporal_attention_frames_are_independent():
    """With temporal = false a block has no temporal weights and every frame's output ignores the others."""
    model = stack(dataclasses.replace(CONFIG, temporal=False))
    assert not any("temporal" in name for name, _ in model.named_parameters())
    x = torch.randn(2, FRAMES, TOKENS, CONFIG.model_dim)
    changed = x.clone()
    changed[:, 3] += torch.randn_like(changed[:, 3])
    before, after = model(x), model(changed)
    torch.testing.assert_close(after[:, [0, 1, 2, 4]], before[:, [0, 1, 2, 4]])
    assert not torch.allclose(after[:, 3], before[:, 3])


def test_kv_cache_frame_by_frame_matches_full_pass():
    """Feeding frames one at a time through a KV cache gives the outputs of one causal pass."""
    model = stack().eval()
    x = torch.randn(2, FRAMES, TOKENS, CONFIG.model_dim)
    cache = model.new_kv_cache(2 * TOKENS, "cpu", torch.float32)
    first = model(x[:, :2], cache)  # a two-frame prefill, then single frames
    cache.advance(2)
    rest = []
    for t in range(2, FRAMES):
        rest.append(model(x[:, t:t + 1], cache))
        cache.advance()
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), model(x))


def test_qk_norm_makes_attention_pattern_scale_invariant():
    """With QK-norm, scaling an attention layer's input scales its output exactly (the pattern is fixed)."""
    torch.manual_seed(0)
    attention = Attention(CONFIG)
    x = torch.randn(4, TOKENS, CONFIG.model_dim)
    torch.testing.assert_close(attention(10 * x, is_causal=False), 10 * attention(x, is_causal=False))


def test_without_qk_norm_attention_pattern_depends_on_scale():
    """Without QK-norm the same scaling sharpens the attention, so the output is not scaled exactly."""
    torch.manual_seed(0)
    attention = Attention(dataclasses.replace(CONFIG, qk_norm=False))
    x = torch.randn(4, TOKENS, CONFIG.model_dim)
    assert not torch.allclose(attention(10 * x, is_causal=False), 10 * attention(x, is_causal=False), atol=1e-3)


def test_activation_checkpointing_gives_the_same_gradients():
    """Recomputing blocks in backward gives the gradients of the plain forward."""
    x = torch.randn(2, FRAMES, TOKENS, CONFIG.model_dim)
    gradients = []
    for checkpointing in (False, True):
        model = stack(dataclasses.replace(CONFIG, activation_checkpointing=checkpointing)).train()
        model(x).square().mean().backward()
        gradients.append(model.blocks[0].spatial.qkv.weight.grad)
    torch.testing.assert_close(gradients[1], gradients[0])


def test_bf16_autocast_forward_and_backward_run():
    """Under bf16 autocast the attention runs in bf16 and the gradients are finite."""
    model = stack()
    dtypes = []
    model.blocks[0].temporal.qkv.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    x = torch.randn(2, FRAMES, TOKENS, CONFIG.model_dim)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x).float().square().mean().backward()
    assert dtypes == [torch.bfloat16]
    assert all(parameter.grad is not None and torch.isfinite(parameter.grad).all() for parameter in model.parameters())
