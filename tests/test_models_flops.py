import dataclasses

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from models.config import load_model_configs
from models.dynamics import DynamicsModel
from models.flops import attention_forward_flops, forward_flops, training_flops_per_step
from models.lam import LatentActionModel
from models.tokenizer import VideoTokenizer

CONFIGS = load_model_configs("tiny")
SMALL_GRID = dataclasses.replace(CONFIGS.dynamics, token_height=4, token_width=6)
SPATIAL_TOKENIZER = dataclasses.replace(
    CONFIGS.tokenizer, encoder=dataclasses.replace(CONFIGS.tokenizer.encoder, temporal=False),
    decoder=dataclasses.replace(CONFIGS.tokenizer.decoder, temporal=False))


@pytest.mark.parametrize("conditioning", ["add", "token"])
def test_dynamics_count_matches_pytorch_counter(conditioning):
    """For single frames (no causal half to skip), the dynamics count equals PyTorch's count exactly."""
    model = DynamicsModel(dataclasses.replace(SMALL_GRID, action_conditioning=conditioning))
    tokens = torch.randint(0, SMALL_GRID.num_codes, (3, 1, 4, 6))
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model.logits(tokens, torch.zeros(3, 1, dtype=torch.long))  # attention counted by its math kernel
    assert counter.get_total_flops() == forward_flops(model, (3, 1, 4, 6))


@pytest.mark.parametrize("model, video_shape", [
    (VideoTokenizer(CONFIGS.tokenizer), (1, 3, 3, 90, 160)),
    (VideoTokenizer(SPATIAL_TOKENIZER), (1, 3, 3, 90, 160)),
    (LatentActionModel(CONFIGS.lam), (2, 4, 3, 90, 160)),
    (DynamicsModel(SMALL_GRID), None),
], ids=["tokenizer", "spatial-only tokenizer", "lam", "dynamics"])
def test_matmul_count_outside_attention_matches_pytorch_counter(model, video_shape):
    """Every model's non-attention matmul FLOPs equal what PyTorch counts for a real forward."""
    if video_shape is None:
        batch_shape = (2, 4, 4, 6)
        inputs = (torch.randint(0, SMALL_GRID.num_codes, batch_shape), torch.zeros(2, 3, dtype=torch.long))
    else:
        batch_shape = video_shape
        inputs = (torch.rand(video_shape),)
    # eval(): in training the LAM also decodes through the codes alone for its logged PSNR, a
    # no-grad pass that is logging, not model FLOPs
    with torch.no_grad(), FlopCounterMode(display=False) as counter:  # CPU flash attention is not counted
        model.eval()(*inputs)
    assert counter.get_total_flops() == forward_flops(model, batch_shape) - attention_forward_flops(model, batch_shape)


def test_training_step_is_three_forwards():
    """A training step counts forward plus a backward of twice the forward."""
    model = DynamicsModel(SMALL_GRID)
    assert training_flops_per_step(model, (2, 4, 4, 6)) == 3 * forward_flops(model, (2, 4, 4, 6))
