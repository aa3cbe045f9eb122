"""Supervised classifier training, shared by every method that trains a classifier: its config,
optimiser, one epoch, evaluation, and the final metrics derived from the per-epoch history."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F

from harness import metrics as M
from harness.checkpoint import device_name, rng_states, seed_everything, set_rng_states
from harness.config import check
from harness.data import augment, batches, get_dataset, load_images, make_split, to_float
from harness.models import CLASSIFIERS, build_classifier
from harness.registry import UnknownName
from harness.stages import Stage, StageStore, stage
from harness.storage import atomic_write


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
    # An epoch's length in passes over the training subset: ceil(epoch_scale * N / batch_size) optimiser steps
    # (1: one pass). Pham 2019's "same number of optimisation steps" rows train a 10k subset with 5 beside the
    # 50k one; a classifier trained on generated images only takes an epoch of its real subset's length.
    epoch_scale: float = 1.0
    # NOTE: Pennisi never mentions augmentation, so the paper profile follows his text and trains
    # without it (both 0 / False there); the standard CIFAR pair (4 px crop, flip) is this named option,
    # applied to every method alike (generated images included) when a profile turns it on.
    crop_padding: int = 4  # px of reflect padding before a random crop back to size (0: no crop)
    flip: bool = True  # random horizontal flip
    # Early stopping (0: off, train all ``epochs``): stop once validation accuracy has not improved for
    # ``patience`` epochs; ``epochs`` is then the maximum. The converge profile uses it so every stage
    # trains until its own validation signal is flat, instead of a capped budget where "more epochs"
    # explains differences between methods.
    patience: int = 0
    # A smaller dataset for CPU budgets (0: the whole official train set): a fixed class-balanced pool
    # of this many training images (the same for every seed) from which fraction and val_fraction are cut.
    train_pool: int = 0
    eval_batch_size: int = 1024  # images per forward pass when evaluating (no effect on results)
    # Budget caps (0: no cap). They shorten an epoch and the evaluation sets: smoke uses them so that
    # a test trial takes seconds, Pennisi's mini so that a table fits a 2-core CPU; paper leaves them 0.
    max_batches_per_epoch: int = 0  # optimiser steps per epoch at most
    max_eval_images: int = 0  # N validation and N test images at most (a fixed random subset)
    # True: the test set is evaluated after every epoch (a test-accuracy curve per epoch, e.g. for figures).
    # False: only once, when training ends, with the weights of the two epochs the reports read (best
    # validation accuracy, best validation loss; kept in the checkpoint): the same final metrics, and the
    # test set never consulted during training. The converge profile uses False: 10,000 test images per
    # epoch were ~3/4 of a ResNet-20 epoch on 2,000 Fashion-MNIST images here (26 s of 35 s, one core).
    test_every_epoch: bool = True

    @property
    def planned_epochs(self) -> int:
        """How many epochs (so, per-epoch reports) a complete trial of this config reports."""
        return self.epochs

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
        check(self.epoch_scale > 0, f"epoch_scale {self.epoch_scale} must be positive")
        check(self.max_batches_per_epoch >= 0 and self.max_eval_images >= 0, "budget caps are negative")
        check(self.crop_padding >= 0, f"crop_padding {self.crop_padding} is negative")
        check(self.patience >= 0, f"patience {self.patience} is negative")
        check(self.train_pool >= 0, f"train_pool {self.train_pool} is negative")
        check(list(self.milestones) == sorted(self.milestones), f"milestones {self.milestones} are not sorted")


def make_optimizer(cfg: ClassifierConfig, params: Iterable[torch.nn.Parameter]):
    """The optimiser and its multistep schedule (stepped once per epoch)."""
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    return opt, sched


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, target) -> a scalar to minimise


def train_epoch(model, opt, batch_iter: Iterator[tuple[torch.Tensor, torch.Tensor]],
                loss_fn: LossFn = F.cross_entropy) -> dict:
    """One epoch of steps on ``loss_fn(logits, target)`` over the (image, target) batches of ``batch_iter``:
    cross-entropy with labels by default, or e.g. :func:`kd_loss` with a teacher's logits as the target (train
    accuracy is then agreement with the teacher's argmax). A target may also be a tuple whose first item is the
    labels that train accuracy is scored on, the loss reading all of it (class-incremental learning: labels and
    the old model's logits). Stops at the first non-finite loss."""
    model.train()
    loss_sum = correct = seen = steps = 0
    for xb, yb in batch_iter:
        logits = model(xb)
        loss = loss_fn(logits, yb)
        if not torch.isfinite(loss):
            return {M.TRAIN_LOSS: math.nan, M.TRAIN_ACC: math.nan, "images": seen, "steps": steps,
                    "diverged": True}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        labels = yb[0] if isinstance(yb, tuple) else yb.argmax(1) if yb.is_floating_point() else yb
        n = len(labels)
        loss_sum += loss.item() * n
        correct += (logits.argmax(1) == labels).sum().item()
        seen += n
        steps += 1
    return {M.TRAIN_LOSS: loss_sum / seen, M.TRAIN_ACC: 100.0 * correct / seen, "images": seen,
            "steps": steps, "diverged": False}


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
            weight: float) -> torch.Tensor:
    """Knowledge distillation (Hinton, Vinyals, Dean 2015, Sec. 2), averaged over the batch:

        L = weight * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - weight) * CE(s, argmax t)

    with s the student's and t the teacher's logits. T^2 keeps the soft term's gradients on one scale as T
    changes (Hinton: "it is important to multiply them by T^2"). The hard term's targets are the teacher's
    predictions, since data-free distillation has no labels (the released DeGAN's KD scripts do the same).
    Addepalli et al. 2020 (Sec. 5.1) weigh the soft term 1 and the hard term 0. NOTE: KD_related_data.py sums
    over the batch instead of averaging (KD_dfgan.py averages, as here); under Adam that rescaling changes only the
    role of its epsilon."""
    t = temperature
    soft = F.kl_div(F.log_softmax(student_logits / t, 1), F.log_softmax(teacher_logits / t, 1),
                    reduction="batchmean", log_target=True) * t * t
    if weight == 1:
        return soft
    return weight * soft + (1 - weight) * F.cross_entropy(student_logits, teacher_logits.argmax(1))


