"""What every trainable does first: convert the Tune dict strictly and set up the process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from harness.checkpoint import pick_device
from harness.config import from_dict

T = TypeVar("T")


@dataclass(frozen=True)
class TrialContext:
    """Where a trial runs, as opposed to what it computes (the config): not part of any hash."""

    data_file: str  # the dataset's uint8 tensor cache, written by the driver before Ray starts
    out: str  # the run's --out folder (stage cache and manifests live under it)
    threads: int  # torch intra-op threads = the CPUs Ray reserved for the trial
    inception_weights: str | None = None  # torch-fidelity's Inception weights file, when one is available


# Benchmarks only (bench/stage_cache.py): each trial keeps its stages to itself, as without a cache.
PRIVATE_STAGES_ENV = "GANSWEEP_PRIVATE_STAGES"


def stage_root(context: TrialContext) -> Path:
    """Where the trial's cached stages live: ``<out>/cache/stages``, shared by every trial of the run."""
    if os.environ.get(PRIVATE_STAGES_ENV):
        from ray import tune

        return Path(context.out) / "cache" / "private-stages" / tune.get_context().get_trial_id()
    return Path(context.out) / "cache" / "stages"


def setup(params: dict[str, Any], config_cls: type[T]) -> tuple[T, TrialContext, torch.device]:
    """Strictly convert ``params`` (``{"config": ..., "context": ..., ...}``), pin torch's threads
    to the trial's CPUs, and pick the device."""
    config = from_dict(config_cls, params["config"])
    context = from_dict(TrialContext, params["context"])
    # NOTE: without this every trial starts one thread per core and trials sharing a node slow
    # each other down; Ray reserves `threads` CPUs per trial.
    torch.set_num_threads(context.threads)
    return config, context, pick_device()
