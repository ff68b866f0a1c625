"""Typed configuration: TOML files whose sections mirror frozen dataclasses.

`load(cls, path)` reads a TOML file into `cls`; nested dataclass fields are TOML tables.
An unknown key, a missing required key, a value of the wrong type or out of its range is a
ConfigError that names the key with its full path (`train.metrics.log_every`), so a typo or a
bad value fails when the file loads, not inside a worker. A dataclass checks its ranges in
`__post_init__` with `at_least` / `in_range` (or raises ConfigError(message, key=field)); the
loader adds the section path to the key.
"""

import dataclasses
import pathlib
import tomllib
import types
import typing
from typing import Any, TypeVar
from schemas.errors import GenieError

T = TypeVar("T")


class ConfigError(GenieError, ValueError):
    """A configuration file or mapping does not fit its dataclass; `key` names the offending key."""

    def __init__(self, message: str, key: str | None = None):
        self.key, self.detail = key, message
        super().__init__(f"{key!r}: {message}" if key else message)

    def under(self, section: str) -> "ConfigError":
        """The same error with the section's path put before its key."""
        if not (section and self.key):
            return self
        return ConfigError(self.detail, f"{section}.{self.key}")


def at_least(config: Any, **minimums: float) -> None:
    """Raise a ConfigError naming the first field of `config` below its minimum."""
    for name, minimum in minimums.items():
        value = getattr(config, name)
        if value < minimum:
            raise ConfigError(f"must be >= {minimum}, got {value!r}", key=name)


def in_range(config: Any, name: str, low: float, high: float) -> None:
    """Raise a ConfigError naming the field unless low <= value <= high."""
    value = getattr(config, name)
    if not low <= value <= high:
        raise ConfigError(f"must be in [{low}, {high}], got {value!r}", key=name)


def load(cls: type[T], path: str | pathlib.Path) -> T:
    """Read a TOML file into the dataclass `cls`."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from None
    return from_dict(cls, data)


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build the dataclass `cls` from a mapping, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {type(data).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown key {key!r} (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        values[name] = _convert(value, hints[name], key)
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{where or 'config'}: {error}") from None
    except ConfigError as error:
        raise error.under(where) from None


def to_dict(config: Any) -> dict:
    """The plain-dict form of a config dataclass (for checkpoints and logs)."""
    return dataclasses.asdict(config)


def _convert(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key!r}: bad value {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key!r}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(item, args[0], key) for item in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{key!r}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(item, arg, key) for item, arg in zip(value, args))
        item_type = args[0] if args else Any
        return origin(_convert(item, item_type, key) for item in value)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{key!r}: {value!r} is not one of {typing.get_args(hint)}")
        return value
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{key!r}: expected int, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{key!r}: expected {hint.__name__}, got {value!r}")
    return value
