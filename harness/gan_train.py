"""Conditional GAN training, shared by every method that trains a GAN: its config, losses, state (networks,
EMA, optimisers) with a checkpointable state_dict, and one epoch of alternating D and G updates.

The recipe is Pennisi 2021 Sec. 3.2 and 4.2 (Adam 2e-4, batch 64, 600 epochs, "alternating discriminator and
generator mini-batch updates", G conditioned on the real batch's labels as in Algorithm 1) run on the
Data-Efficient GAN he cites: DiffAugment (harness.diffaugment) applied to real and fake images before D.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from harness.config import check
from harness.data import batches, to_uint8
from harness.diffaugment import diff_augment, policy_words
from harness.gans import EMA, GAN, GANS, build_gan, sample_z

# Keys of the dict gan_epoch returns.
D_LOSS = "d_loss"
G_LOSS = "g_loss"  # adversarial part only
EXTRA_LOSS = "extra_loss"  # mean of extra_g_loss (0 when none is given)
IMAGES = "images"  # real images through D this epoch
STEPS = "steps"  # optimiser steps, D and G together
G_STEPS = "g_steps"
DIVERGED = "diverged"


@dataclass(frozen=True)
class GANConfig:
    """Everything that decides a GAN training run.

    Defaults are Pennisi 2021 Sec. 4.2 (the ``paper`` profile) where he states them, the DiffAugment CIFAR
    BigGAN release (github mit-han-lab/data-efficient-gans, DiffAugment-biggan-cifar) where he does not.
    """

    arch: str = "biggan"  # a registered GAN (harness.gans.GANS)
    batch_size: int = 64  # real images per D step, and fakes per G step (Pennisi: 64)
    lr_g: float = 2e-4  # G's Adam learning rate (Pennisi: 2e-4)
    lr_d: float = 2e-4  # D's Adam learning rate (Pennisi: 2e-4; DiffAugment's CIFAR script too)
    # NOTE: Pennisi says only "the Adam optimizer"; BigGAN and the DiffAugment release use betas (0, 0.999)
    # (BigGAN-PyTorch's G_B1/D_B1 = 0.0, G_B2/D_B2 = 0.999), which we take. Adam's defaults are (0.9, 0.999).
    beta1: float = 0.0  # Adam beta1, no unit
    beta2: float = 0.999  # Adam beta2, no unit
    epochs: int = 600  # passes over the real training subset (Pennisi: 600)
    # NOTE: Pennisi alternates single D and G updates (1); DiffAugment's CIFAR script uses --num_D_steps 4.
    d_steps: int = 1  # D updates (one real batch each) per G update
    diffaugment: str = "translation,cutout"  # DiffAugment policy for CIFAR-10 in the release; "" disables
    # NOTE: the release uses decay 0.9999 starting at iteration 1000; at Pennisi's 20% of CIFAR-10 (10,000
    # images, 157 G steps per epoch) 0.999 averages over ~6 epochs, which suits shorter profiles too.
    ema_decay: float = 0.999  # EMA decay of G's weights per G step; 0 disables the EMA
    ema_start: int = 1000  # G steps during which the EMA is a plain copy (the release's ema_start)
    max_batches_per_epoch: int = 0  # D steps per epoch at most (smoke budgets); 0: the full epoch
    # NOTE: Pennisi's Eqs. 2-3 are the binary cross-entropy (non-saturating) GAN losses; the DiffAugment
    # BigGAN release he builds on trains with the hinge loss, kept as the named variant "hinge".
    loss: str = "bce"  # "bce" (Pennisi Eqs. 2-3) or "hinge"
    # Early stopping (0: off, train all ``epochs``): after each epoch, the FID of the generator (its EMA when
    # it has one) against the validation split, in the feature space of a pre-trained classifier of the
    # cell (``fid_model``); training stops once it has not improved for ``patience`` epochs and the stage
    # keeps the networks of the best-FID epoch. ``epochs`` is then the maximum.
    patience: int = 0
    fid_model: str = ""  # the classifier whose features measure that FID ("": the cell's own classifier)
    fid_images: int = 1000  # generated images per early-stopping FID (class-balanced)

    def __post_init__(self):
        check(self.arch in GANS, f"unknown gan {self.arch!r}; known: {', '.join(GANS)}")
        check(self.batch_size >= 1, f"batch_size {self.batch_size} must be at least 1")
        check(self.lr_g > 0 and self.lr_d > 0, f"learning rates {self.lr_g}, {self.lr_d} must be positive")
        check(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
              f"Adam betas {self.beta1}, {self.beta2} are not in [0, 1)")
        check(self.epochs >= 1, f"epochs {self.epochs} must be at least 1")
        check(self.d_steps >= 1, f"d_steps {self.d_steps} must be at least 1")
        try:
            policy_words(self.diffaugment)
        except ValueError as exc:
            check(False, str(exc))
        check(0 <= self.ema_decay < 1, f"ema_decay {self.ema_decay} is outside [0, 1)")
        check(self.ema_start >= 0, f"ema_start {self.ema_start} is negative")
        check(self.max_batches_per_epoch >= 0,
              f"max_batches_per_epoch {self.max_batches_per_epoch} is negative")
        check(self.loss in LOSSES, f"unknown GAN loss {self.loss!r}; known: {', '.join(LOSSES)}")
        check(self.patience >= 0, f"patience {self.patience} is negative")
        check(self.fid_images >= 2, f"fid_images {self.fid_images} must be at least 2")


# ----------------------------------------------------------------------------------------------------------
# Losses (D outputs are logits)


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; BigGAN losses.loss_hinge_dis)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """L_G = -E[D(G(z))] (BigGAN losses.loss_hinge_gen)."""
    return -fake.mean()


def bce_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = -E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))] (Pennisi Eq. 2; Goodfellow et al. 2014),
    written as softplus(-real) + softplus(fake) for numerical stability."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating L_G = -E[log sigmoid(D(G(z)))] (Pennisi Eq. 3) = softplus(-fake)."""
    return F.softplus(-fake).mean()


