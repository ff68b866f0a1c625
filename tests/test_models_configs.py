import pytest
import torch

from models.config import CONFIG_DIR, load_model_configs
from models.dynamics import DynamicsModel
from models.lam import LatentActionModel
from models.tokenizer import VideoTokenizer
from schemas.config import ConfigError


def parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize("name", ["tiny", "local", "small", "paper"])
def test_named_configs_load_and_agree(name):
    """Every shipped config loads, and its dynamics matches its tokenizer grid and LAM actions."""
    configs = load_model_configs(name)
    assert (configs.dynamics.token_height, configs.dynamics.token_width) == configs.tokenizer.grid == (23, 40)
    assert configs.dynamics.num_actions == configs.lam.quantizer.num_codes == 8


@pytest.mark.parametrize("component, model_class, target", [
    ("tokenizer", VideoTokenizer, 200e6),
    ("lam", LatentActionModel, 300e6),
    ("dynamics", DynamicsModel, 10.1e9),
])
def test_paper_sizes_within_five_percent(component, model_class, target):
    """The paper config builds (on the meta device) models within 5% of the paper's sizes."""
    config = getattr(load_model_configs("paper"), component)
    with torch.device("meta"):
        model = model_class(config)
    assert abs(parameter_count(model) / target - 1) < 0.05


def test_unknown_key_names_the_key(tmp_path):
    """A typo in a model config file is an error naming the full key."""
    text = (CONFIG_DIR / "tiny.toml").read_text()
    path = tmp_path / "typo.toml"
    path.write_text(text.replace("[dynamics.transformer]\n", "[dynamics.transformer]\nnum_layer = 3\n"))
    with pytest.raises(ConfigError, match="dynamics.transformer.num_layer"):
        load_model_configs(path)


def test_mismatched_vocabulary_is_an_error(tmp_path):
    """A dynamics vocabulary that differs from the tokenizer codebook is refused."""
    text = (CONFIG_DIR / "tiny.toml").read_text()
    path = tmp_path / "mismatch.toml"
    path.write_text(text.replace("[dynamics]\nnum_codes = 1024", "[dynamics]\nnum_codes = 512"))
    with pytest.raises(ConfigError, match="num_codes"):
        load_model_configs(path)


def test_a_config_based_on_a_named_one_changes_only_the_keys_it_gives(tmp_path):
    """local.toml is tiny.toml with five quantizer options and five LAM ones, the nested tables
    (encoder, decoder, LAM quantizer) untouched; a based_on that names no config is refused."""
    import dataclasses

    tiny, local = load_model_configs("tiny"), load_model_configs("local")
    quantizer = local.tokenizer.quantizer
    assert (quantizer.ema_decay, quantizer.reset_draw) == (0.99, "error")
    assert (quantizer.bypass_steps, quantizer.kmeans_init_iters, quantizer.ema_all_ranks) == (100, 10, True)
    assert dataclasses.replace(local.tokenizer, quantizer=tiny.tokenizer.quantizer) == tiny.tokenizer
    lam_changes = {"action": "frame", "quantizer_loss_weight": 1.0, "unquantized_fraction": 0.0,
                   "band_motion_input": True, "action_shift": "band"}
    assert {key: getattr(local.lam, key) for key in lam_changes} == lam_changes
    assert dataclasses.replace(local.lam, **{key: getattr(tiny.lam, key) for key in lam_changes}) == tiny.lam
    assert local.dynamics == tiny.dynamics
    (tmp_path / "bad.toml").write_text('based_on = "huge"\n')
    with pytest.raises(ConfigError, match="based_on"):
        load_model_configs(tmp_path / "bad.toml")
