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
