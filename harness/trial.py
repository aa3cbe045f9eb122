"""What every trainable does first: convert the Tune dict strictly and set up the process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from harness.checkpoint import pick_device, set_deterministic
from harness.config import from_dict
from harness.stages import StageStore

T = TypeVar("T")


@dataclass(frozen=True)
class TrialContext:
    """Where a trial runs, as opposed to what it computes (the config): not part of any hash."""

    data_file: str  # the dataset's uint8 tensor cache, written by the driver before Ray starts
    data_fingerprint: str  # content hash of that dataset (harness.identity.data_fingerprint)
    out: str  # the run's --out folder (stage cache and manifests live under it)
    threads: int  # torch intra-op threads = the CPUs Ray reserved for the trial
    inception_weights: str | None = None  # torch-fidelity's Inception weights file, when one is available
    run: str = ""  # the run's id (its Tune experiment's name)
    recompute_stages: bool = False  # --rerun stages: compute every stage again, once per run
    reuse_stale_stages: bool = False  # --reuse-stale-stages: reuse stages computed by other code
    stage_wait_timeout_s: float = 24 * 3600.0  # give up waiting for another trial's stage after this long
    deterministic: bool = False  # --deterministic: deterministic kernels on CUDA (CPU runs are already)
    artifacts: str = ""  # the trial's own folder for figure data: <out>/artifacts/<identity>
    # The datasets a trial reads besides its own (``other_datasets(config)``: DeGAN's proxy), each decoded by the
    # driver too: dataset name -> its tensor-cache file, and dataset name -> its content fingerprint.
    other_data: dict[str, str] = field(default_factory=dict)
    other_fingerprints: dict[str, str] = field(default_factory=dict)


def other_datasets(config) -> tuple[str, ...]:
    """The registered datasets a trial of ``config`` reads besides ``config.dataset``: its ``other_datasets``
    (a config property; a trial over a true and a proxy dataset names the proxy's source there), else none."""
    return tuple(getattr(config, "other_datasets", ()))


# Benchmarks only (bench/stage_cache.py): each trial keeps its stages to itself, as without a cache.
PRIVATE_STAGES_ENV = "GANSWEEP_PRIVATE_STAGES"


def stage_root(context: TrialContext) -> StageStore:
    """Where the trial's cached stages live (``<out>/cache/stages``, shared by every trial of the run)
    and the run's stage policy (recompute, reuse stale stages, how long to wait for another trial)."""
    root = Path(context.out) / "cache" / "stages"
    if os.environ.get(PRIVATE_STAGES_ENV):
        from ray import tune

        root = Path(context.out) / "cache" / "private-stages" / tune.get_context().get_trial_id()
    return StageStore(root, context.run, context.recompute_stages, context.reuse_stale_stages,
                      context.stage_wait_timeout_s)


def setup(params: dict[str, Any], config_cls: type[T]) -> tuple[T, TrialContext, torch.device]:
    """Strictly convert ``params`` (``{"config": ..., "context": ..., ...}``), pin torch's threads
    to the trial's CPUs, and pick the device."""
    config = from_dict(config_cls, params["config"])
    context = from_dict(TrialContext, params["context"])
    # NOTE: without this every trial starts one thread per core and trials sharing a node slow
    # each other down; Ray reserves `threads` CPUs per trial.
    torch.set_num_threads(context.threads)
    # NOTE: also when False: Ray may reuse a worker process that ran a --deterministic trial before.
    set_deterministic(context.deterministic)
    return config, context, pick_device()
