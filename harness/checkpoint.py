"""Checkpoint I/O inside a Ray Tune trial: the state of a run (model, optimiser, RNGs, epoch,
history) goes into a ``tune.Checkpoint`` each epoch and comes back from ``tune.get_checkpoint()``
when a trial restarts, so a resumed trial ends with the numbers of an uninterrupted one."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from ray import tune

STATE_FILE = "state.pt"
# Fault injection for the reliability tests: a trial whose process sees this variable dies hard
# (os._exit, as a killed worker would) right after saving the checkpoint of that epoch.
CRASH_AFTER_EPOCH_ENV = "GANSWEEP_CRASH_AFTER_EPOCH"


def rng_states(generator: torch.Generator) -> dict:
    """Every random state a run draws from: ours (the data generator) and the global ones that
    dropout and weight init use."""
    states = {"generator": generator.get_state(), "torch": torch.get_rng_state(),
              "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict, generator: torch.Generator) -> None:
    generator.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> torch.Generator:
    """Seed the global RNGs and return the CPU generator that drives batches and augmentation."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def report(metrics: dict, state: dict) -> None:
    """``tune.report`` the epoch's metrics with a checkpoint of ``state``."""
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / STATE_FILE)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
    crash_after = os.environ.get(CRASH_AFTER_EPOCH_ENV)
    if crash_after and int(crash_after) == state.get("epoch"):
        os._exit(17)


def restore() -> dict | None:
    """The state saved by the trial's last checkpoint, or None on a fresh start."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / STATE_FILE, weights_only=False)


def pick_device() -> torch.device:
    """CUDA when Ray gave this trial a GPU (it sets CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TuneCheckpointer:
    """Per-epoch state through ``tune.Checkpoint``, with the epoch's metrics (plus ``extra``) through
    ``tune.report``: for the training a trial is about (resumed by Tune after a worker dies)."""

    def __init__(self, extra: dict | None = None):
        self.extra = extra or {}

    def restore(self) -> dict | None:
        return restore()

    def save(self, metrics: dict, state: dict) -> None:
        report({**metrics, **self.extra}, state)


class FolderCheckpointer:
    """Per-epoch state in a folder (a stage's ``.partial`` work folder), without reporting: for a stage
    computed inside another trial, whose epochs are not that trial's iterations."""

    def __init__(self, folder: Path):
        self.file = Path(folder) / STATE_FILE

    def restore(self) -> dict | None:
        return torch.load(self.file, weights_only=False) if self.file.is_file() else None

    def save(self, metrics: dict, state: dict) -> None:
        from harness.storage import atomic_write

        atomic_write(self.file, lambda f: torch.save(state, f))
