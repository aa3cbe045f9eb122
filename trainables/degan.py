"""degan: Addepalli, Nayak, Chakraborty, Babu 2020, DeGAN: Data-Enriching GAN for Retrieving Representative
Samples from a Trained Classifier (AAAI 2020), Sec. 4.2 and 5.1: data-free knowledge distillation.

Stage 1, the teacher: ``teacher_model`` trained on the true dataset with an 80/20 train/validation split (the
cell's ``fraction`` and ``val_fraction``) until its validation accuracy stops improving for ``teacher_patience``
epochs, then frozen at its best validation accuracy: a cached stage
(harness.train.classifier_stage), shared by every row of a seed.
Stage 2, the generator (``kd_source = "generator"``): an unconditional DCGAN (harness.gans, ``*_uncond``)
trained adversarially on the proxy data (harness.data.Proxy: another dataset in the true data's channels and
size, some of its classes, or noise) while the frozen teacher C adds two terms on y = softmax(C(G(z))) and the
batch mean w = E_z[y] (Eqs. 4, 5, 7):

    L_G = L_adv + lambda_e * E_z[H(y)] - lambda_d * H(w)

the entropy loss (each image confidently one class) and the diversity loss (the batch spread over every class).
lambda_e = lambda_d = 0 is the plain DCGAN baseline. A cached stage, checkpointed every epoch.
Stage 3, the student: ``model`` trained from scratch by knowledge distillation (harness.train.kd_loss:
temperature T, weight ``kd_weight`` on the soft term) on a fresh batch of G(z) every step, for ``epochs`` at
most, selected and early-stopped on ``selection``. The rows beside it distil on the proxy images themselves
(``kd_source = "proxy"``) and on the true training images ("true"); "teacher" reports the teacher.

Named variants (harness.degan.VARIANTS; a table spreads one into its cells and says which): "code", the
authors' released code (dfgan.py: entropy weight 0, diversity weight 5; the KD scripts: T = 20, soft-term weight
1; KD_related_data.py: the student selected on its agreement with the teacher on held-out proxy images, for
every row); "paper",
Eq. 7 with the entropy loss on too (the paper gives no weights: lambda_e = 1 is ours, the rest the code's).

Choices the paper leaves open (each a config field or stated here):
- The student's model selection and early stopping (``selection``): "proxy_agreement", the share of held-out
  proxy images on which the student's argmax is the teacher's (needs no true data; KD_related_data.py's), or
  "generator_agreement", the same share on a fixed set of G's images (as many as the held-out proxy images, from
  a measurement stream of their own, stored as uint8 like every validation set: half a grey level of rounding),
  the rule of the released KD_dfgan.py, which draws 64 fresh batches of 64 each epoch instead (a fixed set keeps
  early stopping from chasing sampling noise); rows that learn from no generator then select on the held-out
  proxy images, so that setting is the released scripts' pair of rules; or "true_val", accuracy on the true
  data's 20% validation split (the teacher's; labelled true data a data-free student would not have). The "code"
  variant applies KD_related_data.py's rule to every row, the generator rows included, so rows differ in what
  the student learns from only (our choice; the released scripts select the two kinds of row differently).
- The released KD_dfgan.py (vcl-iisc/DeGAN, CIFAR_10/train_student/Using_GAN) trains the generator rows' student
  otherwise too: batches of 64, 256 steps an epoch, Adam (lr 1e-3) with beta1 0.5. We keep KD_related_data.py's
  recipe for every row (the profile's batch size; torch's Adam betas (0.9, 0.999)), again so that the rows differ
  in their source only (``batch_size`` is a config field; the steps an epoch and Adam's betas are not).
- An epoch of the student: as many steps as one pass over the proxy's training images (``epoch_steps``), for the
  generator rows too, so the proxy and generator rows compare at equal steps; "true" passes over the true
  training split. Generated images are drawn with G in eval mode (BatchNorm running statistics).
- The hard term of the KD loss uses the teacher's argmax (no labels in data-free distillation); at the papers'
  weight 1 it is off.
- The GAN trains for a fixed number of epochs (the paper: "a fixed number of epochs are trained (200 in all
  cases) to ensure consistency"); it has no validation signal to stop on. An epoch is one pass over the proxy's
  training images (80% of the proxy: the other 20% select the student), so its number of steps grows with the
  proxy's size. dfgan.py instead passes over all of CIFAR-100 in batches of 2,048 and keeps the proxy classes'
  images of each batch (the same ~25 steps an epoch for every class subset, smaller batches for smaller subsets),
  on every image. At the converge profile every offline proxy is pooled to 10,000 images (``proxy_pool``), so
  every generator there takes the same 5,000 steps; at the paper profile a 6-class proxy's generator takes ~1/9
  of a 90-class one's steps, where dfgan.py's take the same number (Table 2's CIFAR-100 columns, not offline here).
- The adversarial term L_adv is the non-saturating -log D(G(z)) (as dfgan.py and DCGAN), not the log(1 - D(G(z)))
  that Eqs. 3 and 7 write. Each G step draws fresh z (gan_epoch); dfgan.py reuses the D step's fakes. No
  DiffAugment and no EMA (the released code has neither).
- The teacher's view of what the student learns from, measured on ``view_images`` images from a stream of its
  own (so measuring changes no training): its predicted-class histogram, that histogram's balance, the share it
  predicts with probability > 0.9 (dfgan.py's count) and the two losses' terms. Per GAN epoch too (figure data,
  with a sample grid, in the trial's artifacts folder).
Not done yet: the code's second training phase of teacher and student (Adam at lr / 10 from the best weights
until 100 more epochs bring no improvement; train_teacher.py, KD_related_data.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from ray import tune

from harness import metrics as M
from harness.checkpoint import TuneCheckpointer
from harness.config import check
from harness.data import Proxy, ProxyData, augment, read_proxy, to_float, to_uint8
from harness.degan import generator_stage as shared_generator_stage
from harness.degan import generated_images, picked_images, teacher_view
from harness.fidelity import measurement_rng
from harness.gan_train import GANConfig
from harness.gans import UNCONDITIONAL_GANS, sample_unconditional
from harness.models import CLASSIFIERS
from harness.stages import stage_counts
from harness.storage import atomic_write
from harness.train import (ClassifierConfig, cell_data, epoch_steps, eval_subset, fit_classifier, frozen_classifier,
                           kd_loss, real_batches)
from harness.trial import setup, stage_root
from trainables import register_method

KD_SOURCES = ("generator", "proxy", "true", "teacher")
SELECTIONS = ("proxy_agreement", "generator_agreement", "true_val")
ARTIFACT_FILE = "degan.pt"  # per-trial figure data: the generator's sample grid and per-epoch teacher's view


@dataclass(frozen=True)
class DeganConfig(ClassifierConfig):
    """The student's classifier config (``model``, optimiser, budget; ``dataset`` is the true data, ``fraction``
    and ``val_fraction`` its 80/20 split), plus the teacher, the proxy, the generator and the distillation.
    Defaults: the released code (train_teacher.py, dfgan.py, KD_related_data.py), CIFAR-10 with AlexNet."""

    # The generator has no validation signal to stop on (module docstring): at every profile, the converging
    # budget included, it trains its fixed epochs. Read by the converge test instead of GANConfig.patience.
    GAN_STOPS_EARLY = False

    dataset: str = "cifar10"
    fraction: float = 0.8  # Sec. 5.1: "A train-validation split of 80-20"
    val_fraction: float = 0.2
    model: str = "alexnet_half"  # the student (Sec. 5.1: AlexNet-half, LeNet-half, ResNet-18)
    optimizer: str = "adam"  # KD_related_data.py: Adam, lr 1e-3, batches of 2048, up to 5000 epochs, patience 100
    lr: float = 1e-3
    batch_size: int = 2048
    epochs: int = 5000
    patience: int = 100
    crop_padding: int = 0  # the released code augments nothing
    flip: bool = False
    teacher_model: str = "alexnet"  # the teacher (Sec. 5.1: AlexNet, LeNet, Inception-V3)
    # The teacher's budget (train_teacher.py: Adam, lr 1e-3, batches of 64, stopped after 100 epochs without a
    # better validation accuracy; no augmentation); its data, split, pool, eval caps and seed are the student's.
    teacher_lr: float = 1e-3  # Adam's learning rate
    teacher_batch_size: int = 64  # images per step
    teacher_epochs: int = 1000  # epochs at most
    teacher_patience: int = 100  # epochs without a better validation accuracy before it stops
    teacher_max_batches_per_epoch: int = 0  # steps per epoch at most (0: a full pass; smoke caps it)
    proxy: Proxy = Proxy()  # what the generator learns from (and the "proxy" row distils on)
    proxy_pool: int = 0  # proxy images used at most: a fixed class-balanced pool (0: all of them), budgets cap it
    kd_source: str = "generator"  # what the student learns from: one of KD_SOURCES
    # dfgan.py: DCGAN, nz 100, ngf = ndf = 64, Adam 2e-4 with beta1 0.5, BCE; --niter 200 --batchSize 2048
    gan: GANConfig = GANConfig(arch="dcgan_uncond", batch_size=2048, lr_g=2e-4, lr_d=2e-4, beta1=0.5, epochs=200,
                               diffaugment="", ema_decay=0.0, loss="bce")
    lambda_e: float = 0.0  # weight of the entropy loss (Eq. 7; dfgan.py's c_l = 0)
    lambda_d: float = 5.0  # weight of the diversity loss (Eq. 7; dfgan.py's d_l = 5)
    temperature: float = 20.0  # KD temperature T (the KD scripts' --temp 20)
    kd_weight: float = 1.0  # weight of the soft (distillation) term; 1 - kd_weight on the hard term (Sec. 5.1: 1)
    selection: str = "proxy_agreement"  # what selects and early-stops the student: one of SELECTIONS
    view_images: int = 1000  # images the teacher's view of the student's source is measured on (dfgan.py: 1000)

    def __post_init__(self):
        super().__post_init__()
        check(self.teacher_model in CLASSIFIERS,
              f"unknown classifier {self.teacher_model!r}; known: {', '.join(CLASSIFIERS)}")
        check(self.kd_source in KD_SOURCES, f"kd_source {self.kd_source!r} is not one of {KD_SOURCES}")
        check(self.selection in SELECTIONS, f"selection {self.selection!r} is not one of {SELECTIONS}")
        check(self.gan.arch in UNCONDITIONAL_GANS,
              f"DeGAN's generator is unconditional: gan {self.gan.arch!r} is not one of {sorted(UNCONDITIONAL_GANS)}")
        check(self.lambda_e >= 0 and self.lambda_d >= 0,
              f"lambda_e {self.lambda_e} and lambda_d {self.lambda_d} must not be negative")
        check(self.temperature > 0, f"temperature {self.temperature} must be positive")
        check(0 <= self.kd_weight <= 1, f"kd_weight {self.kd_weight} is outside [0, 1]")
        check(self.proxy_pool >= 0, f"proxy_pool {self.proxy_pool} is negative")
        check(self.view_images >= 10, f"view_images {self.view_images} must be at least 10")
        check(self.teacher_lr > 0 and self.teacher_batch_size >= 1 and self.teacher_epochs >= 1,
              "the teacher's lr, batch size and epochs must be positive")
        check(self.teacher_patience >= 0 and self.teacher_max_batches_per_epoch >= 0,
              "the teacher's patience and step cap must not be negative")

    @property
    def other_datasets(self) -> tuple[str, ...]:
        """The proxy's dataset, decoded by the driver beside the true one (harness.trial.other_datasets)."""
        return () if self.kd_source == "teacher" else self.proxy.datasets

    def teacher_config(self) -> ClassifierConfig:
        """The teacher's complete config: ``teacher_model`` with the ``teacher_*`` budget on the trial's data,
        split, pool, eval caps and seed (so every row of a seed shares one teacher stage). Tested once, at the end,
        with the weights of its best validation accuracy, which the stage keeps: the model that early stopping
        on validation accuracy selects (Sec. 5.1)."""
        return ClassifierConfig(dataset=self.dataset, fraction=self.fraction, val_fraction=self.val_fraction,
                                seed=self.seed, model=self.teacher_model, optimizer="adam", lr=self.teacher_lr,
                                batch_size=self.teacher_batch_size, epochs=self.teacher_epochs,
                                patience=self.teacher_patience, crop_padding=0, flip=False,
                                train_pool=self.train_pool, eval_batch_size=self.eval_batch_size,
                                max_batches_per_epoch=self.teacher_max_batches_per_epoch,
                                max_eval_images=self.max_eval_images, test_every_epoch=False)