LOSSES: dict[str, tuple[Callable, Callable]] = {
    "hinge": (hinge_d_loss, hinge_g_loss),
    "bce": (bce_d_loss, bce_g_loss),
}


# ----------------------------------------------------------------------------------------------------------
# State


@dataclass
class GANState:
    """The networks, G's EMA (None when ``ema_decay`` is 0) and both optimisers: what a checkpoint holds."""

    gan: GAN
    ema: EMA | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    @classmethod
    def create(cls, cfg: GANConfig, in_channels: int, image_size: int, num_classes: int,
               device: torch.device | str = "cpu") -> "GANState":
        """Fresh networks (initialised from torch's global RNG: seed it first) on ``device``."""
        gan = build_gan(cfg.arch, in_channels, image_size, num_classes)
        gan.generator.to(device)
        gan.discriminator.to(device)
        ema = EMA(gan.generator, cfg.ema_decay, cfg.ema_start) if cfg.ema_decay > 0 else None
        betas = (cfg.beta1, cfg.beta2)
        opt_g = torch.optim.Adam(gan.generator.parameters(), lr=cfg.lr_g, betas=betas)
        opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=cfg.lr_d, betas=betas)
        return cls(gan, ema, opt_g, opt_d)

    def state_dict(self) -> dict:
        """G, D, EMA and both optimisers; tensors are references to the live state (torch's convention):
        ``torch.save`` it, or deep-copy it to keep it in memory while training goes on."""
        return {
            "generator": self.gan.generator.state_dict(),
            "discriminator": self.gan.discriminator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a :meth:`state_dict`; ``state`` is left untouched by later training (see the NOTE)."""
        self.gan.generator.load_state_dict(state["generator"])
        self.gan.discriminator.load_state_dict(state["discriminator"])
        if (self.ema is None) != (state["ema"] is None):
            raise ValueError("checkpoint and GANState disagree on whether G has an EMA")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        # NOTE: Optimizer.load_state_dict keeps the given moment tensors (same dtype and device) instead of
        # copying them, so training on would rewrite an in-memory checkpoint; module loads copy already.
        self.opt_g.load_state_dict(copy.deepcopy(state["opt_g"]))
        self.opt_d.load_state_dict(copy.deepcopy(state["opt_d"]))


# ----------------------------------------------------------------------------------------------------------
# One epoch


def gan_epoch(state: GANState, cfg: GANConfig, x_u8: torch.Tensor, y: torch.Tensor, rng: torch.Generator,
              extra_g_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> dict:
    """One pass over the real images ``x_u8`` (uint8 NCHW) with labels ``y``: per real batch one D update,
    and after every ``cfg.d_steps`` D updates one G update.

    D update: D on DiffAugment(real) vs DiffAugment(G(z, y_real)) (G under no_grad), G conditioned on the real
    batch's labels (Pennisi Algorithm 1). G update: fresh z, the same labels, loss = adversarial loss of
    D(DiffAugment(G(z, y))) + ``extra_g_loss(fake, y)`` on the un-augmented fakes (GAN distillation's triplet
    loss goes there); then the EMA is updated. No crop or flip: DiffAugment does the augmenting.
    Every random number (batch order, z, augmentation) comes from the CPU generator ``rng``, so a checkpoint of
    ``state`` and ``rng`` resumes bit for bit. Stops at the first non-finite loss with ``diverged: True``.
    """
    G, D = state.gan.generator, state.gan.discriminator
    d_loss_fn, g_loss_fn = LOSSES[cfg.loss]
    G.train()
    D.train()
    g_params, d_params = list(G.parameters()), list(D.parameters())
    device = y.device
    it = batches(x_u8, y, cfg.batch_size, rng)
    if cfg.max_batches_per_epoch:
        it = itertools.islice(it, cfg.max_batches_per_epoch)

    def diverged(seen: int, steps: int, g_steps: int) -> dict:
        return {D_LOSS: math.nan, G_LOSS: math.nan, EXTRA_LOSS: math.nan, IMAGES: seen, STEPS: steps,
                G_STEPS: g_steps, DIVERGED: True}

    d_sum = g_sum = extra_sum = 0.0
    seen = d_steps = g_steps = 0
    for real, labels in it:
        n = len(labels)
        # --- D update
        with torch.no_grad():
            fake = G(sample_z(n, G.z_dim, rng).to(device), labels)
        d_loss = d_loss_fn(D(diff_augment(real, cfg.diffaugment, rng), labels),
                           D(diff_augment(fake, cfg.diffaugment, rng), labels))
        if not torch.isfinite(d_loss):
            return diverged(seen, d_steps + g_steps, g_steps)
        state.opt_d.zero_grad(set_to_none=True)
        d_loss.backward(inputs=d_params)
        state.opt_d.step()
        d_sum += d_loss.item()
        seen += n
        d_steps += 1
        if d_steps % cfg.d_steps:
            continue
        # --- G update. backward(inputs=g_params) leaves D's (and an extra loss's classifier's) gradients alone.
        fake = G(sample_z(n, G.z_dim, rng).to(device), labels)
        g_loss = g_loss_fn(D(diff_augment(fake, cfg.diffaugment, rng), labels))
        extra = extra_g_loss(fake, labels) if extra_g_loss is not None else torch.zeros((), device=device)
        loss = g_loss + extra
        if not torch.isfinite(loss):
            return diverged(seen, d_steps + g_steps, g_steps)
        state.opt_g.zero_grad(set_to_none=True)
        loss.backward(inputs=g_params)
        state.opt_g.step()
        if state.ema is not None:
            state.ema.update(G)
        g_sum += g_loss.item()
        extra_sum += extra.item()
        g_steps += 1
    return {
        D_LOSS: d_sum / d_steps if d_steps else math.nan,
        G_LOSS: g_sum / g_steps if g_steps else math.nan,
        EXTRA_LOSS: extra_sum / g_steps if g_steps else math.nan,
        IMAGES: seen,
        STEPS: d_steps + g_steps,
        G_STEPS: g_steps,
        DIVERGED: False,
    }


# ----------------------------------------------------------------------------------------------------------
# The GAN stage: a GAN pre-trained on a cell's real subset, cached and shared (Pennisi's stage 2)

GAN_STAGE_FILE = "gan.pt"


def gan_stage(cfg: GANConfig, seed: int, data, device: torch.device, stage_root: Path, fid_net=None,
              sampling: tuple[str, Callable[[], torch.Tensor]] | None = None):
    """The GAN of ``cfg`` pre-trained on ``data``'s training subset with ``seed``, from the stage cache
    (trained if absent, with a checkpoint per epoch in the stage's work folder).

    Every cell with the same GAN config, subset and seed shares it (the p_r cells of a table train one
    GAN). With ``cfg.patience``, ``fid_net`` = (its stage, the classifier) measures the early-stopping FID
    (harness.train.feature_classifier) and is part of the key. ``sampling`` = (key, make_p): the training
    images are drawn with probabilities ``make_p()`` (one per training image; called only when the stage
    is computed), an epoch being as many draws with replacement as there are images (Slim 2020's
    conditioned GANs); ``key`` names how those probabilities were made and is part of the stage's key.
    Returns (stage, GANState on ``device`` (at the best-FID epoch under early stopping, else the last),
    per-epoch history)."""
    from harness.checkpoint import FolderCheckpointer, rng_states, seed_everything, set_rng_states
    from harness.fidelity import classifier_fid, measurement_rng
    from harness.gans import sample
    from harness.stages import stage
    from harness.storage import atomic_write

    if cfg.patience and fid_net is None:
        raise ValueError("GAN early stopping (patience > 0) needs a classifier to measure FID with (fid_net)")

    def fid(state: GANState, epoch: int) -> float:
        G = state.ema.module if state.ema is not None else state.gan.generator
        g = measurement_rng(seed, epoch, "gan_stage_fid")  # its own stream: measuring changes no weight
        y = (torch.arange(cfg.fid_images) % data.num_classes).to(device)
        fake = torch.cat([sample(G, y[i:i + 500], g) for i in range(0, len(y), 500)])
        return classifier_fid(fid_net[1], data.val_x, to_uint8(fake))

    def compute(artifact: Path, work: Path) -> None:
        ckpt = FolderCheckpointer(work)
        rng = seed_everything(seed)
        state = GANState.create(cfg, data.shape[0], data.shape[1], data.num_classes, device)
        history, start, best = [], 1, None
        if saved := ckpt.restore():
            state.load_state_dict(saved["gan"])
            set_rng_states(saved["rng"], rng)
            history, start, best = saved["history"], saved["epoch"] + 1, saved["best"]
            if saved.get("stopped"):
                start = cfg.epochs + 1
        p = sampling[1]().to(torch.float64) if sampling else None
        for epoch in range(start, cfg.epochs + 1):
            if p is None:
                stats = gan_epoch(state, cfg, data.train_x, data.train_y, rng)
            else:
                idx = torch.multinomial(p, len(p), replacement=True, generator=rng).to(data.train_y.device)
                stats = gan_epoch(state, cfg, data.train_x[idx], data.train_y[idx], rng)
            row = {"epoch": epoch, **stats, "fid": math.nan}
            stopped = False
            if cfg.patience and not stats[DIVERGED]:
                row["fid"] = fid(state, epoch)
                if best is None or row["fid"] < best["fid"]:
                    best = {"fid": row["fid"], "epoch": epoch, "gan": copy.deepcopy(state.state_dict())}
                stopped = epoch - best["epoch"] >= cfg.patience
            history.append(row)
            ckpt.save({}, {"gan": state.state_dict(), "rng": rng_states(rng), "history": history, "epoch": epoch,
                           "best": best, "stopped": stopped})
            if stats[DIVERGED] or stopped:
                break
        final = best["gan"] if best is not None else state.state_dict()
        atomic_write(artifact / GAN_STAGE_FILE, lambda f: torch.save(
            {"gan": final, "history": history, "best_epoch": best["epoch"] if best else len(history)}, f))

    key = {"gan": dataclasses.asdict(cfg), "seed": seed}
    inputs = ((data.data_key, data.split_hash) + ((fid_net[0].ref,) if cfg.patience else ())
              + ((sampling[0],) if sampling else ()))
    st = stage(stage_root, "gan", key, inputs, compute)
    payload = torch.load(st.path(GAN_STAGE_FILE), map_location=device, weights_only=False)
    state = GANState.create(cfg, data.shape[0], data.shape[1], data.num_classes, device)
    state.load_state_dict(payload["gan"])
    return st, state, payload["history"]