def epoch_steps(cfg: ClassifierConfig, n: int) -> int:
    """Optimiser steps of one epoch over ``n`` training images: ceil(epoch_scale * n / B), within the cap."""
    steps = math.ceil(cfg.epoch_scale * n / cfg.batch_size)
    return min(steps, cfg.max_batches_per_epoch) if cfg.max_batches_per_epoch else steps


def real_batches(x, y, cfg: ClassifierConfig, generator: torch.Generator):
    """The training batches of a classifier config: its batch size, augmentation and epoch length (shuffled
    passes over the subset, as many as ``epoch_scale`` asks; the step cap)."""
    if cfg.epoch_scale == 1:  # one pass (its last batch may be smaller)
        it = batches(x, y, cfg.batch_size, generator, cfg.crop_padding, cfg.flip)
        return itertools.islice(it, cfg.max_batches_per_epoch) if cfg.max_batches_per_epoch else it
    passes = (batches(x, y, cfg.batch_size, generator, cfg.crop_padding, cfg.flip) for _ in itertools.count())
    return itertools.islice(itertools.chain.from_iterable(passes), epoch_steps(cfg, len(y)))


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


def stop_early(history: list[dict], patience: int) -> bool:
    """Early stopping: True once the best validation accuracy (earliest on ties) is ``patience`` or more
    epochs behind the last epoch of ``history``; never with ``patience`` 0."""
    done = [h for h in history if math.isfinite(h[M.VAL_ACC])]
    if not patience or not done:
        return False
    best = min(done, key=lambda h: (-h[M.VAL_ACC], h[M.EPOCH]))
    return history[-1][M.EPOCH] - best[M.EPOCH] >= patience


