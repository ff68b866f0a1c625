"""FVD (evals/fvd.py) with an I3D (evals/i3d.py) loaded from weights the test makes: nothing is downloaded."""

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from evals.fvd import frechet_distance, fvd
from evals.i3d import InceptionI3d, load_i3d

RESOLUTION = 64  # a smaller input than FVD's 224 keeps the CPU test fast; the network is the same


@pytest.fixture(scope="module")
def i3d_weights(tmp_path_factory):
    """A randomly initialised I3D (He-normal convs, so activations neither vanish nor explode) saved as a file."""
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=32)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("i3d") / "i3d.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _videos(seed: int, n: int = 4) -> torch.Tensor:
    return torch.rand(n, 8, 3, 90, 160, generator=torch.Generator().manual_seed(seed))


def test_frechet_distance_of_known_gaussians():
    """Diagonal Gaussians: ||mu_a - mu_b||^2 + sum (sigma_a - sigma_b)^2; a set against itself: 0."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 3)) * [1.0, 2.0, 3.0]
    b = rng.normal(0, 1, (20000, 3)) * [2.0, 2.0, 1.0] + [1.0, 0.0, 0.0]
    assert frechet_distance(a, b) == pytest.approx(1.0 + 1.0 + 0.0 + 4.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(a[:1], b)


def test_identical_videos_give_fvd_zero_and_others_do_not(i3d_weights):
    """The loaded I3D gives FVD ~0 for a set of videos against itself, and a clearly positive FVD against other videos."""
    i3d = load_i3d(i3d_weights)
    assert i3d.logits.conv3d.out_channels == 32
    real = _videos(1)
    same = fvd(i3d, real, real.clone(), resolution=RESOLUTION)
    darker = fvd(i3d, real, real * 0.5, resolution=RESOLUTION)
    assert abs(same) < 1e-6 * max(darker, 1e-12)
    assert darker > 0 and not math.isnan(darker)


def test_state_dict_saved_by_torch_loads_the_same_network(i3d_weights, tmp_path):
    """A torch.save'd state dict loads (weights_only) into the same network as the safetensors file."""
    from safetensors.torch import load_file

    torch.save(load_file(str(i3d_weights)), tmp_path / "i3d.pt")
    clip = torch.rand(1, 3, 8, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_i3d(tmp_path / "i3d.pt")(clip), load_i3d(i3d_weights)(clip))


def test_bad_weights_are_refused_with_a_clear_error(i3d_weights, tmp_path):
    """A missing file, a file that is not a state dict and a state dict of another network are each refused."""
    with pytest.raises(FileNotFoundError, match="no I3D weights"):
        load_i3d(tmp_path / "absent.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an I3D state dict"):
        load_i3d(tmp_path / "other.pt")
    from safetensors.torch import load_file

    state = load_file(str(i3d_weights))
    del state["Mixed_5c.b0.conv3d.weight"]
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(RuntimeError, match="Mixed_5c.b0.conv3d.weight"):
        load_i3d(tmp_path / "partial.safetensors")
