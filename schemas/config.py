"""Typed configuration: TOML files whose sections mirror frozen dataclasses.

`load(cls, path)` reads a TOML file into `cls`; nested dataclass fields are TOML tables.
An unknown key, a missing required key or a value of the wrong type is an error that names
the key with its full path (`ingest.download.retries`), so a typo never passes silently.
"""

import dataclasses
import pathlib
import tomllib
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or mapping does not fit its dataclass."""


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
