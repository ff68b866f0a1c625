"""The quality model (models/quality.py): both encoders, and the safetensors/JSON model folder."""

import json

import numpy as np
import pytest
import torch

from models.quality import (QUALITY_MODELS, QualityModel, QualityModelConfig, load_quality_model, pick_frames,
                            save_quality_model)  # fmt: skip

# A ViT small enough to build in a test: open-clip reads architectures from JSON like this one.
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_clip_name(tmp_path_factory) -> str:
    import open_clip

    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / "tiny-test-vit.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(folder)
    return "tiny-test-vit"


def test_cnn_embeddings_are_unit_norm_and_logits_one_per_clip():
    """Clips (B, K, 3, H, W) of any frame size give B logits and B unit-norm embeddings."""
    model = QualityModel(QUALITY_MODELS["tiny"]).eval()
    logits, embeddings = model(torch.rand(3, 2, 3, 90, 160))
    assert logits.shape == (3,) and embeddings.shape == (3, 16)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_a_saved_model_loads_back_identical_from_safetensors_and_json(tmp_path):
    """The folder holds model.safetensors and config.json only; the loaded model gives the same outputs."""
    model = QualityModel(QUALITY_MODELS["tiny"]).eval()
    info = save_quality_model(tmp_path, model, {"threshold": 0.7})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded, loaded_info = load_quality_model(tmp_path)
    clips = torch.rand(2, 2, 3, 48, 80)
    assert torch.equal(model(clips)[0], loaded.eval()(clips)[0])
    assert loaded_info["threshold"] == 0.7 and loaded_info["model_id"] == info["model_id"]


def test_open_clip_tower_builds_untrained_and_loads_weights_from_a_local_file(tmp_path, tiny_clip_name):
    """With no weights the architecture is built untrained (nothing fetched); a local
    safetensors file of its weights is loaded into the frozen tower."""
    import open_clip
    from safetensors.torch import save_file

    reference = open_clip.create_model(tiny_clip_name)
    weights = tmp_path / "tiny.safetensors"
    save_file({name: value.contiguous() for name, value in reference.state_dict().items()}, str(weights))
    config = QualityModelConfig(encoder="open_clip", open_clip_model=tiny_clip_name, open_clip_weights=str(weights),
                                frames=2, embed_dim=8)  # fmt: skip
    model = QualityModel(config)
    tower = model.encoder.backbone.visual
    assert torch.equal(tower.conv1.weight, reference.visual.conv1.weight)
    assert not any(parameter.requires_grad for parameter in tower.parameters())
    logits, embeddings = model(torch.rand(2, 2, 3, 90, 160))
    assert logits.shape == (2,) and embeddings.shape == (2, 8)
    save_quality_model(tmp_path / "model", model, {"threshold": 0.5})  # the frozen tower is not copied in
    loaded, _ = load_quality_model(tmp_path / "model")
    assert torch.allclose(loaded.eval()(torch.ones(1, 2, 3, 90, 160))[0], model.eval()(torch.ones(1, 2, 3, 90, 160))[0])


def test_pick_frames_spreads_over_the_clip():
    """Evenly spaced frames from the middle of equal parts."""
    frames = np.arange(160)[:, None, None, None]
    assert pick_frames(frames, 4)[:, 0, 0, 0].tolist() == [20, 60, 100, 140]
    assert pick_frames(frames[:3], 4)[:, 0, 0, 0].tolist() == [0, 1, 1, 2]  # a short clip repeats frames