# ------------------------------------------------------------------------------------------------------
# Stage 1: the teacher; stage 2: the generator
# ------------------------------------------------------------------------------------------------------

def teacher_stage(cfg: DeganConfig, data, device, root):
    """The frozen teacher (a cached stage): (stage, network in eval mode without gradients, its fitted run)."""
    return frozen_classifier(cfg.teacher_config(), data, device, root, "teacher")


def generator_stage(cfg: DeganConfig, teacher, proxy: ProxyData, inputs: tuple[str, ...], data, device, root):
    """The DeGAN generator of ``cfg`` (DCGAN at lambda_e = lambda_d = 0) trained on the proxy's training images
    against the frozen teacher (harness.degan.generator_stage: a cached stage, checkpointed every epoch; ``inputs``:
    the teacher's and the proxy's keys). Returns (stage, G in eval mode without gradients, per-epoch history)."""
    source = {"proxy": dataclasses.asdict(cfg.proxy), "proxy_pool": cfg.proxy_pool}
    return shared_generator_stage(cfg, teacher, proxy.train_x, proxy.train_y, source, inputs, data, device, root)


# ------------------------------------------------------------------------------------------------------
# Stage 3: the student, distilled on a fresh batch of its source every step
# ------------------------------------------------------------------------------------------------------