def final_metrics(history: list[dict]) -> dict:
    """Best-epoch metrics from the per-epoch history (ties go to the earliest epoch).

    Derived from the history rather than tracked alongside it, so a resumed run (whose history comes
    from the checkpoint) cannot disagree with an uninterrupted one.
    """
    done = [h for h in history if math.isfinite(h[M.VAL_LOSS])]
    if not done:
        return {k: math.nan for k in (M.TEST_ACC_AT_BEST_VAL_LOSS, M.TEST_ACC_AT_BEST_VAL_ACC, M.TEST_ERR_AT_BEST_VAL_ACC,
                                      M.BEST_VAL_LOSS, M.BEST_VAL_ACC, M.BEST_VAL_LOSS_EPOCH,
                                      M.BEST_VAL_ACC_EPOCH)}
    by_loss = min(done, key=lambda h: (h[M.VAL_LOSS], h[M.EPOCH]))
    by_acc = min(done, key=lambda h: (-h[M.VAL_ACC], h[M.EPOCH]))
    return {
        M.TEST_ACC_AT_BEST_VAL_LOSS: by_loss[M.TEST_ACC],
        M.TEST_ACC_AT_BEST_VAL_ACC: by_acc[M.TEST_ACC],
        M.TEST_ERR_AT_BEST_VAL_ACC: 100.0 - by_acc[M.TEST_ACC],
        M.BEST_VAL_LOSS: by_loss[M.VAL_LOSS],
        M.BEST_VAL_ACC: by_acc[M.VAL_ACC],
        M.BEST_VAL_LOSS_EPOCH: by_loss[M.EPOCH],
        M.BEST_VAL_ACC_EPOCH: by_acc[M.EPOCH],
    }


# ---------------------------------------------------------------------------------------------
# A cell's data, and the classifier stage (the baseline cell = every method's pre-trained classifier)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CellData:
    """A cell's images on the device: its training subset, validation split and test set."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    shape: tuple[int, int, int]
    num_classes: int
    split_hash: str
    data_key: str  # the dataset's content fingerprint (harness.identity.data_fingerprint)


def cell_data(data_file: str, cfg: ClassifierConfig, device: torch.device, fingerprint: str) -> CellData:
    """Load the dataset's tensor cache (whose content hash the driver computed: ``fingerprint``) and cut
    the cell's split (and the eval caps) from it."""
    images = load_images(data_file)
    if cfg.train_pool and cfg.train_pool < len(images.train_y):
        # A fixed pool (seed 0, class-balanced); each seed cuts its split inside it. The split is kept as
        # indices into the official train set, so its hash (a stage key) differs between pools.
        pool = make_split(images.train_y, cfg.train_pool / len(images.train_y), 0.0, 0).train
        inner = make_split(images.train_y[pool], cfg.fraction, cfg.val_fraction, cfg.seed)
        split = dataclasses.replace(inner, train=pool[inner.train], val=pool[inner.val])
    else:
        split = make_split(images.train_y, cfg.fraction, cfg.val_fraction, cfg.seed)
    images = images.to(device)
    val_x, val_y = eval_subset(images.train_x[split.val], images.train_y[split.val], cfg)
    test_x, test_y = eval_subset(images.test_x, images.test_y, cfg)
    return CellData(images.train_x[split.train], images.train_y[split.train], val_x, val_y, test_x, test_y,
                    images.shape, len(images.classes), split.hash, fingerprint)


