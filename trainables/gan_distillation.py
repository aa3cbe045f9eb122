"""gan_distillation: Pennisi, Palazzo, Spampinato 2021, Self-improving classification performance
through GAN distillation (Algorithm 1).

Stage 1: the classifier pre-trained on the real subset, model at the lowest validation loss (a cached
stage: the ``baseline`` cell with the same classifier config). The training subset is split into hard
samples (prediction wrong, or softmax confidence <= p_h) and easy ones (a cached stage). Stage 2: a
conditional GAN pre-trained on the real subset (a cached stage, shared with ``gan_augmentation``).
Stage 3, for ``distill_epochs``: one GAN epoch (L_D; L_G + L_dist, the triplet loss with the generated
image as anchor, a hard sample of its class as positive and an easy sample of its class as negative,
on unit-normalised penultimate features of the current classifier, margin m), then one classifier
epoch on [generated, real] batches with real fraction p_r. Reported: test accuracy at the best
validation accuracy (Pennisi's tables), and per epoch the generator's FID and the test accuracy
(Fig. 3), with mode collapse detected and its epoch recorded.

Choices the paper leaves open (each a config field or stated here):
- Classes with no hard (or no easy) sample: their generated anchors get no triplet term (the mean is
  over anchors that have both a positive and a negative); the number of such classes is reported
  (``classes_without_triplet``). Pennisi's 20% CIFAR-10 split has both in every class.
- The classifier acts as F in eval mode during the GAN epoch (BatchNorm running statistics are not
  fed generated images) and receives no gradient there; only G's weights move.
- The reported model is chosen among the stage-3 epochs only: the stage-1 model (the baseline) is
  not a candidate, so a stage 3 that hurts shows as a loss instead of being hidden behind the
  baseline's number. Seen at mini (CIFAR-10, AlexNet 20%, 3 seeds): baseline 47.9, distillation 38.5.
- Stage 3 starts a fresh Adam (lr of the classifier config) on the stage-1 weights; the classifier
  samples the generator being distilled (``sample_from_ema`` False), not its lagging EMA.
- FID per epoch is measured in the feature space of the stage-1 classifier, fixed for the whole run,
  so the Fig. 3 curve is comparable across epochs (the current classifier's space moves).
- Mode collapse: the mean pairwise distance between generated images of one class, relative to the
  same statistic on real images of that class ("diversity ratio"); collapse when the mean over
  classes falls below ``collapse_ratio`` (Pennisi: "generating the same images for different latent
  codes"). The first epoch below it is reported as ``collapse_epoch``.
- Measuring is not training: FID, the diversity ratio, the Inception metrics and the figure data sample
  from generators of their own, seeded from (seed, epoch) (``harness.fidelity.measurement_rng``), never
  from the training generator or torch's global RNG, and leave every network in the mode it was in; so
  ``fid_every`` and ``fid_images`` change no trained weight (tests/test_determinism.py). The Inception
  reference set is a seeded class-balanced sample of the test set, not its first images.
- Table 5's "non-collapsed images" ablation (``fake_source = "one_per_class"``): one image per class
  from the pre-trained (stage-2, not collapsed) generator, plus Gaussian noise of ``noise_std`` (in
  [-1, 1] units) per use; the GAN epochs are skipped since the classifier never samples G.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import metrics as M
from harness.checkpoint import FolderCheckpointer, TuneCheckpointer, rng_states, seed_everything, set_rng_states
from harness.config import check
from harness.data import to_float
from harness.fidelity import (REPORT_NAMES, balanced_sample, classifier_fid, eval_mode, inception_metrics,
                              measurement_rng)
from harness.gan_train import GANConfig, gan_epoch, gan_stage
from harness.gans import sample
from harness.models import build_classifier
from harness.stages import stage, stage_counts
from harness.storage import atomic_write
from harness.train import (NEW_COST, ClassifierConfig, add_cost, cell_data, classifier_epoch, classifier_stage,
                           final_metrics, make_optimizer, mixed_batches)
from harness.trial import setup, stage_root
from trainables import register_method

FAKE_SOURCES = ("generator", "one_per_class")
ARTIFACT_FILE = "distillation.pt"  # per-trial data for the figures (t-SNE features, sample grids, curves)


@dataclass(frozen=True)
class GanDistillationConfig(ClassifierConfig):
    """The classifier config (stage 1 and stage 3), plus the GAN (stage 2) and the distillation knobs."""

    gan: GANConfig = GANConfig()  # the GAN pre-trained on the real subset, then distilled
    p_h: float = 0.6  # confidence threshold: a correct prediction with softmax <= p_h is hard (Pennisi: 0.6)
    margin: float = 1.0  # triplet margin m on unit-normalised features (Pennisi: 1)
    p_r: float = 0.5  # fraction of real images per classifier batch in stage 3 (Pennisi: 0.5)
    distill_epochs: int = 250  # stage-3 epochs, each one GAN epoch then one classifier epoch (Pennisi: 250)
    sample_from_ema: bool = False  # classifier batches from the EMA generator instead of the distilled one
    fake_source: str = "generator"  # "generator", or "one_per_class" (Table 5's non-collapsed ablation)
    noise_std: float = 0.05  # std of the noise on the one image per class (one_per_class), [-1, 1] units
    fid_every: int = 1  # epochs between FID measurements (0: only after the last epoch)
    fid_images: int = 1000  # generated (and real) images per FID measurement
    # Training images labelled hard or easy after stage 1 (0: the whole subset). Only the smoke
    # profiles cap it (a fixed random subset is labelled; the rest is neither hard nor easy).
    split_images: int = 0
    collapse_ratio: float = 0.2  # mode collapse when generated/real intra-class diversity falls below it

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.p_h < 1, f"p_h {self.p_h} is outside (0, 1)")
        check(self.margin > 0, f"margin {self.margin} must be positive")
        check(0 <= self.p_r <= 1, f"p_r {self.p_r} is outside [0, 1]")
        check(self.distill_epochs >= 1, f"distill_epochs {self.distill_epochs} must be at least 1")
        check(self.fake_source in FAKE_SOURCES, f"fake_source {self.fake_source!r} is not one of {FAKE_SOURCES}")
        check(self.noise_std >= 0 and self.fid_every >= 0 and self.fid_images >= 2, "bad noise/FID settings")
        check(self.split_images >= 0, f"split_images {self.split_images} is negative")
        check(0 < self.collapse_ratio < 1, f"collapse_ratio {self.collapse_ratio} is outside (0, 1)")

    @property
    def planned_epochs(self) -> int:
        """Stage 3 reports once per distillation epoch (stages 1 and 2 report nothing)."""
        return self.distill_epochs

    def stage1(self) -> ClassifierConfig:
        """The pre-training config: exactly the baseline cell's, so both share one cached stage."""
        return ClassifierConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ClassifierConfig)})