def student_batches(cfg: DeganConfig, source: str, teacher, G, proxy: ProxyData, data, device):
    """``make_batches(generator)`` for harness.train.fit_classifier: an epoch of (images, teacher's logits)."""

    def with_teacher(xb: torch.Tensor):
        with torch.no_grad():
            return xb, teacher(xb)

    def generated(g: torch.Generator):
        for _ in range(epoch_steps(cfg, len(proxy.train_y))):  # as many steps as an epoch over the proxy
            xb = sample_unconditional(G, cfg.batch_size, g, device)
            if cfg.crop_padding or cfg.flip:
                xb = augment(xb, cfg.crop_padding, cfg.flip, g)
            yield with_teacher(xb)

    if source == "generator":
        return generated
    x, y = (proxy.train_x, proxy.train_y) if source == "proxy" else (data.train_x, data.train_y)
    return lambda g: (with_teacher(xb) for xb, _ in real_batches(x, y, cfg, g))


def view_of_source(cfg: DeganConfig, teacher, G, proxy: ProxyData, data, device) -> dict:
    """The teacher's view of ``view_images`` images of what the student learns from (from streams of its own)."""
    if cfg.kd_source == "generator":
        return teacher_view(teacher, generated_images(G, cfg.view_images, cfg.seed, 0, device))
    return teacher_view(teacher, picked_images(proxy.train_x if cfg.kd_source == "proxy" else data.train_x,
                                               cfg.view_images))


