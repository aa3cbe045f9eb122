"""Configs are frozen dataclasses; the Ray Tune dict is converted strictly at the top of a trainable.

An unknown or a missing key is an error (never ``config.get(key, default)``), so a search-space key
that differs from what the trainable reads fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value that cannot run; the CLI prints it as one line and exits with code 2."""


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build the dataclass ``cls`` from ``values``, which must name every field and nothing else."""
    if not isinstance(values, dict):
        raise ConfigError(f"{cls.__name__}: expected a dict, got {type(values).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    missing = [n for n in names if n not in values]
    if unknown or missing:
        raise ConfigError(f"{cls.__name__}: unknown keys {unknown}, missing keys {missing}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name in names:
        value, hint = values[name], hints[name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)  # Tune and JSON hand tuples back as lists
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """The plain-dict form that travels through Ray Tune (tuples stay tuples until JSON)."""
    return dataclasses.asdict(config)


def config_hash(config: Any, *extra: str) -> str:
    """A short stable hash of a config (and of any extra strings, such as a method name)."""
    text = json.dumps([to_dict(config), list(extra)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check(condition: bool, message: str) -> None:
    """Validation helper for ``__post_init__``: raise ConfigError(message) unless condition holds."""
    if not condition:
        raise ConfigError(message)