def classifier_epoch(model, opt, sched, batch_iter, data: CellData, cfg: ClassifierConfig, epoch: int,
                     loss_fn: LossFn = F.cross_entropy) -> tuple[dict, dict]:
    """Train one epoch on ``batch_iter`` (with ``loss_fn``, see :func:`train_epoch`), step the schedule, evaluate
    on validation and (with ``cfg.test_every_epoch``) on test; else the row's test metrics stay NaN until
    :func:`test_at_best`.

    Returns the epoch's history row and the training stats (images, steps, diverged)."""
    stats = train_epoch(model, opt, batch_iter, loss_fn)
    sched.step()
    val_loss = val_acc = test_loss = test_acc = math.nan
    if not stats["diverged"]:
        val_loss, val_acc = evaluate(model, data.val_x, data.val_y, cfg.eval_batch_size)
        if cfg.test_every_epoch:
            test_loss, test_acc = evaluate(model, data.test_x, data.test_y, cfg.eval_batch_size)
    row = {M.EPOCH: epoch, M.TRAIN_LOSS: stats[M.TRAIN_LOSS], M.TRAIN_ACC: stats[M.TRAIN_ACC],
           M.VAL_LOSS: val_loss, M.VAL_ACC: val_acc, M.TEST_LOSS: test_loss, M.TEST_ACC: test_acc}
    return row, {**stats, "diverged": stats["diverged"] or not math.isfinite(val_loss)}


