import dataclasses
from typing import Literal

import pytest

from schemas.config import ConfigError, from_dict, load


@dataclasses.dataclass(frozen=True)
class Inner:
    retries: int = 3
    backoff_s: float = 1.0


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    mode: Literal["pad", "crop"] = "pad"
    queries: tuple[str, ...] = ()
    inner: Inner = Inner()


def test_nested_config_loads_from_toml(tmp_path):
    """A TOML file with a nested table becomes nested frozen dataclasses with converted types."""
    path = tmp_path / "job.toml"
    path.write_text('name = "x"\nqueries = ["a", "b"]\n[inner]\nbackoff_s = 2\n')
    config = load(Outer, path)
    assert config == Outer(name="x", queries=("a", "b"), inner=Inner(retries=3, backoff_s=2.0))


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "inner": {"retry": 1}}, "'inner.retry'"),
    ({"name": "x", "inner": {"retries": "3"}}, "'inner.retries'"),
    ({"name": "x", "mode": "zoom"}, "'mode'"),
    ({"name": 5}, "'name'"),
    ({}, "name"),
])
def test_bad_keys_and_values_name_the_key(data, message):
    """Unknown keys, wrong types, bad choices and missing keys are errors naming the key."""
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


@pytest.mark.parametrize("section, key, value", [
    ("metrics", "log_every", 0), ("optim", "max_steps", 0), ("optim", "grad_accumulation", 0), ("optim", "lr", -1.0),
    ("optim", "min_lr_ratio", 1.5), ("parallel", "shard_group_size", -1), ("parallel", "activation_checkpointing_every", 0),
])
def test_training_ranges_fail_at_load_naming_the_key(tmp_path, section, key, value):
    """A bad value in a training job file is a ConfigError when it loads, naming the key's full path."""
    from jobs.train import TrainJobConfig

    path = tmp_path / "job.toml"
    path.write_text(f'[run]\nname = "x"\n[train.{section}]\n{key} = {value}\n')
    with pytest.raises(ConfigError, match=f"'train.{section}.{key}'"):
        load(TrainJobConfig, path)


@pytest.mark.parametrize("text, key", [
    ('[run]\nname = "x"\n[scaling]\nworkers = 0\n', "'scaling.workers'"),
    ('[run]\nname = "x"\n[scaling]\ncpus_per_worker = -1\n', "'scaling.cpus_per_worker'"),
    ('[run]\nname = "../up"\n', "'run.name'"),
])
def test_train_resources_and_names_fail_at_load(tmp_path, text, key):
    """Resource counts and the run name are checked when the job file loads, naming the key."""
    from jobs.train import TrainJobConfig

    path = tmp_path / "job.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load(TrainJobConfig, path)


def test_one_resources_shape_across_jobs():
    """Ingest's pools, tokenize's actors and train's workers are all WorkerResources (workers, cpus, gpus per worker)."""
    from jobs.ingest import RaySection
    from jobs.resources import WorkerResources
    from jobs.tokenize import TokenizeJobConfig
    from jobs.train import ScalingSection

    import typing

    assert typing.get_type_hints(RaySection)["download"] is WorkerResources
    assert typing.get_type_hints(RaySection)["process"] is WorkerResources
    assert typing.get_type_hints(TokenizeJobConfig)["resources"] is WorkerResources
    assert issubclass(ScalingSection, WorkerResources)
