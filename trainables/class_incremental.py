"""class_incremental: Addepalli, Nayak, Chakraborty, Babu 2020, DeGAN (AAAI 2020), Sec. 3.2 and 5.2, Table 3:
single-step class-incremental learning without the old classes' data.

The classes: ``old_classes + new_classes`` of the dataset's classes, a seeded random draw (``class_seed``), the
first ``old_classes`` of it old, the rest new (the paper: CIFAR-100, "a random set of 20 classes" then "the next
set of 20 classes"). Every image keeps the train/validation split of the cell (``fraction``, ``val_fraction``:
stratified per class).
Stage 1, the old model: ``model`` (the paper: ResNet-32) trained by softmax cross-entropy on the old classes'
training images with the config's recipe, early-stopped on their validation accuracy (``patience``), frozen at its
best validation accuracy (harness.train.frozen_classifier, as DeGAN's teacher): a cached stage, shared by every
row of a seed.
Stage 2, for ``strategy = "degan_kd"`` only: DeGAN's generator (harness.degan.generator_stage) trained on the new
classes' training images as the proxy data, the frozen old model as the teacher of its entropy and diversity
losses (over the old classes): a cached stage.
Stage 3, the incremental step: a copy of the old model whose head grows by ``new_classes`` rows (the old rows kept,
so before training its old-class logits are the old model's exactly), trained on the new classes' training images
only, for ``epochs`` at most, selected and early-stopped on ``selection``, by one of the rows of Table 3:

    finetune              CE(z, y) over all classes seen; every weight learns
    fixed_representation  CE(z, y) over all classes seen; only the new classes' head rows learn (the body, its
                          BatchNorm statistics included, and the old rows stay the old model's)
    lwf_mc                Rebuffi et al. 2017's LwF.MC (:func:`lwf_mc_loss`): per class a binary cross-entropy, the
                          new classes' targets the labels, the old classes' the old model's sigmoid outputs on the
                          same new images
    proxy_kd              CE(z_new, y) + kd_weight * KD(z_old, z_old^old; T) + scale_weight * L_scale, the
                          distillation term on the new images themselves ("Using Proxy Data", Li and Hoiem 2017's
                          losses)
    degan_kd              the same, the distillation term on a fresh batch of generated images each step

with z the grown model's logits, z_old and z_new its old and its new classes', z_old^old the frozen old model's,
CE over the new classes' logits only, KD Hinton's
(harness.train.kd_loss: T^2 KL of the softened softmaxes) and L_scale the logit-scaling regulariser
(:func:`logit_scale_loss`). Reported: test accuracy over every class seen at the best validation accuracy (Table
3's number), and the same model's accuracy on the old and on the new classes' test images.

Choices the paper leaves open (each a config field or stated here):
- The class draw (``class_seed``): -1 (the default) draws from the trial's seed, so that seeds average over draws
  as well as weights, while every row of a seed shares its draw, its old model and its split (paired gains). The
  paper does not give its draw; Rebuffi et al. fix one class order (seed 1993).
- The split: the paper trains on all 500 images of each class (as iCaRL); we hold out ``val_fraction`` (10%) of
  every class for model selection.
- The losses "to learn the new classes" and "to avoid catastrophic forgetting" (Sec. 5.2, citing Li and Hoiem
  2017): as LwF's, softmax CE over the new classes' logits only (LwF's new-task head) and Hinton's KD on the old
  classes' logits at LwF's temperature T = 2 (``temperature``; the DeGAN code's T = 20 was for distillation from
  scratch) and LwF's weight lambda_o = 1: harness.train.kd_loss multiplies the soft term by T^2 (Hinton's
  convention), LwF's softened cross-entropy does not, so ``kd_weight`` 1 / T^2 = 0.25 is LwF's 1. NOTE: CE over all classes seen pushes every old logit down on every new image,
  which KD (a softmax over the old logits only) cannot see: in a sanity run (CIFAR-10's 10,000-image pool, 5 + 5
  classes, LeNet, 4 epochs of Adam at 1e-3) it left 0.0% old-class test accuracy, with or without the scaling term
  (which did equalise the norms); CE over the new logits 26.5% (27.1% with the scaling term at weight 1).
- The regularisation term "to account for the relative scaling of logits between the old and new classes" has no
  formula in the paper. Ours (``scale_weight``; 0 turns it off): the squared gap between the mean L2 norm of the
  new classes' head rows and that of the old classes' (biases excluded). Why: the two groups' logits are trained
  by separate softmaxes (CE over the new ones, KD over the old ones), each blind to the other group's scale, yet
  one argmax compares them at test time; trained on new-class images only, the new classes' head rows outgrow the
  old ones' (Hou et al. 2019, LUCIR, Sec. 3.2; Zhao et al. 2020 align the norms after training). It needs no data,
  so proxy_kd and degan_kd carry the same term. Finetune, fixed_representation and lwf_mc (others' rows) have none.
- LwF.MC: sigmoid outputs, a binary cross-entropy per class for classification and distillation alike, new data
  only (Rebuffi et al. 2017 Sec. 4: iCaRL without exemplars, classifying by the network's output; the argmax of the
  logits, as the sigmoid is monotone). Summed over the classes and averaged over the batch: iCaRL's code averages
  over the classes too (lr 2.0), which is our sum at lr 2.0 / K; the sum keeps CE's gradient scale so one learning
  rate serves every row. No temperature, KD weight or scaling term. Its old model is every row's, trained with
  softmax CE (so that the five rows share one old model and differ in the update alone); iCaRL trains every step,
  the first included, with the per-class sigmoid loss, so its LwF.MC distils a sigmoid network's calibrated
  outputs, ours the sigmoid of a softmax network's logits (only their differences were trained).
- Finetuning and the fixed representation train with softmax CE (the paper's own loss for the new classes;
  iCaRL's baselines used its sigmoid network).
- Nothing in proxy_kd's and degan_kd's losses compares an old logit with a new one (CE reads the new logits, KD the
  old ones, each blind to a shift of its group): how the two groups compare at test time rests on the grown
  head's symmetric start and on the scaling term (norms of the weight rows; biases excluded).
- The generator: DeGAN's, weights as the released code's (harness.degan.VARIANTS["code"]: lambda_e 0,
  lambda_d 5), trained ``gan.epochs`` on the new classes' training images (all of them are the proxy).
- degan_kd's generated batch: ``batch_size`` images of G in eval mode, fresh each step, with the real batch's crop
  and flip; the CE term sees the new images only, the KD term the generated ones only ("This generated data is
  used in the Distillation Loss component"). Its train accuracy counts the new images against their labels and the
  generated ones against the old model's argmax (agreement). G's latents and their crop and flip come from the
  training generator (so that a resumed trial draws the same ones): after the first step, degan_kd's real batches
  are not the other rows' (the rows are paired by old model and data, not batch by batch).
- An epoch: one pass over the new classes' training images (harness.train.epoch_steps), for every row; degan_kd's
  steps also carry a generated batch, so its images seen are about twice the others'. The two halves go through
  the network as one batch, so BatchNorm's batch statistics (and running averages) mix new and generated images
  (the paper does not say; one forward pass per step keeps the row's cost near the others').
- Model selection and early stopping (``selection``): a data-free learner has no old-class images. "new_val" (the
  default): the new classes' held-out images, classified over all classes seen: what the setting allows; it sees
  no forgetting, so it stops when the new classes stop improving, and every row is selected by the same rule, so
  rows differ in their losses only. The rule favours the epochs that predict new classes most readily, which are
  the epochs that have forgotten most. "all_val": the held-out images of old and new classes (labelled old data
  the setting forbids): an oracle, to measure how much selection matters. iCaRL reports the model after its 70
  epochs, with no selection; a "last epoch" rule is not built.
- The old model's recipe is the incremental step's (the config's optimiser, schedule, augmentation and patience;
  iCaRL trains every step alike). The paper gives no hyperparameters for Sec. 5.2: the paper profile takes
  iCaRL's (search_spaces/addepalli2020.py).
- The old model's view of what the distillation term sees (``view_images`` of the generated images for degan_kd,
  of the new training images otherwise): its class histogram's balance etc. (harness.degan.teacher_view), the
  paper's argument in numbers ("new class data highly correlated to a small subset of the old classes").
Not done: further incremental steps (the paper's one step only), iCaRL itself (exemplars; not a row of Table 3).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from harness import metrics as M
from harness.checkpoint import TuneCheckpointer, seed_everything
from harness.config import ConfigError, check
from harness.data import augment
from harness.degan import generated_images, generator_stage, picked_images, teacher_view
from harness.gan_train import GANConfig
from harness.gans import UNCONDITIONAL_GANS, sample_unconditional
from harness.models import Classifier
from harness.stages import stage_counts
from harness.train import (CellData, ClassifierConfig, cell_data, eval_subset, evaluate, fit_classifier,
                           frozen_classifier, kd_loss, real_batches)
from harness.trial import setup, stage_root
from trainables import register_method

STRATEGIES = ("finetune", "fixed_representation", "lwf_mc", "proxy_kd", "degan_kd")
SELECTIONS = ("new_val", "all_val")


@dataclass(frozen=True)
class ClassIncrementalConfig(ClassifierConfig):
    """The incremental step's classifier config (``model``, optimiser, budget; also the old model's recipe), plus
    the class split, the strategy, its losses and DeGAN's generator. Defaults: the paper's setting (CIFAR-100, 20
    old then 20 new classes, ResNet-32) with iCaRL's schedule (Rebuffi et al. 2017 Sec. 4: batches of 128, 70
    epochs, lr divided by 5 after epochs 49 and 63) with He et al.'s CIFAR lr and weight decay for softmax CE
    (iCaRL's lr 2.0 and weight decay 1e-5 apply to a sigmoid loss averaged over its 100 outputs: 0.02 and 2e-3 on
    our per-class sum, a scale only LwF.MC's loss has)."""

    dataset: str = "cifar100"
    fraction: float = 0.9  # of each class's training images: the training part
    val_fraction: float = 0.1  # ... and the held-out part, for model selection (the paper holds none out)
    model: str = "resnet32"  # the old and the incremental model (Sec. 5.2: ResNet-32, as Rebuffi et al.)
    optimizer: str = "sgd"
    lr: float = 0.1  # He et al.'s for softmax CE on CIFAR (class docstring: iCaRL's 2.0 is for its own loss scale)
    weight_decay: float = 5e-4  # He et al.'s
    milestones: tuple[int, ...] = (49, 63)
    gamma: float = 0.2
    batch_size: int = 128
    epochs: int = 70
    test_every_epoch: bool = False  # must stay False: the old/new split is measured on the kept best weights
    old_classes: int = 20  # classes the old model learns (Sec. 5.2: 20)
    new_classes: int = 20  # classes the incremental step adds (Sec. 5.2: 20)
    class_seed: int = -1  # seeds the draw of the old and new classes (-1: the trial's seed)
    strategy: str = "degan_kd"  # the row of Table 3: one of STRATEGIES
    temperature: float = 2.0  # KD temperature T (Li and Hoiem 2017's 2; the paper gives none)
    kd_weight: float = 0.25  # of the KD term beside CE: 1 / T^2 is Li and Hoiem's lambda_o = 1; proxy_kd, degan_kd
    scale_weight: float = 1.0  # weight of the logit-scaling regulariser (0: off); proxy_kd, degan_kd
    selection: str = "new_val"  # what selects and early-stops the incremental model: one of SELECTIONS
    # DeGAN's generator (degan_kd): dfgan.py's DCGAN and loss weights, as trainables/degan.py's defaults
    gan: GANConfig = GANConfig(arch="dcgan_uncond", batch_size=2048, lr_g=2e-4, lr_d=2e-4, beta1=0.5, epochs=200,
                               diffaugment="", ema_decay=0.0, loss="bce")
    lambda_e: float = 0.0  # weight of the entropy loss (Eq. 7; dfgan.py's c_l = 0)
    lambda_d: float = 5.0  # weight of the diversity loss (Eq. 7; dfgan.py's d_l = 5)
    view_images: int = 1000  # images the old model's view of the distillation data is measured on

    # The generator has no validation signal to stop on (trainables/degan.py): it trains its fixed epochs.
    GAN_STOPS_EARLY = False

    def __post_init__(self):
        super().__post_init__()
        check(self.strategy in STRATEGIES, f"strategy {self.strategy!r} is not one of {STRATEGIES}")
        check(self.selection in SELECTIONS, f"selection {self.selection!r} is not one of {SELECTIONS}")
        check(self.old_classes >= 2 and self.new_classes >= 1,
              f"old_classes {self.old_classes} must be at least 2 and new_classes {self.new_classes} at least 1")
        check(self.class_seed >= -1, f"class_seed {self.class_seed} is below -1")
        check(not self.test_every_epoch, "test_every_epoch must be False: the old/new accuracies are measured on the "
                                         "weights kept at the best validation accuracy")
        check(self.gan.arch in UNCONDITIONAL_GANS,
              f"DeGAN's generator is unconditional: gan {self.gan.arch!r} is not one of {sorted(UNCONDITIONAL_GANS)}")
        check(self.lambda_e >= 0 and self.lambda_d >= 0,
              f"lambda_e {self.lambda_e} and lambda_d {self.lambda_d} must not be negative")
        check(self.temperature > 0, f"temperature {self.temperature} must be positive")
        check(self.kd_weight >= 0 and self.scale_weight >= 0,
              f"kd_weight {self.kd_weight} and scale_weight {self.scale_weight} must not be negative")
        check(self.view_images >= 10, f"view_images {self.view_images} must be at least 10")

    def old_config(self) -> ClassifierConfig:
        """The old model's complete config: this config's classifier fields (its data split, recipe and seed), so
        every row of a seed shares one old-model stage. test_every_epoch is False: the stage keeps the weights of
        the best validation accuracy, which are frozen."""
        return ClassifierConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ClassifierConfig)})