@torch.no_grad()
def agreement_split(cfg: DeganConfig, teacher, x: torch.Tensor, data):
    """``data`` with its validation split replaced by the uint8 images ``x`` (the held-out proxy images, or a fixed
    set of G's) labelled with the teacher's predictions: validation accuracy is then the student's agreement with
    the teacher (KD_related_data.py, KD_dfgan.py)."""
    labels = torch.cat([teacher(to_float(x[i:i + cfg.eval_batch_size])).argmax(1)
                        for i in range(0, len(x), cfg.eval_batch_size)])
    val_x, val_y = eval_subset(x, labels, cfg)
    return dataclasses.replace(data, val_x=val_x, val_y=val_y)


@register_method(DeganConfig)
def degan(params: dict) -> None:
    cfg, ctx, device = setup(params, DeganConfig)
    data = cell_data(ctx.data_file, cfg, device, ctx.data_fingerprint)  # the true data: 80/20 split, test set
    root = stage_root(ctx)
    st_teacher, teacher, fitted = teacher_stage(cfg, data, device, root)
    taught = {M.TEACHER_TEST_ACC: fitted["result"][M.TEST_ACC_AT_BEST_VAL_ACC]}
    if cfg.kd_source == "teacher":  # the teacher's row: its own stored run
        tune.report({**fitted["result"], **stage_counts([st_teacher]), **taught})
        return

    proxy = read_proxy(cfg.proxy, ctx.other_data.get(cfg.proxy.source), data.shape, cfg.proxy_pool,
                       cfg.seed).to(device)
    stages, G, gan_history = [st_teacher], None, []
    if cfg.kd_source == "generator":
        proxy_key = ctx.other_fingerprints.get(cfg.proxy.source, "noise") + proxy.split_hash
        st_gan, G, gan_history = generator_stage(cfg, teacher, proxy, (st_teacher.ref, proxy_key), data, device, root)
        stages.append(st_gan)
        _save_figure_data(ctx, cfg, G, gan_history, device)
    student_data = data
    if cfg.selection == "generator_agreement" and G is not None:
        held_out = generated_images(G, len(proxy.val_y), cfg.seed, 0, device, purpose="degan_selection")
        student_data = agreement_split(cfg, teacher, to_uint8(held_out), data)
    elif cfg.selection != "true_val":
        student_data = agreement_split(cfg, teacher, proxy.val_x, data)
    gan_losses = {M.D_LOSS: gan_history[-1]["d_loss"], M.G_LOSS: gan_history[-1]["g_loss"]} if gan_history else {}
    constant = {**stage_counts(stages), **taught, **gan_losses, **view_of_source(cfg, teacher, G, proxy, data, device),
                M.PROXY_LABEL: proxy.label, M.PROXY_IMAGES: len(proxy.train_y)}
    fit_classifier(cfg, student_data, device, TuneCheckpointer(constant),
                   make_batches=student_batches(cfg, cfg.kd_source, teacher, G, proxy, data, device),
                   loss_fn=partial(kd_loss, temperature=cfg.temperature, weight=cfg.kd_weight))


def _save_figure_data(ctx, cfg: DeganConfig, G, gan_history: list[dict], device) -> None:
    """Beside the results: an 8x8 grid of the generator's samples (a stream of its own) and the teacher's view of
    its samples after each GAN epoch (the class histogram the diversity loss is meant to flatten)."""
    grid = sample_unconditional(G, 64, measurement_rng(cfg.seed, 0, "degan_grid"), device)
    payload = {"grid": to_uint8(grid).cpu(), "gan_history": gan_history, "proxy": dataclasses.asdict(cfg.proxy),
               "lambda_e": cfg.lambda_e, "lambda_d": cfg.lambda_d}
    atomic_write(Path(ctx.artifacts) / ARTIFACT_FILE, lambda f: torch.save(payload, f))