def keep_best(kept: dict, history: list[dict], model, cfg: ClassifierConfig) -> dict:
    """``kept`` ({"acc"|"loss": {"epoch", "model"}}) with the model's weights (a CPU copy) under each of best
    validation accuracy and best validation loss that the last epoch of ``history`` now holds (ties go to
    the earliest epoch, as in :func:`final_metrics`). Nothing is kept when every epoch is tested."""
    if cfg.test_every_epoch or not math.isfinite(history[-1][M.VAL_LOSS]):
        return kept
    best, epoch, weights, kept = final_metrics(history), history[-1][M.EPOCH], None, dict(kept)
    for key, best_epoch in (("acc", M.BEST_VAL_ACC_EPOCH), ("loss", M.BEST_VAL_LOSS_EPOCH)):
        if best[best_epoch] == epoch:
            weights = weights or {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            kept[key] = {"epoch": epoch, "model": weights}
    return kept


def test_at_best(kept: dict, history: list[dict], model, data: CellData, cfg: ClassifierConfig) -> None:
    """The end of a run that does not test every epoch: evaluate each kept epoch's weights on the test set
    (a copy of ``model``; the model itself is untouched) and write the numbers into that epoch's history row."""
    if cfg.test_every_epoch:
        return
    probe = copy.deepcopy(model)
    rows = {h[M.EPOCH]: h for h in history}
    for epoch, weights in {k["epoch"]: k["model"] for k in kept.values()}.items():
        probe.load_state_dict(weights)
        rows[epoch][M.TEST_LOSS], rows[epoch][M.TEST_ACC] = evaluate(probe, data.test_x, data.test_y,
                                                                     cfg.eval_batch_size)


def add_cost(cost: dict, stats: dict, seconds: float) -> dict:
    return {**cost, M.WALL_S: cost[M.WALL_S] + seconds, M.IMAGES_SEEN: cost[M.IMAGES_SEEN] + stats["images"],
            M.OPT_STEPS: cost[M.OPT_STEPS] + stats["steps"]}


NEW_COST = {M.WALL_S: 0.0, M.IMAGES_SEEN: 0, M.OPT_STEPS: 0, M.RESTARTS: 0}


def fit_classifier(cfg: ClassifierConfig, data: CellData, device: torch.device, ckpt, make_batches=None,
                   epoch_metrics=None, loss_fn: LossFn = F.cross_entropy,
                   model: torch.nn.Module | None = None) -> dict:
    """Supervised training per ``cfg``: one checkpoint (and, with a TuneCheckpointer, one report) per
    epoch through ``ckpt``; resumes from ``ckpt.restore()``.

    ``make_batches(generator)`` gives an epoch's batches (default: the real subset with the config's
    augmentation; GAN augmentation mixes in generated images). ``epoch_metrics()``, when given, returns
    additive metrics of the epoch just trained (numbers, or per-class lists of numbers: a filter's counts);
    they are kept in the epoch's history row and the result carries their sums over the epochs so far, so a
    resumed run reports the totals of an uninterrupted one. ``loss_fn(logits, target)`` is the training loss on
    those batches (default: cross-entropy with labels; a student's: :func:`kd_loss` on a teacher's logits).
    ``model``, when given, is trained instead of a new ``cfg.model`` (class-incremental learning grows the old
    model's head); only its parameters that require gradients are optimised.
    Returns the history, the cost, the final metrics, the weights at the lowest validation loss (the model
    Pennisi carries into his stage 2) and, when the test set is not evaluated every epoch, ``kept``: the weights
    of the best validation accuracy and loss (:func:`keep_best`; DeGAN's teacher is the former)."""
    generator = seed_everything(cfg.seed)
    make_batches = make_batches or (lambda g: real_batches(data.train_x, data.train_y, cfg, g))
    if model is None:
        model = build_classifier(cfg.model, data.shape[0], data.shape[1], data.num_classes).to(device)
    opt, sched = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    history, best, kept, cost, start_epoch, result = [], None, {}, NEW_COST, 1, {}
    if state := ckpt.restore():
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"], generator)
        history, best, start_epoch, result = state["history"], state["best"], state["epoch"] + 1, state["result"]
        kept = state["kept"]
        cost = {**state["cost"], M.RESTARTS: state["cost"][M.RESTARTS] + 1}
        if result.get(M.STOPPED_EARLY) or result.get(M.DIVERGED):  # ended just before a crash: nothing to train
            start_epoch = cfg.epochs + 1

    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        row, stats = classifier_epoch(model, opt, sched, make_batches(generator), data, cfg, epoch, loss_fn)
        cost = add_cost(cost, stats, time.perf_counter() - t0)
        extras = epoch_metrics() if epoch_metrics else {}
        history.append({**row, **extras})
        kept = keep_best(kept, history, model, cfg)
        if not stats["diverged"] and (best is None or row[M.VAL_LOSS] < best["val_loss"]):
            best = {"val_loss": row[M.VAL_LOSS], "epoch": epoch,
                    "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        stopped = stop_early(history, cfg.patience)
        complete = stopped or stats["diverged"] or epoch == cfg.epochs
        if complete:
            test_at_best(kept, history, model, data, cfg)
        result = {**history[-1], **final_metrics(history), **sum_over_epochs(history, extras), **cost,
                  M.DEVICE: device.type, M.DEVICE_NAME: device_name(device), M.SPLIT_HASH: data.split_hash,
                  M.DIVERGED: int(stats["diverged"]), M.DONE_EPOCHS: epoch, M.STOPPED_EARLY: int(stopped),
                  M.COMPLETE: int(complete)}
        ckpt.save(result, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                           "scheduler": sched.state_dict(), "rng": rng_states(generator), "history": history,
                           "best": best, "kept": kept, "cost": cost, "epoch": epoch, "result": result})
        if stats["diverged"] or stopped:  # a divergence is marked in the results; the grid goes on
            break
    return {"history": history, "cost": cost, "result": result, "best": best, "kept": kept}


def sum_over_epochs(history: list[dict], keys) -> dict:
    """Per key, the sum of its values over the history rows (element-wise for per-class lists)."""
    out = {}
    for k in keys:
        values = [r[k] for r in history if k in r]
        if values and isinstance(values[0], (list, tuple)):
            out[k] = [sum(col) for col in zip(*values)]
        else:
            out[k] = sum(values)
    return out


CLASSIFIER_STAGE_FILE = "classifier.pt"


def classifier_stage(cfg: ClassifierConfig, data: CellData, device: torch.device, stage_root: StageStore | Path,
                     make_checkpointer) -> tuple[Stage, dict]:
    """The pre-trained classifier of ``cfg`` from the stage cache, trained if absent.

    The ``baseline`` cell with this config *is* this stage, whichever trial computes it first.
    ``make_checkpointer(work_dir)`` gives the checkpointer of the training (Tune's for the baseline
    trial, the stage's work folder inside other methods). Returns the stage and its payload:
    ``{"history", "cost", "result", "best", "kept"}`` with ``best["model"]`` the lowest-val-loss weights
    (:func:`fit_classifier`; stages stored before "kept" existed lack it).
    """

    def compute(artifact: Path, work: Path) -> None:
        fitted = fit_classifier(cfg, data, device, make_checkpointer(work))
        atomic_write(artifact / CLASSIFIER_STAGE_FILE, lambda f: torch.save(fitted, f))

    st = stage(stage_root, "classifier", cfg, (data.data_key,), compute)
    return st, torch.load(st.path(CLASSIFIER_STAGE_FILE), weights_only=False)


def frozen_classifier(cfg: ClassifierConfig, data: CellData, device: torch.device, stage_root: StageStore | Path,
                      what: str = "classifier") -> tuple[Stage, torch.nn.Module, dict]:
    """The classifier stage of ``cfg`` (:func:`classifier_stage`) with the weights of its best validation accuracy,
    in eval mode without gradients: DeGAN's teacher, class-incremental learning's old model (``what``, for the
    error when it diverged). ``cfg.test_every_epoch`` must be False, so that the stage keeps those weights
    (:func:`keep_best`). Returns (stage, network, the stage's payload)."""
    from harness.checkpoint import FolderCheckpointer

    st, fitted = classifier_stage(cfg, data, device, stage_root, FolderCheckpointer)
    if "acc" not in fitted.get("kept", {}):
        raise RuntimeError(f"the {what} {cfg.model} diverged: no weights to freeze")
    net = build_classifier(cfg.model, data.shape[0], data.shape[1], data.num_classes).to(device)
    net.load_state_dict(fitted["kept"]["acc"]["model"])
    return st, net.eval().requires_grad_(False), fitted


def paired_steps(n: int, batch_size: int, p_r: float) -> int:
    """Optimiser steps of one Algorithm 1 epoch over ``n`` real samples (see :func:`paired_batches`)."""
    n_real = round(p_r * batch_size)
    return math.ceil(n / (n_real or batch_size))


def paired_batches(x: torch.Tensor, y: torch.Tensor, cfg: ClassifierConfig, p_r: float, make_fake,
                   generator: torch.Generator, real_only: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One classifier epoch of Pennisi's Algorithm 1: every real sample x_i once, each with generated
    images x_g = G(z; y_i) of its own label, the batch being x = [x_g, x_i] with a fraction ``p_r`` real.

    A batch takes ``round(p_r * B)`` real samples from one shuffled pass over the subset and
    ``B - round(p_r * B)`` generated ones whose labels are the real ones' labels, repeated in order
    (at p_r = 0.5: one generated image per real one, same label); the last batch is smaller, in the
    same ratio. So an epoch has ceil(N / round(p_r B)) steps: more steps than a baseline epoch when
    p_r < 1, which is why the report compares with a compute-matched baseline. At p_r = 0 the pass
    supplies labels only (B generated images per step, ceil(N / B) steps).

    ``real_only`` is the compute-matched control: the same steps and batch size, every image real
    (the generated slots filled by further real images from a reshuffled stream).
    """
    n = len(y)
    n_real = round(p_r * cfg.batch_size)
    per_step = n_real or cfg.batch_size  # samples of the pass consumed per step
    steps = paired_steps(n, cfg.batch_size, p_r)
    if cfg.max_batches_per_epoch:
        steps = min(steps, cfg.max_batches_per_epoch)
    order = torch.randperm(n, generator=generator).to(x.device)
    extra = None
    if real_only:  # the generated slots' real images: further shuffled passes, cycled
        need = steps * (cfg.batch_size - n_real)
        extra = torch.cat([torch.randperm(n, generator=generator) for _ in range(math.ceil(need / n) or 1)])
        extra = extra.to(x.device)
    for step in range(steps):
        idx = order[step * per_step:(step + 1) * per_step]
        k = len(idx)
        n_fake = (cfg.batch_size - n_real) * k // per_step if n_real else k  # the ratio, kept in a short last batch
        fake_y = y[idx].repeat(math.ceil(n_fake / k))[:n_fake] if n_fake else y[idx][:0]
        parts_x, parts_y = [], []
        if n_fake:
            if real_only:
                j = extra[:n_fake]
                extra = extra[n_fake:]
                parts_x.append(to_float(x[j]))
                parts_y.append(y[j])
            else:
                parts_x.append(make_fake(fake_y).detach())
                parts_y.append(fake_y)
        if n_real:
            parts_x.append(to_float(x[idx]))
            parts_y.append(y[idx])
        xb, yb = torch.cat(parts_x), torch.cat(parts_y)
        if cfg.crop_padding or cfg.flip:
            xb = augment(xb, cfg.crop_padding, cfg.flip, generator)
        yield xb, yb


def feature_classifier(cfg: ClassifierConfig, data: CellData, device: torch.device, stage_root: StageStore | Path,
                       model: str = "") -> tuple[Stage, torch.nn.Module]:
    """The pre-trained classifier of ``cfg``'s classifier fields (``model`` replaced when given) from the
    stage cache: the baseline cell's stage, whoever computed it. Returned frozen in eval mode, with the
    weights of its lowest validation loss; GAN methods measure FIDs in its feature space."""
    from harness.checkpoint import FolderCheckpointer

    base = ClassifierConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(ClassifierConfig)})
    if model:
        base = dataclasses.replace(base, model=model)
    st, fitted = classifier_stage(base, data, device, stage_root, FolderCheckpointer)
    if fitted["best"] is None:
        raise RuntimeError(f"the pre-trained {base.model} diverged: no classifier to measure with")
    net = build_classifier(base.model, data.shape[0], data.shape[1], data.num_classes).to(device)
    net.load_state_dict(fitted["best"]["model"])
    return st, net.eval().requires_grad_(False)


def mixed_batches(x: torch.Tensor, y: torch.Tensor, cfg: ClassifierConfig, p_r: float, make_fake,
                  generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One classifier epoch of batches with a fraction ``p_r`` of real images and ``1 - p_r``
    generated ones, ``[generated, real]`` as in Pennisi's Algorithm 1.

    An epoch has as many steps as the baseline's (ceil(N / batch_size)), so methods compare at equal
    optimiser steps. Real images come from one shuffled pass over the subset, ``round(p_r * B)`` per
    step (cycling when they run short); generated images are ``make_fake(labels)`` (float, [-1, 1])
    for labels drawn from the real training labels, so the class balance follows the data. Crop and
    flip (the config's) apply to the whole mixed batch.
    """
    steps = math.ceil(len(y) / cfg.batch_size)
    if cfg.max_batches_per_epoch:
        steps = min(steps, cfg.max_batches_per_epoch)
    n_real = round(p_r * cfg.batch_size)
    n_fake = cfg.batch_size - n_real
    order = torch.randperm(len(y), generator=generator)
    if n_real * steps > len(order):
        order = order.repeat(math.ceil(n_real * steps / len(order)))
    order = order.to(x.device)
    for step in range(steps):
        idx = order[step * n_real:(step + 1) * n_real]
        xr, yr = to_float(x[idx]), y[idx]
        if n_fake:
            yf = y[torch.randint(0, len(y), (n_fake,), generator=generator).to(y.device)]
            xb, yb = torch.cat([make_fake(yf).detach(), xr]), torch.cat([yf, yr])
        else:
            xb, yb = xr, yr
        if cfg.crop_padding or cfg.flip:
            xb = augment(xb, cfg.crop_padding, cfg.flip, generator)
        yield xb, yb