# ------------------------------------------------------------------------------------------------------
# The classes: a seeded draw, and the cell's images of each group
# ------------------------------------------------------------------------------------------------------

def class_split(cfg: ClassIncrementalConfig, num_classes: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(old, new): the dataset's class indices, each group sorted, drawn at random by ``class_seed`` (-1: the
    trial's seed)."""
    if cfg.old_classes + cfg.new_classes > num_classes:
        raise ConfigError(f"{cfg.old_classes} old + {cfg.new_classes} new classes: {cfg.dataset} has {num_classes}")
    order = np.random.default_rng(cfg.seed if cfg.class_seed < 0 else cfg.class_seed).permutation(num_classes)
    old, new = order[:cfg.old_classes], order[cfg.old_classes:cfg.old_classes + cfg.new_classes]
    return tuple(sorted(old.tolist())), tuple(sorted(new.tolist()))


def by_class(cfg: ClassIncrementalConfig, full: CellData, old: tuple[int, ...],
             new: tuple[int, ...]) -> tuple[CellData, CellData]:
    """The old model's data (the old classes, labels 0..O-1) and the incremental step's (the new classes'
    training images, labels O..O+N-1; validation per ``selection``; the test images of every class seen), each
    under the eval caps. ``full``: the cell's data without eval caps. A data key per group, for the stage keys."""
    n_old, device = len(old), full.train_y.device
    renumber = torch.full((full.num_classes,), -1, dtype=torch.int64, device=device)
    renumber[list(old)] = torch.arange(n_old, device=device)
    renumber[list(new)] = torch.arange(n_old, n_old + len(new), device=device)

    def take(x: torch.Tensor, y: torch.Tensor, group: str):
        r = renumber[y]
        keep = {"old": (r >= 0) & (r < n_old), "new": r >= n_old, "all": r >= 0}[group]
        return x[keep], r[keep]

    old_data = CellData(*take(full.train_x, full.train_y, "old"),
                        *eval_subset(*take(full.val_x, full.val_y, "old"), cfg),
                        *eval_subset(*take(full.test_x, full.test_y, "old"), cfg), full.shape, n_old,
                        full.split_hash, f"{full.data_key}|old classes {list(old)}")
    val = take(full.val_x, full.val_y, "new" if cfg.selection == "new_val" else "all")
    new_data = CellData(*take(full.train_x, full.train_y, "new"), *eval_subset(*val, cfg),
                        *eval_subset(*take(full.test_x, full.test_y, "all"), cfg), full.shape, n_old + len(new),
                        full.split_hash, f"{full.data_key}|{full.split_hash}|new classes {list(new)}")
    return old_data, new_data


# ------------------------------------------------------------------------------------------------------
# The grown model and the losses of the incremental step
# ------------------------------------------------------------------------------------------------------

class FrozenBody(nn.Module):
    """A body that never learns: no gradients, and its BatchNorm layers keep the old model's running statistics
    (it stays in eval mode when the classifier trains)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "FrozenBody":
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class GrownHead(nn.Module):
    """The old head (O rows) beside a new linear layer for the new classes (N rows, PyTorch's default init):
    logits = [old(f), new(f)], so the old classes' logits start as the old model's."""

    def __init__(self, old: nn.Linear, new_classes: int, frozen_old: bool):
        super().__init__()
        self.old = old.requires_grad_(not frozen_old)
        self.new = nn.Linear(old.in_features, new_classes)
        self.in_features = old.in_features  # what Classifier reads

    @property
    def weight(self) -> torch.Tensor:
        """The (O + N, features) weight rows, old classes first."""
        return torch.cat([self.old.weight, self.new.weight])

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.old(f), self.new(f)], 1)


def grow(old: Classifier, new_classes: int, fixed_representation: bool = False) -> Classifier:
    """A trainable copy of the frozen ``old`` model with ``new_classes`` more outputs; with
    ``fixed_representation``, only the new rows of the head learn."""
    net = copy.deepcopy(old).requires_grad_(True).train()
    body = FrozenBody(net.body) if fixed_representation else net.body
    return Classifier(body, GrownHead(net.head, new_classes, frozen_old=fixed_representation))


class Target(NamedTuple):
    """A distilling step's target (harness.train.train_epoch scores train accuracy on ``labels``): CE on the
    first ``real`` rows, distillation on the rows from ``kd_from`` on, whose old-model logits ``old_logits`` are."""

    labels: torch.Tensor  # (B,) the new images' labels; for generated rows, the old model's argmax
    old_logits: torch.Tensor  # (B - kd_from, O) the frozen old model's logits on rows kd_from..B-1
    real: int  # rows 0..real-1 are new-class training images
    kd_from: int  # the first row the distillation term reads


def lwf_mc_loss(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """LwF.MC (Rebuffi, Kolesnikov, Sperl, Lampert 2017, iCaRL Sec. 2.2 and 4: iCaRL's loss without exemplars) on
    new images, with sigma the sigmoid, O old classes, K classes in all:

        L = -1/B sum_i sum_k [ t_ik log sigma(z_ik) + (1 - t_ik) log(1 - sigma(z_ik)) ],
        t_ik = sigma(z^old_ik) for k < O (distillation),  t_ik = [y_i = k] for k >= O (classification)

    summed over the classes (iCaRL's code averages: its lr 2.0 is our lr 2.0 / K)."""
    n_old = target.old_logits.shape[1]
    goal = F.one_hot(target.labels, logits.shape[1]).to(logits.dtype)
    goal[:, :n_old] = torch.sigmoid(target.old_logits)
    return F.binary_cross_entropy_with_logits(logits, goal, reduction="sum") / len(logits)


def logit_scale_loss(weight: torch.Tensor, n_old: int) -> torch.Tensor:
    """The logit-scaling regulariser (ours; the paper gives no formula, module docstring):

        L_scale = ( mean_{k >= O} ||w_k|| - mean_{k < O} ||w_k|| )^2

    with w_k the head's weight row of class k (no bias): zero when the new classes' rows have the old classes'
    mean norm, so that neither group's logits outgrow the other's."""
    norms = weight.norm(dim=1)
    return (norms[n_old:].mean() - norms[:n_old].mean()) ** 2


def incremental_loss(logits: torch.Tensor, target: Target, head: GrownHead, temperature: float, kd_weight: float,
                     scale_weight: float) -> torch.Tensor:
    """proxy_kd and degan_kd (Li and Hoiem 2017's losses): CE over the new classes' logits on the new images +
    ``kd_weight`` * Hinton's KD of the old classes' logits against the old model's (harness.train.kd_loss at
    ``temperature``, soft term only) on the distillation rows + ``scale_weight`` * :func:`logit_scale_loss` of the
    grown ``head``."""
    n_old = target.old_logits.shape[1]
    loss = F.cross_entropy(logits[:target.real, n_old:], target.labels[:target.real] - n_old)
    if kd_weight:
        loss = loss + kd_weight * kd_loss(logits[target.kd_from:, :n_old], target.old_logits, temperature, 1.0)
    if scale_weight:
        loss = loss + scale_weight * logit_scale_loss(head.weight, n_old)
    return loss


def step_batches(cfg: ClassIncrementalConfig, old_net: nn.Module, G, data: CellData, device):
    """``make_batches(generator)`` for harness.train.fit_classifier: an epoch over the new classes' training images,
    with the target each strategy's loss reads (plain labels for finetune and fixed_representation)."""

    def labelled(g: torch.Generator):
        return real_batches(data.train_x, data.train_y, cfg, g)

    def distilled(g: torch.Generator):  # lwf_mc, proxy_kd: the old model's logits on the same new images
        for xb, yb in real_batches(data.train_x, data.train_y, cfg, g):
            with torch.no_grad():
                old = old_net(xb)
            yield xb, Target(yb, old, len(yb), 0)

    def generated(g: torch.Generator):  # degan_kd: beside each new batch, a fresh batch of G(z) for the KD term
        for xb, yb in real_batches(data.train_x, data.train_y, cfg, g):
            xg = sample_unconditional(G, cfg.batch_size, g, device)
            if cfg.crop_padding or cfg.flip:
                xg = augment(xg, cfg.crop_padding, cfg.flip, g)
            with torch.no_grad():
                old = old_net(xg)
            yield torch.cat([xb, xg]), Target(torch.cat([yb, old.argmax(1)]), old, len(yb), len(yb))

    return {"degan_kd": generated, "lwf_mc": distilled, "proxy_kd": distilled}.get(cfg.strategy, labelled)


def step_loss(cfg: ClassIncrementalConfig, model: Classifier):
    """The incremental step's ``loss_fn(logits, target)``."""
    if cfg.strategy == "lwf_mc":
        return lwf_mc_loss
    if cfg.strategy in ("proxy_kd", "degan_kd"):
        return partial(incremental_loss, head=model.head, temperature=cfg.temperature, kd_weight=cfg.kd_weight,
                       scale_weight=cfg.scale_weight)
    return F.cross_entropy


# ------------------------------------------------------------------------------------------------------
# Measurements: the old model's view of the distillation data; the selected model per class group
# ------------------------------------------------------------------------------------------------------

def view_of_distillation_data(cfg: ClassIncrementalConfig, old_net: nn.Module, G, data: CellData, device) -> dict:
    """The old model's view (harness.degan.teacher_view) of ``view_images`` images of what the distillation term
    sees: generated images for degan_kd (a stream of their own), the new training images otherwise (a fixed pick)."""
    if cfg.strategy == "degan_kd":
        return teacher_view(old_net, generated_images(G, cfg.view_images, cfg.seed, 0, device))
    return teacher_view(old_net, picked_images(data.train_x, cfg.view_images))


def group_accuracy(model: nn.Module, kept: dict | None, data: CellData, n_old: int, batch_size: int) -> dict:
    """Test accuracy (%, argmax over every class seen) of the ``kept`` weights (None: diverged) on the old classes'
    and on the new classes' test images."""
    out = {M.TEST_ACC_OLD_CLASSES: math.nan, M.TEST_ACC_NEW_CLASSES: math.nan}
    if kept is None:
        return out
    probe = copy.deepcopy(model)
    probe.load_state_dict(kept["model"])
    for name, group in ((M.TEST_ACC_OLD_CLASSES, data.test_y < n_old), (M.TEST_ACC_NEW_CLASSES, data.test_y >= n_old)):
        if group.any():
            out[name] = evaluate(probe, data.test_x[group], data.test_y[group], batch_size)[1]
    return out


class GroupCheckpointer(TuneCheckpointer):
    """Tune's checkpointer whose last report (``complete``) also carries :func:`group_accuracy` of the weights kept
    at the best validation accuracy: the model whose test accuracy over all classes the same report holds."""

    def __init__(self, extra: dict, model: nn.Module, data: CellData, n_old: int, batch_size: int):
        super().__init__(extra)
        self.measure = partial(group_accuracy, model, data=data, n_old=n_old, batch_size=batch_size)

    def save(self, metrics: dict, state: dict) -> None:
        if metrics[M.COMPLETE]:
            metrics = {**metrics, **self.measure(state["kept"].get("acc"))}
        super().save(metrics, state)


@register_method(ClassIncrementalConfig)
def class_incremental(params: dict) -> None:
    cfg, ctx, device = setup(params, ClassIncrementalConfig)
    full = cell_data(ctx.data_file, dataclasses.replace(cfg, max_eval_images=0), device, ctx.data_fingerprint)
    old, new = class_split(cfg, full.num_classes)
    old_data, new_data = by_class(cfg, full, old, new)
    del full
    root = stage_root(ctx)
    st_old, old_net, fitted = frozen_classifier(cfg.old_config(), old_data, device, root, "old model")
    stages, G, gan_losses = [st_old], None, {}
    if cfg.strategy == "degan_kd":  # the new classes' training images are DeGAN's proxy data
        st_gan, G, history = generator_stage(cfg, old_net, new_data.train_x, new_data.train_y,
                                             {"proxy": {"new_classes": list(new)}}, (st_old.ref, new_data.data_key),
                                             old_data, device, root)
        stages.append(st_gan)
        gan_losses = {M.D_LOSS: history[-1]["d_loss"], M.G_LOSS: history[-1]["g_loss"]}

    seed_everything(cfg.seed)  # the new head rows' initial weights
    model = grow(old_net, cfg.new_classes, cfg.strategy == "fixed_representation").to(device)
    constant = {**stage_counts(stages), **gan_losses, **view_of_distillation_data(cfg, old_net, G, new_data, device),
                M.TEACHER_TEST_ACC: fitted["result"][M.TEST_ACC_AT_BEST_VAL_ACC],
                M.INCREMENTAL_CLASSES: f"old {','.join(map(str, old))}; new {','.join(map(str, new))}"}
    fit_classifier(cfg, new_data, device, GroupCheckpointer(constant, model, new_data, len(old), cfg.eval_batch_size),
                   make_batches=step_batches(cfg, old_net, G, new_data, device), loss_fn=step_loss(cfg, model),
                   model=model)
