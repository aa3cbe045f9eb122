"""The methods: one file each, registered by name with ``@register_method(ConfigClass)``.

Each trainable is a Ray Tune function trainable ``fn(params: dict) -> None`` whose ``params`` is
``{"method", "table", "cell", "config": <its config as a dict>, "context": <TrialContext>}``.
"""

from __future__ import annotations

from typing import Any, Callable

from harness.registry import Registry

METHODS: Registry[Callable[[dict], None]] = Registry("method")


def register_method(config_cls: type) -> Callable:
    """Register a trainable under its function name; ``fn.Config`` is its config dataclass."""

    def register(fn: Callable[[dict], None]) -> Callable[[dict], None]:
        fn.Config = config_cls
        return METHODS.register(fn)

    return register


def run_trial(space: dict[str, Any]) -> None:
    """The one trainable Ray Tune sees: ``{"trial": params}`` (one grid point), dispatched on
    ``params["method"]``."""
    params = space["trial"]
    return METHODS[params["method"]](params)


# Importing a method's module registers it.
from trainables import baseline, class_incremental, degan, filtered_sampling, gan_augmentation, gan_distillation, multi_gan  # noqa: E402,F401
