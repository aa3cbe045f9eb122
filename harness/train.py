"""Supervised classifier training, shared by every method that trains a classifier: its config,
optimiser, one epoch, evaluation, and the final metrics derived from the per-epoch history."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from harness import metrics as M
from harness.config import check
from harness.data import batches, get_dataset, to_float
from harness.models import CLASSIFIERS
from harness.registry import UnknownName


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that decides a supervised classifier run; its hash is the cell's identity.

    Defaults are Pennisi 2021 Sec. 4.1 (the ``paper`` profile): Adam with default betas, lr 1e-4,
    batch 512, 200 epochs, 20% of CIFAR-10 for training and 10% for validation.
    """

    dataset: str = "cifar10"  # registered dataset name, or imagefolder:<path>
    fraction: float = 0.2  # share of the official train set used for training, in (0, 1]
    val_fraction: float = 0.1  # share of the official train set held out for validation (Pennisi: 10%)
    seed: int = 0  # seeds the split, the weights, the batch order and the augmentation
    model: str = "alexnet"  # a registered classifier
    optimizer: str = "adam"  # "adam" (default betas) or "sgd" (with momentum)
    lr: float = 1e-4  # learning rate
    momentum: float = 0.9  # SGD momentum (ignored by Adam)
    weight_decay: float = 0.0  # L2 penalty
    milestones: tuple[int, ...] = ()  # epochs (1-based) after which lr is multiplied by gamma
    gamma: float = 0.1  # learning-rate factor at each milestone
    batch_size: int = 512  # images per optimiser step
    epochs: int = 200  # passes over the training subset
    # NOTE: Pennisi states no augmentation; we use the standard CIFAR pair (4 px crop, flip) for
    # every method alike, so the comparison between methods is unaffected. Set 0 / False to drop it.
    crop_padding: int = 4  # px of reflect padding before a random crop back to size (0: no crop)
    flip: bool = True  # random horizontal flip
    eval_batch_size: int = 1024  # images per forward pass when evaluating (no effect on results)
    # Budget caps for the smoke profile (0: no cap). They shorten an epoch and the evaluation sets
    # so that a test trial takes seconds; the mini and paper profiles leave them at 0.
    max_batches_per_epoch: int = 0  # optimiser steps per epoch at most
    max_eval_images: int = 0  # first N validation and N test images at most

    def __post_init__(self):
        try:
            get_dataset(self.dataset)
        except UnknownName as exc:
            check(False, str(exc))
        check(self.model in CLASSIFIERS, f"unknown classifier {self.model!r}; known: {', '.join(CLASSIFIERS)}")
        check(0 < self.fraction <= 1, f"fraction {self.fraction} is outside (0, 1]")
        # A validation split is required: every method selects its model on it.
        check(0 < self.val_fraction < 1, f"val_fraction {self.val_fraction} is outside (0, 1)")
        check(self.fraction + self.val_fraction <= 1 + 1e-9,
              f"fraction {self.fraction} + val_fraction {self.val_fraction} exceeds the train set")
        check(self.seed >= 0, f"seed {self.seed} is negative")
        check(self.optimizer in ("adam", "sgd"), f"optimizer {self.optimizer!r} is not 'adam' or 'sgd'")
        check(self.lr > 0, f"lr {self.lr} must be positive")
        check(self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be at least 1")
        check(self.epochs >= 1, f"epochs {self.epochs} must be at least 1")
        check(self.max_batches_per_epoch >= 0 and self.max_eval_images >= 0, "budget caps are negative")
        check(self.crop_padding >= 0, f"crop_padding {self.crop_padding} is negative")
        check(list(self.milestones) == sorted(self.milestones), f"milestones {self.milestones} are not sorted")


def make_optimizer(cfg: ClassifierConfig, params: Iterable[torch.nn.Parameter]):
    """The optimiser and its multistep schedule (stepped once per epoch)."""
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    return opt, sched


def train_epoch(model, opt, batch_iter: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """One epoch of cross-entropy steps over ``batch_iter``; stops at the first non-finite loss."""
    model.train()
    loss_sum = correct = seen = steps = 0
    for xb, yb in batch_iter:
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        if not torch.isfinite(loss):
            return {M.TRAIN_LOSS: math.nan, M.TRAIN_ACC: math.nan, "images": seen, "steps": steps,
                    "diverged": True}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n = len(yb)
        loss_sum += loss.item() * n
        correct += (logits.argmax(1) == yb).sum().item()
        seen += n
        steps += 1
    return {M.TRAIN_LOSS: loss_sum / seen, M.TRAIN_ACC: 100.0 * correct / seen, "images": seen,
            "steps": steps, "diverged": False}


def real_batches(x, y, cfg: ClassifierConfig, generator: torch.Generator):
    """The training batches of a classifier config: its batch size, augmentation and step cap."""
    it = batches(x, y, cfg.batch_size, generator, cfg.crop_padding, cfg.flip)
    return itertools.islice(it, cfg.max_batches_per_epoch) if cfg.max_batches_per_epoch else it


def eval_subset(x: torch.Tensor, y: torch.Tensor, cfg: ClassifierConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation images under the config's cap (all of them when the cap is 0).

    NOTE: a fixed random subset, not the first N: datasets stored by class (ImageFolder CIFAR-10)
    would otherwise be evaluated on one class only (seen: 0% smoke test accuracy).
    """
    if not cfg.max_eval_images or cfg.max_eval_images >= len(y):
        return x, y
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:cfg.max_eval_images]
    keep = keep.to(y.device)
    return x[keep], y[keep]


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in %) of ``model`` in eval mode on uint8 images ``x``."""
    model.eval()
    loss_sum = correct = 0.0
    for start in range(0, len(y), batch_size):
        logits = model(to_float(x[start:start + batch_size]))
        yb = y[start:start + batch_size]
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return loss_sum / len(y), 100.0 * correct / len(y)


def final_metrics(history: list[dict]) -> dict:
    """Best-epoch metrics from the per-epoch history (ties go to the earliest epoch).

    Derived from the history rather than tracked alongside it, so a resumed run (whose history comes
    from the checkpoint) cannot disagree with an uninterrupted one.
    """
    done = [h for h in history if math.isfinite(h[M.VAL_LOSS])]
    if not done:
        return {k: math.nan for k in (M.TEST_ACC_AT_BEST_VAL_LOSS, M.TEST_ACC_AT_BEST_VAL_ACC,
                                      M.BEST_VAL_LOSS, M.BEST_VAL_ACC, M.BEST_VAL_LOSS_EPOCH,
                                      M.BEST_VAL_ACC_EPOCH)}
    by_loss = min(done, key=lambda h: (h[M.VAL_LOSS], h[M.EPOCH]))
    by_acc = min(done, key=lambda h: (-h[M.VAL_ACC], h[M.EPOCH]))
    return {
        M.TEST_ACC_AT_BEST_VAL_LOSS: by_loss[M.TEST_ACC],
        M.TEST_ACC_AT_BEST_VAL_ACC: by_acc[M.TEST_ACC],
        M.BEST_VAL_LOSS: by_loss[M.VAL_LOSS],
        M.BEST_VAL_ACC: by_acc[M.VAL_ACC],
        M.BEST_VAL_LOSS_EPOCH: by_loss[M.EPOCH],
        M.BEST_VAL_ACC_EPOCH: by_acc[M.EPOCH],
    }
