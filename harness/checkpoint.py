"""Checkpoint I/O inside a Ray Tune trial: the state of a run (model, optimiser, RNGs, epoch,
history) goes into a ``tune.Checkpoint`` each epoch and comes back from ``tune.get_checkpoint()``
when a trial restarts, so a resumed trial ends with the numbers of an uninterrupted one."""

from __future__ import annotations

import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ray import tune


STATE_FILE = "state.pt"
# Fault injection for the reliability tests: a trial whose process sees this variable dies hard
# (os._exit, as a killed worker would) right after saving the checkpoint of that epoch.
CRASH_AFTER_EPOCH_ENV = "GANSWEEP_CRASH_AFTER_EPOCH"
# The same inside a stage computed in a trial's folder checkpointer (the classifier or GAN stage of
# gan_distillation): the process dies right after saving that epoch of the stage, once per stage (a
# marker in the stage's work folder keeps the restarted attempt from dying again).
CRASH_IN_STAGE_AFTER_EPOCH_ENV = "GANSWEEP_CRASH_IN_STAGE_AFTER_EPOCH"
CRASH_MARKER = "crashed-once"
# For the stop-and-resume tests: seconds a trial sleeps after each epoch's report, so that a test can stop
# the driver while a trial is between two epochs (past a checkpoint, before its end).
EPOCH_DELAY_ENV = "GANSWEEP_EPOCH_DELAY_S"


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


CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's deterministic workspace setting (":16:8" is the other one it accepts)


def set_deterministic(enabled: bool) -> None:
    """Deterministic GPU kernels for this process (``--deterministic``), or torch's defaults again.

    On the CPU gansweep's runs are already bit-for-bit repeatable with a fixed seed and the same
    ``--cpus-per-trial`` (every random number comes from a seeded generator; torch's threads = the CPUs
    reserved; tests/test_determinism.py), so this changes nothing there. On CUDA a fixed seed is not
    enough (PyTorch's reproducibility notes, https://pytorch.org/docs/stable/notes/randomness.html):
    cuDNN benchmarks several convolution algorithms and keeps the fastest, which can differ between
    runs, and some kernels accumulate with atomic adds in whatever order threads finish. Enabled, this
    sets

    - ``torch.use_deterministic_algorithms(True)``: deterministic kernels where they exist, and a
      ``RuntimeError`` naming the operation where none does (rather than silently varying numbers).
      NOTE: on CUDA that includes the backward of ``nn.AdaptiveAvgPool2d`` (resnet20/32 and the torchvision
      classifiers) and of bilinear ``F.interpolate``; it is untested here, the project has no GPU machine.
    - ``torch.backends.cudnn.deterministic = True`` and ``torch.backends.cudnn.benchmark = False``: one
      fixed convolution algorithm, chosen without timing.
    - ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless already set, e.g. to ``:16:8``), as PyTorch's notes
      prescribed for CUDA >= 10.2 (NVIDIA's cuBLAS guide, "Results reproducibility"): older torch
      releases raise on every cuBLAS call in deterministic mode without it. The torch installed here
      (2.14) no longer checks, since it gives each handle and stream its own workspace
      (pytorch/pytorch#161749); we set it anyway, at no cost, for clusters on older torch. cuBLAS reads it
      when its handle is created, so this must run before the process's first matrix product on the GPU.

    Costs speed (PyTorch's notes: "Deterministic operations are often slower"). Determinism still holds
    only for the same hardware, CUDA, cuDNN and torch versions. Disabled: torch's defaults (nondeterministic
    kernels allowed, cuDNN neither deterministic nor benchmarking); the environment variable is left as is.
    """
    # NOTE: only on a change: torch.use_deterministic_algorithms imports torch._inductor.config and with it
    # torch._dynamo, 1.9 s of every Ray worker that imports nothing else of it (a baseline trial's; seen with
    # PYTHONPROFILEIMPORTTIME, 2026-12-02)
    if torch.are_deterministic_algorithms_enabled() != enabled:
        torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def report(metrics: dict, state: dict) -> None:
    """``tune.report`` the epoch's metrics with a checkpoint of ``state``."""
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / STATE_FILE)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
    crash_after = os.environ.get(CRASH_AFTER_EPOCH_ENV)
    if crash_after and int(crash_after) == state.get("epoch"):
        os._exit(17)
    # NOTE: also after a trial's last report: the search kill test needs the trial alive after its one report at
    # smoke (without the pause, LeNet trials let the whole search end between two polls: seen 2026-12-02)
    if delay := os.environ.get(EPOCH_DELAY_ENV):
        time.sleep(float(delay))


def restore() -> dict | None:
    """The state saved by the trial's last checkpoint, or None on a fresh start."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / STATE_FILE, weights_only=False)


_warned_no_cuda = False


def pick_device() -> torch.device:
    """CUDA when Ray gave this trial a GPU (it sets CUDA_VISIBLE_DEVICES), else the CPU.

    A trial given a GPU slot where torch sees no CUDA (a node declaring GPUs it does not have, a
    CPU-only torch build) runs on the CPU, with one warning line per process instead of failing."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    global _warned_no_cuda
    if not _warned_no_cuda:
        import ray

        ids = ray.get_gpu_ids() if ray.is_initialized() else []
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        if ids or visible:
            _warned_no_cuda = True
            print(f"gansweep: warning: Ray assigned GPU {ids or visible} but torch sees no CUDA device "
                  f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); running on the CPU",
                  file=sys.stderr, flush=True)
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    """What ran a trial, finer than ``device.type``: the GPU's name, or the CPU's model and the kernels torch
    picked for it (e.g. AVX512). Why: one stage key trained on two CPU machines gave validation curves that differ
    by 0.1-0.5 points from the first epochs on (Addepalli's Fashion-MNIST teachers, 2026-12-02 morning and evening
    runs; within one machine the same trial is bit-identical), so results from two machines are comparable
    only as seeds are, and a row should say which machine it came from."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}; torch CPU kernels {torch.backends.cpu.get_cpu_capability()}"


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
        crash_after = os.environ.get(CRASH_IN_STAGE_AFTER_EPOCH_ENV)
        marker = self.file.with_name(CRASH_MARKER)
        if crash_after and int(crash_after) == state.get("epoch") and not marker.exists():
            marker.touch()
            os._exit(18)