# ------------------------------------------------------------------------------------------------------
# The two pieces of math: the hard/easy split and the distillation (triplet) loss
# ------------------------------------------------------------------------------------------------------

def hard_easy_split(probs: torch.Tensor, labels: torch.Tensor, p_h: float) -> torch.Tensor:
    """Boolean mask of hard samples (Algorithm 1): predicted label wrong, or confidence <= p_h.

    ``probs`` are softmax outputs (N, K); the confidence is the probability of the predicted class."""
    confidence, predicted = probs.max(dim=1)
    return (predicted != labels) | (confidence <= p_h)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float,
                 valid: torch.Tensor | None = None) -> torch.Tensor:
    """L_dist = E[max(||F(a) - F(p)||_2 - ||F(a) - F(n)||_2 + m, 0)] (Pennisi Eq. 5), with F's features
    unit-normalised here; the mean runs over the ``valid`` anchors (all when None; 0 when none)."""
    a, p, n = (F.normalize(t, dim=1) for t in (anchor, positive, negative))
    per_anchor = F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin)
    if valid is not None:
        per_anchor = per_anchor[valid]
    return per_anchor.mean() if per_anchor.numel() else anchor.sum() * 0.0


class TripletSampler:
    """Draws, for each generated anchor, a hard and an easy real sample of its class."""

    def __init__(self, x_u8: torch.Tensor, y: torch.Tensor, hard: torch.Tensor, easy: torch.Tensor,
                 num_classes: int):
        self.x, self.y = x_u8, y
        self.hard = [torch.nonzero(hard & (y == c)).flatten().cpu() for c in range(num_classes)]
        self.easy = [torch.nonzero(easy & (y == c)).flatten().cpu() for c in range(num_classes)]
        self.usable = torch.tensor([len(h) > 0 and len(e) > 0 for h, e in zip(self.hard, self.easy)])
        self.classes_without_triplet = int((~self.usable).sum())

    def draw(self, labels: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(positive images, negative images, valid mask) for anchor ``labels``; images in [-1, 1]."""
        labels_cpu = labels.cpu()
        pos = torch.zeros(len(labels), dtype=torch.long)
        neg = torch.zeros(len(labels), dtype=torch.long)
        for c in labels_cpu.unique().tolist():
            at = labels_cpu == c
            if self.usable[c]:
                pos[at] = self.hard[c][torch.randint(len(self.hard[c]), (int(at.sum()),), generator=rng)]
                neg[at] = self.easy[c][torch.randint(len(self.easy[c]), (int(at.sum()),), generator=rng)]
        device = self.x.device
        return (to_float(self.x[pos.to(device)]), to_float(self.x[neg.to(device)]),
                self.usable[labels_cpu].to(labels.device))


# ------------------------------------------------------------------------------------------------------
# Measurements of the generator: FID in a fixed classifier's feature space, and intra-class diversity
# ------------------------------------------------------------------------------------------------------

def balanced_labels(n: int, num_classes: int, device) -> torch.Tensor:
    return (torch.arange(n) % num_classes).to(device)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def diversity(x: torch.Tensor, y: torch.Tensor, num_classes: int, per_class: int = 16) -> torch.Tensor:
    """Per class, the mean pairwise L2 distance between (up to ``per_class``) images of that class
    (uint8 images are compared in the [-1, 1] scale of generated ones)."""
    out = torch.full((num_classes,), float("nan"))
    for c in range(num_classes):
        xc = x[y == c][:per_class]
        xc = (to_float(xc) if xc.dtype == torch.uint8 else xc).flatten(1).float()
        if len(xc) > 1:
            out[c] = torch.pdist(xc).mean()  # over the n (n - 1) / 2 distinct pairs
    return out


# ------------------------------------------------------------------------------------------------------
# The trainable
# ------------------------------------------------------------------------------------------------------

@register_method(GanDistillationConfig)
def gan_distillation(params: dict) -> None:
    cfg, ctx, device = setup(params, GanDistillationConfig)
    data = cell_data(ctx.data_file, cfg, device, ctx.data_fingerprint)
    stages_root = stage_root(ctx)
    K = data.num_classes

    # ---- stage 1: the pre-trained classifier (= the baseline cell) and the hard/easy split ----
    st1, fitted = classifier_stage(cfg.stage1(), data, device, stages_root, FolderCheckpointer)
    if fitted["best"] is None:
        raise RuntimeError("stage 1 diverged: no classifier to distil from")
    pretrained = build_classifier(cfg.model, data.shape[0], data.shape[1], K).to(device)
    pretrained.load_state_dict(fitted["best"]["model"])
    pretrained.eval().requires_grad_(False)

    def split_hard(artifact: Path, work: Path) -> None:
        n = len(data.train_y)
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:cfg.split_images or n]
        idx = idx.sort().values.to(device)
        with torch.no_grad():
            probs = torch.cat([F.softmax(pretrained(to_float(data.train_x[idx[i:i + cfg.eval_batch_size]])), 1)
                               for i in range(0, len(idx), cfg.eval_batch_size)])
        hard = torch.zeros(n, dtype=torch.bool, device=device)
        easy = torch.zeros(n, dtype=torch.bool, device=device)
        hard[idx] = hard_easy_split(probs, data.train_y[idx], cfg.p_h)
        easy[idx] = ~hard[idx]
        atomic_write(artifact / "hard_easy.pt", lambda f: torch.save({"hard": hard.cpu(), "easy": easy.cpu()}, f))

    st_split = stage(stages_root, "hard_easy", {"p_h": cfg.p_h, "split_images": cfg.split_images},
                     (st1.key, data.split_hash), split_hard)
    labels = torch.load(st_split.path("hard_easy.pt"))
    hard, easy = labels["hard"].to(device), labels["easy"].to(device)
    triplets = TripletSampler(data.train_x, data.train_y, hard, easy, K)

    # ---- stage 2: the pre-trained GAN (shared with gan_augmentation) ----
    st2, gan, _ = gan_stage(cfg.gan, cfg.seed, data, device, stages_root)
    stages = [st1, st_split, st2]
    counts = stage_counts(stages)

    # ---- stage 3: alternate one GAN epoch and one classifier epoch ----
    rng = seed_everything(cfg.seed)
    model = build_classifier(cfg.model, data.shape[0], data.shape[1], K).to(device)
    model.load_state_dict(fitted["best"]["model"])
    opt, sched = make_optimizer(cfg, model.parameters())
    proto_rng = torch.Generator().manual_seed(cfg.seed)
    prototypes = sample(gan.gan.generator, torch.arange(K, device=device), proto_rng)  # Table 5 ablation
    # the grids before and after distillation show the same z and labels, image for image
    before = sample(gan.gan.generator, balanced_labels(8 * K, K, device), measurement_rng(cfg.seed, 0, "grid"))
    real_fid = data.train_x[torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))[:cfg.fid_images]]
    real_div = diversity(data.train_x, data.train_y, K)
    ckpt = TuneCheckpointer(counts)
    history, cost, start, collapse_epoch = [], NEW_COST, 1, None
    if state := ckpt.restore():
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gan.load_state_dict(state["gan"])
        set_rng_states(state["rng"], rng)
        history, start, collapse_epoch = state["history"], state["epoch"] + 1, state["collapse_epoch"]
        cost = {**state["cost"], M.RESTARTS: state["cost"][M.RESTARTS] + 1}
    G = gan.ema.module if cfg.sample_from_ema and gan.ema is not None else gan.gan.generator

    def distillation_loss(fake: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        positive, negative, valid = triplets.draw(labels, rng)
        with torch.no_grad():
            f_pos, f_neg = model.features(positive), model.features(negative)
        return triplet_loss(model.features(fake), f_pos, f_neg, cfg.margin, valid)

    def fake_images(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Generated images of ``labels`` (G in eval mode, no gradient), random numbers from ``g``."""
        if cfg.fake_source == "one_per_class":
            noise = torch.randn(len(labels), *data.shape, generator=g).to(device) * cfg.noise_std
            return (prototypes[labels] + noise).clamp(-1, 1)
        return sample(G, labels, g)

    def make_fake(labels: torch.Tensor) -> torch.Tensor:  # the classifier's batches: the training stream
        return fake_images(labels, rng)

    for epoch in range(start, cfg.distill_epochs + 1):
        t0 = time.perf_counter()
        gan_stats = {"extra_loss": math.nan, "d_loss": math.nan, "g_loss": math.nan, "steps": 0, "diverged": False}
        if cfg.fake_source == "generator":
            model.eval().requires_grad_(False)  # F: fixed BN statistics, no gradient into C
            gan_stats = gan_epoch(gan, cfg.gan, data.train_x, data.train_y, rng, distillation_loss)
            model.requires_grad_(True)
        row, stats = classifier_epoch(model, opt, sched, mixed_batches(data.train_x, data.train_y, cfg, cfg.p_r,
                                                                       make_fake, rng), data, cfg, epoch)
        cost = add_cost(cost, {**stats, "steps": stats["steps"] + gan_stats["steps"]}, time.perf_counter() - t0)

        measure = (cfg.fid_every and epoch % cfg.fid_every == 0) or epoch == cfg.distill_epochs
        fid = ratio = math.nan
        if measure and not stats["diverged"]:  # NOTE: its own stream, so measuring leaves training as it is
            g = measurement_rng(cfg.seed, epoch, "fid")
            fake_y = balanced_labels(cfg.fid_images, K, device)
            fake = torch.cat([fake_images(fake_y[i:i + 512], g) for i in range(0, cfg.fid_images, 512)])
            fid = classifier_fid(pretrained, real_fid, to_uint8(fake), cache_dir=Path(ctx.out) / "cache" / "fidelity")
            ratio = float(torch.nanmean(diversity(fake, fake_y, K) / real_div))
            if collapse_epoch is None and ratio < cfg.collapse_ratio:
                collapse_epoch = epoch
        history.append({**row, M.FID_CLASSIFIER: fid, M.DIVERSITY_RATIO: ratio, M.DIST_LOSS: gan_stats["extra_loss"],
                        M.D_LOSS: gan_stats["d_loss"], M.G_LOSS: gan_stats["g_loss"]})
        diverged = stats["diverged"] or gan_stats["diverged"]
        result = {**history[-1], **final_metrics(history), **cost, M.DEVICE: device.type,
                  M.SPLIT_HASH: data.split_hash, M.DIVERGED: int(diverged), M.DONE_EPOCHS: epoch,
                  M.COLLAPSE_EPOCH: collapse_epoch if collapse_epoch is not None else -1,
                  M.HARD_FRACTION: float(hard.sum() / (hard | easy).sum()),
                  M.CLASSES_WITHOUT_TRIPLET: triplets.classes_without_triplet}
        if epoch == cfg.distill_epochs or diverged:
            result.update(_inception(ctx, cfg, data, fake_images, epoch))
            _save_figure_data(ctx, cfg, data, pretrained, model, hard, easy, before, fake_images, epoch, history)
        ckpt.save(result, {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                           "gan": gan.state_dict(), "rng": rng_states(rng), "history": history, "cost": cost,
                           "epoch": epoch, "collapse_epoch": collapse_epoch})
        if diverged:
            return


def _inception(ctx, cfg, data, fake_images, epoch) -> dict:
    """FID, IS and KID with Inception weights when the run has them; else missing, with the reason.

    Real: a class-balanced sample of 2,000 test images (the same for every trial of a dataset, so values
    compare across seeds); generated: 2,000 class-balanced images from the measurement stream."""
    from harness.fidelity import inception_weights

    weights = inception_weights(ctx.inception_weights)
    n = min(len(data.test_y), 2000)
    real = data.test_x[balanced_sample(data.test_y, n, torch.Generator().manual_seed(0))]
    fake = to_uint8(fake_images(balanced_labels(n, data.num_classes, data.test_y.device),
                                measurement_rng(cfg.seed, epoch, "inception")))
    m = inception_metrics(real, fake, weights)
    return {REPORT_NAMES[k]: v for k, v in m.items()}  # FID, IS and KID (means and stds), the missing reason


def _save_figure_data(ctx, cfg, data, pretrained, model, hard, easy, before, fake_images, epoch, history) -> None:
    """What Fig. 2-5 need, beside the results: features of easy, hard and generated samples (before
    and after distillation), sample grids before and after (the same z and labels), and the per-epoch
    curves. Generated images come from the measurement streams; the classifier is read in eval mode."""
    K, n = data.num_classes, min(500, cfg.max_eval_images or 500)  # smoke caps it
    g = torch.Generator().manual_seed(0)
    pick = lambda mask: torch.nonzero(mask).flatten()[torch.randperm(int(mask.sum()), generator=g)[:n].to(mask.device)]
    easy_i, hard_i = pick(easy), pick(hard)
    labels = balanced_labels(n, K, data.train_y.device)
    # NOTE: eval mode: a diverged epoch leaves the classifier in train mode (BatchNorm would update)
    with torch.no_grad(), eval_mode(model):
        generated = fake_images(labels, measurement_rng(cfg.seed, epoch, "figure"))
        feats = {
            "easy_before": pretrained.features(to_float(data.train_x[easy_i])),
            "hard_before": pretrained.features(to_float(data.train_x[hard_i])),
            "easy_after": model.features(to_float(data.train_x[easy_i])),
            "generated_after": model.features(generated),
        }
    after = fake_images(balanced_labels(8 * K, K, labels.device), measurement_rng(cfg.seed, 0, "grid"))
    payload = {"features": {k: v.cpu() for k, v in feats.items()},
               "labels": {"easy": data.train_y[easy_i].cpu(), "hard": data.train_y[hard_i].cpu(),
                          "generated": labels.cpu()},
               "grid_before": to_uint8(before).cpu(), "grid_after": to_uint8(after).cpu(),
               "history": history, "collapse_ratio": cfg.collapse_ratio}
    folder = Path(ctx.artifacts)  # <out>/artifacts/<identity>: the report finds it by the row's identity
    atomic_write(folder / ARTIFACT_FILE, lambda f: torch.save(payload, f))
