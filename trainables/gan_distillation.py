"""gan_distillation: Pennisi, Palazzo, Spampinato 2021, Self-improving classification performance
through GAN distillation (Algorithm 1).

Stage 1: the classifier pre-trained on the real subset, model at the lowest validation loss (a cached
stage: the ``baseline`` cell with the same classifier config). The training subset is split into hard
samples (prediction wrong, or softmax confidence <= p_h) and easy ones (a cached stage). Stage 2: a
conditional GAN pre-trained on the real subset (a cached stage, shared with ``gan_augmentation``).
Stage 3, for up to ``distill_epochs`` (early stopping on validation accuracy with the classifier's
``patience``): one GAN epoch (L_D; L_G + L_dist, the triplet loss with the generated image as anchor, a
hard sample of its class as positive and an easy sample of its class as negative, on unit-normalised
penultimate features of the current classifier, margin m), then one classifier epoch of Algorithm 1:
every real sample x_i once, with a generated x_g = G(z; y_i) of its label, batches [x_g, x_i] with a
real fraction p_r (``epoch_mode``). Reported: test accuracy at the best validation accuracy (Pennisi's
tables), per epoch the generator's FID and the test accuracy (Fig. 3) with mode collapse detected and
its epoch recorded, and the FID of the pre-trained GAN (Sec. 4.2's 20.05).

Choices the paper leaves open (each a config field or stated here):
- Classes with no hard (or no easy) sample: their generated anchors get no triplet term (the mean is
  over anchors that have both a positive and a negative); the number of such classes is reported
  (``classes_without_triplet``). Pennisi's 20% CIFAR-10 split is expected to have both in every class.
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
- Algorithm 1 at p_r != 0.5: a batch holds round(p_r B) real samples and B - round(p_r B) generated ones
  labelled with the real ones' labels, repeated in order; an epoch is one pass over the real samples,
  so it has ceil(N / round(p_r B)) steps (at p_r = 0: one pass of labels, ceil(N / B) steps). The
  paper's pairing leaves this open. At p_r = 1 (Table 4's 100/0) no generated image reaches the
  classifier, so the GAN epochs are skipped: the row is stage 1 continued on real data (at Algorithm 1's
  steps), a stronger control than the paper's, which prints the baseline's number there. ``epoch_mode = "equal_steps"`` keeps the baseline's steps per epoch
  with independently drawn labels (gansweep's earlier reading).
- GAN losses: BCE as in Eqs. 2-3 (``gan.loss = "bce"``); the DiffAugment BigGAN release's hinge loss is
  the named variant "hinge".
- Augmentation: none at the paper profile (the paper mentions none); crop and flip remain the
  classifier config's ``crop_padding`` and ``flip``, applied to generated images too when on.
- The compute-matched control (``fake_source = "none"``, gansweep's, not the paper's): stage 3 with no
  GAN and real images only, the same steps per epoch (Algorithm 1 at this p_r), the same maximum and
  early stopping; a gain over it is what the generated images add beyond more training.
- Table 5's "non-collapsed images" ablation (``fake_source = "one_per_class"``): one image per class
  from the distilled generator before its collapse ("with the GAN model performing well, i.e. before
  epoch 75"): a cached stage reruns the collapsed row's own stage 3 (same config with fake_source
  "generator", so the same trajectory) until its diversity ratio falls below ``collapse_ratio`` and keeps
  G of the last measured epoch before it (``snapshot_epoch``; without a collapse, the last epoch). Plus
  Gaussian noise of ``noise_std`` ([-1, 1] units) per use; the GAN epochs are skipped, since the
  classifier never samples G. The row reports ``snapshot_epoch`` and the run's collapse epoch.
- Table 3's "GAN augmentation" row (``dist_weight = 0``): the same framework without the distillation
  loss, G trained on L_G alone in stage 3 and its samples mixed into the classifier's batches as in
  Algorithm 1. The paper's text reads so: "data augmentation using standard GAN yields an increase in
  accuracy of about 2.5 percent points, whereas adding the distillation loss leads to an accuracy gain
  of about 5 percent points". ``gan_augmentation`` (samples of the fixed pre-trained GAN, gansweep's
  earlier reading) stays the quickstart's method.
- Pre-trained GAN FID: in the stage-1 classifier's feature space against the validation split
  (always), Inception FID against a balanced 2,000-image test sample when weights are given; measured
  on the generator the classifier samples, from its own random stream.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import metrics as M
from harness.checkpoint import FolderCheckpointer, TuneCheckpointer, device_name, rng_states, seed_everything, set_rng_states
from harness.config import check
from harness.data import to_float, to_uint8
from harness.fidelity import (REPORT_NAMES, balanced_sample, classifier_fid, eval_mode, inception_metrics,
                              measurement_rng)
from harness.gan_train import GANConfig, GANState, gan_epoch, gan_stage
from harness.gans import sample
from harness.models import build_classifier
from harness.stages import any_order, stage, stage_counts
from harness.storage import atomic_write
from harness.train import (NEW_COST, ClassifierConfig, add_cost, cell_data, classifier_epoch, feature_classifier,
                           final_metrics, keep_best, make_optimizer, mixed_batches, paired_batches, stop_early,
                           test_at_best)
from harness.trial import setup, stage_root
from trainables import register_method

FAKE_SOURCES = ("generator", "one_per_class", "none")
EPOCH_MODES = ("algorithm1", "equal_steps")
ARTIFACT_FILE = "distillation.pt"  # per-trial data for the figures (t-SNE features, sample grids, curves)


@dataclass(frozen=True)
class GanDistillationConfig(ClassifierConfig):
    """The classifier config (stage 1 and stage 3), plus the GAN (stage 2) and the distillation knobs."""

    gan: GANConfig = GANConfig()  # the GAN pre-trained on the real subset, then distilled
    p_h: float = 0.6  # confidence threshold: a correct prediction with softmax <= p_h is hard (Pennisi: 0.6)
    margin: float = 1.0  # triplet margin m on unit-normalised features (Pennisi: 1)
    dist_weight: float = 1.0  # weight of L_dist in G's stage-3 loss (Eq. 6: 1; 0: Table 3's GAN augmentation)
    p_r: float = 0.5  # fraction of real images per classifier batch in stage 3 (Pennisi: 0.5)
    distill_epochs: int = 250  # stage-3 epochs, each one GAN epoch then one classifier epoch (Pennisi: 250)
    sample_from_ema: bool = False  # classifier batches from the EMA generator instead of the distilled one
    # "generator"; "one_per_class" (Table 5's non-collapsed ablation); "none": the compute-matched control
    fake_source: str = "generator"
    noise_std: float = 0.05  # std of the noise on the one image per class (one_per_class), [-1, 1] units
    fid_every: int = 1  # epochs between FID measurements (0: only after the last epoch)
    fid_images: int = 1000  # generated (and real) images per FID measurement
    # Training images labelled hard or easy after stage 1 (0: the whole subset). Only the smoke
    # profiles cap it (a fixed random subset is labelled; the rest is neither hard nor easy).
    split_images: int = 0
    collapse_ratio: float = 0.2  # mode collapse when generated/real intra-class diversity falls below it
    # "algorithm1": a stage-3 classifier epoch pairs every real sample with generated images of its label,
    # p_r real per batch (Pennisi's Algorithm 1; harness.train.paired_batches); "equal_steps": the
    # baseline's number of steps with labels drawn independently (harness.train.mixed_batches).
    epoch_mode: str = "algorithm1"

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.p_h < 1, f"p_h {self.p_h} is outside (0, 1)")
        check(self.margin > 0, f"margin {self.margin} must be positive")
        check(self.dist_weight >= 0, f"dist_weight {self.dist_weight} must not be negative")
        check(0 <= self.p_r <= 1, f"p_r {self.p_r} is outside [0, 1]")
        check(self.distill_epochs >= 1, f"distill_epochs {self.distill_epochs} must be at least 1")
        check(self.fake_source in FAKE_SOURCES, f"fake_source {self.fake_source!r} is not one of {FAKE_SOURCES}")
        check(self.noise_std >= 0 and self.fid_every >= 0 and self.fid_images >= 2, "bad noise/FID settings")
        check(self.split_images >= 0, f"split_images {self.split_images} is negative")
        check(0 < self.collapse_ratio < 1, f"collapse_ratio {self.collapse_ratio} is outside (0, 1)")
        check(self.epoch_mode in EPOCH_MODES, f"epoch_mode {self.epoch_mode!r} is not one of {EPOCH_MODES}")

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

@dataclass
class Pretrained:
    """What stages 1 and 2 give stage 3."""

    classifier: torch.nn.Module  # stage 1, frozen: stage 3's starting point; measures FID, labels hard/easy
    hard: torch.Tensor
    easy: torch.Tensor
    triplets: TripletSampler
    gan: GANState | None  # the stage-2 GAN (None for the compute-matched control)
    stages: list


def pretrain(cfg: GanDistillationConfig, data, device, stages_root) -> Pretrained:
    """Stage 1 (the baseline cell's classifier and the hard/easy split) and stage 2 (the GAN).

    The two are independent (the GAN trains on real data alone; it needs the classifier only when its
    early stopping measures FID in that classifier's features), so they run in whichever order finds a
    stage free (harness.stages.any_order): two trials starting together compute one each."""
    K = data.num_classes

    def classifier_and_split():
        st1, pretrained = feature_classifier(cfg, data, device, stages_root)

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
            atomic_write(artifact / "hard_easy.pt",
                         lambda f: torch.save({"hard": hard.cpu(), "easy": easy.cpu()}, f))

        st_split = stage(stages_root, "hard_easy", {"p_h": cfg.p_h, "split_images": cfg.split_images},
                         (st1.ref, data.split_hash), split_hard)
        return st1, pretrained, st_split

    def generator():
        fid_net = feature_classifier(cfg, data, device, stages_root, cfg.gan.fid_model) if cfg.gan.patience else None
        st2, gan, _ = gan_stage(cfg.gan, cfg.seed, data, device, stages_root, fid_net)
        return st2, gan, fid_net[0] if fid_net else None

    # the compute-matched control never samples a generator
    branches = [classifier_and_split] + ([generator] if cfg.fake_source != "none" else [])
    (st1, pretrained, st_split), *rest = any_order(*branches)
    labels = torch.load(st_split.path("hard_easy.pt"))
    hard, easy = labels["hard"].to(device), labels["easy"].to(device)
    stages, gan = [st1, st_split], None
    if rest:
        st2, gan, st_fid = rest[0]
        stages += [st2] + ([st_fid] if st_fid and st_fid.key != st1.key else [])
    return Pretrained(pretrained, hard, easy, TripletSampler(data.train_x, data.train_y, hard, easy, K),
                      gan, stages)


@register_method(GanDistillationConfig)
def gan_distillation(params: dict) -> None:
    cfg, ctx, device = setup(params, GanDistillationConfig)
    data = cell_data(ctx.data_file, cfg, device, ctx.data_fingerprint)
    stages_root = stage_root(ctx)
    pre = pretrain(cfg, data, device, stages_root)
    stages, snapshot = list(pre.stages), None
    if cfg.fake_source == "one_per_class":  # Table 5: the distilled generator before its collapse
        st_snap, snapshot = pre_collapse_snapshot(cfg, ctx, data, device, stages_root, pre)
        stages.append(st_snap)
    distil(cfg, ctx, data, device, pre, TuneCheckpointer(stage_counts(stages)), snapshot=snapshot)


SNAPSHOT_FILE = "pre_collapse.pt"


def pre_collapse_snapshot(cfg: GanDistillationConfig, ctx, data, device, stages_root, pre: Pretrained):
    """Table 5's non-collapsed generator (a cached stage): the collapsed row's own run (the same config
    with ``fake_source`` "generator", so the same trajectory), stopped at the first epoch whose diversity
    ratio falls below ``collapse_ratio``, keeping G from the last measured epoch before it. Without a
    collapse, G of the run's last epoch. Returns (stage, {"generator", "epoch", "collapse_epoch"})."""
    # the collapsed row's own config (noise_std only shapes this row's noise: the default, so that one run
    # serves every noise level)
    run_cfg = dataclasses.replace(cfg, fake_source="generator", noise_std=GanDistillationConfig.noise_std)

    def compute(artifact: Path, work: Path) -> None:
        pre_run = dataclasses.replace(pre, gan=copy.deepcopy(pre.gan))  # distil() trains the GAN it is given
        snap = distil(run_cfg, ctx, data, device, pre_run, FolderCheckpointer(work), stop_at_collapse=True)
        atomic_write(artifact / SNAPSHOT_FILE, lambda f: torch.save(snap, f))

    key = {"run": dataclasses.asdict(run_cfg)}
    st = stage(stages_root, "pre_collapse", key, tuple(s.ref for s in pre.stages), compute)
    return st, torch.load(st.path(SNAPSHOT_FILE), map_location=device, weights_only=False)


def distil(cfg: GanDistillationConfig, ctx, data, device, pre: Pretrained, ckpt, snapshot: dict | None = None,
           stop_at_collapse: bool = False) -> dict | None:
    """Stage 3: per epoch one GAN epoch (generator source) then one classifier epoch, until validation
    accuracy stops improving (``patience``) or ``distill_epochs``; one report per epoch through ``ckpt``.

    ``stop_at_collapse`` (the pre-collapse snapshot stage) stops at the first collapsed epoch and returns
    G's weights from the last measured epoch before it; the trial itself writes its figure data and
    Inception metrics at its last epoch instead."""
    K = data.num_classes
    rng = seed_everything(cfg.seed)
    model = build_classifier(cfg.model, data.shape[0], data.shape[1], K).to(device)
    model.load_state_dict(pre.classifier.state_dict())  # a copy: the stage-1 classifier stays as it is
    opt, sched = make_optimizer(cfg, model.parameters())
    gan = pre.gan
    G = None
    if gan is not None:
        G = gan.ema.module if cfg.sample_from_ema and gan.ema is not None else gan.gan.generator
    prototypes = None
    if cfg.fake_source == "one_per_class":  # Table 5: one image per class from the pre-collapse snapshot
        snap_G = copy.deepcopy(gan.gan.generator)
        snap_G.load_state_dict(snapshot["generator"])
        prototypes = sample(snap_G, torch.arange(K, device=device), torch.Generator().manual_seed(cfg.seed))
    # the grids before and after distillation show the same z and labels, image for image
    before = sample(G, balanced_labels(8 * K, K, device), measurement_rng(cfg.seed, 0, "grid")) if G else None
    real_fid = data.train_x[torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))[:cfg.fid_images]]
    real_div = diversity(data.train_x, data.train_y, K)
    history, kept, cost, start, collapse_epoch, pretrained_fid = [], {}, NEW_COST, 1, None, None
    # the snapshot stage's fallback when the very first measured epoch has collapsed: the stage-2 generator,
    # cloned now (G itself is about to be distilled)
    snap = _snapshot(G, 0) if stop_at_collapse else None
    if state := ckpt.restore():
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if gan is not None:
            gan.load_state_dict(state["gan"])
        set_rng_states(state["rng"], rng)
        history, start, collapse_epoch = state["history"], state["epoch"] + 1, state["collapse_epoch"]
        kept = state["kept"]
        pretrained_fid, snap = state["pretrained_fid"], state["snapshot"]
        cost = {**state["cost"], M.RESTARTS: state["cost"][M.RESTARTS] + 1}
        if state["complete"]:
            start = cfg.distill_epochs + 1
    if pretrained_fid is None:  # the stage-2 GAN before any distillation (Pennisi Sec. 4.2: FID 20.05)
        pretrained_fid = _pretrained_fid(cfg, ctx, data, pre, G) if G is not None else {}

    def distillation_loss(fake: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        positive, negative, valid = pre.triplets.draw(labels, rng)
        with torch.no_grad():
            f_pos, f_neg = model.features(positive), model.features(negative)
        return cfg.dist_weight * triplet_loss(model.features(fake), f_pos, f_neg, cfg.margin, valid)

    def fake_images(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Generated images of ``labels`` (G in eval mode, no gradient), random numbers from ``g``."""
        if cfg.fake_source == "one_per_class":
            noise = torch.randn(len(labels), *data.shape, generator=g).to(device) * cfg.noise_std
            return (prototypes[labels] + noise).clamp(-1, 1)
        return sample(G, labels, g)

    def make_fake(labels: torch.Tensor) -> torch.Tensor:  # the classifier's batches: the training stream
        return fake_images(labels, rng)

    def batches():
        p_r = 1.0 if cfg.fake_source == "none" and cfg.epoch_mode == "equal_steps" else cfg.p_r
        if cfg.epoch_mode == "algorithm1":
            return paired_batches(data.train_x, data.train_y, cfg, p_r, make_fake, rng,
                                  real_only=cfg.fake_source == "none")
        return mixed_batches(data.train_x, data.train_y, cfg, p_r, make_fake, rng)

    for epoch in range(start, cfg.distill_epochs + 1):
        t0 = time.perf_counter()
        gan_stats = {"extra_loss": math.nan, "d_loss": math.nan, "g_loss": math.nan, "steps": 0, "diverged": False}
        # p_r = 1 (Table 4's 100/0): the classifier never samples G, so its GAN epochs would change nothing
        if cfg.fake_source == "generator" and round(cfg.p_r * cfg.batch_size) < cfg.batch_size:
            model.eval().requires_grad_(False)  # F: fixed BN statistics, no gradient into C
            gan_stats = gan_epoch(gan, cfg.gan, data.train_x, data.train_y, rng,
                                  distillation_loss if cfg.dist_weight else None)
            model.requires_grad_(True)
        row, stats = classifier_epoch(model, opt, sched, batches(), data, cfg, epoch)
        cost = add_cost(cost, {**stats, "steps": stats["steps"] + gan_stats["steps"]}, time.perf_counter() - t0)

        measure = cfg.fake_source != "none" and ((cfg.fid_every and epoch % cfg.fid_every == 0)
                                                 or epoch == cfg.distill_epochs)
        fid = ratio = math.nan
        if measure and not stats["diverged"]:  # NOTE: its own stream, so measuring leaves training as it is
            g = measurement_rng(cfg.seed, epoch, "fid")
            fake_y = balanced_labels(cfg.fid_images, K, device)
            fake = torch.cat([fake_images(fake_y[i:i + 512], g) for i in range(0, cfg.fid_images, 512)])
            fid = classifier_fid(pre.classifier, real_fid, to_uint8(fake),
                                 cache_dir=Path(ctx.out) / "cache" / "fidelity")
            ratio = float(torch.nanmean(diversity(fake, fake_y, K) / real_div))
            if collapse_epoch is None and ratio < cfg.collapse_ratio:
                collapse_epoch = epoch
            elif collapse_epoch is None and stop_at_collapse:  # the last healthy generator so far
                snap = _snapshot(G, epoch)
        history.append({**row, M.FID_CLASSIFIER: fid, M.DIVERSITY_RATIO: ratio, M.DIST_LOSS: gan_stats["extra_loss"],
                        M.D_LOSS: gan_stats["d_loss"], M.G_LOSS: gan_stats["g_loss"]})
        kept = keep_best(kept, history, model, cfg)
        diverged = stats["diverged"] or gan_stats["diverged"]
        stopped = stop_early(history, cfg.patience)
        complete = diverged or stopped or epoch == cfg.distill_epochs or (stop_at_collapse and collapse_epoch is not None)
        if complete:
            test_at_best(kept, history, model, data, cfg)
        result = {**history[-1], **final_metrics(history), **cost, **pretrained_fid, M.DEVICE: device.type,
                  M.DEVICE_NAME: device_name(device),
                  M.SPLIT_HASH: data.split_hash, M.DIVERGED: int(diverged), M.DONE_EPOCHS: epoch,
                  M.COLLAPSE_EPOCH: collapse_epoch if collapse_epoch is not None else -1,
                  M.HARD_FRACTION: float(pre.hard.sum() / (pre.hard | pre.easy).sum()),
                  M.CLASSES_WITHOUT_TRIPLET: pre.triplets.classes_without_triplet,
                  M.STOPPED_EARLY: int(stopped), M.COMPLETE: int(complete)}
        if snapshot is not None:
            result.update({M.SNAPSHOT_EPOCH: snapshot["epoch"],
                           M.SNAPSHOT_RUN_COLLAPSE_EPOCH: snapshot["collapse_epoch"] or -1})
        if complete and not stop_at_collapse and cfg.fake_source != "none":
            result.update(_inception(ctx, cfg, data, fake_images, epoch))
            _save_figure_data(ctx, cfg, data, pre, model, before, fake_images, epoch, history)
        ckpt.save(result, {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                           "gan": gan.state_dict() if gan is not None else None, "rng": rng_states(rng),
                           "history": history, "kept": kept, "cost": cost, "epoch": epoch,
                           "collapse_epoch": collapse_epoch,
                           "pretrained_fid": pretrained_fid, "snapshot": snap, "complete": complete})
        if complete:
            break
    if stop_at_collapse:
        if collapse_epoch is None:  # never collapsed: the run's last generator
            snap = _snapshot(G, history[-1][M.EPOCH] if history else 0)
        return {**snap, "collapse_epoch": collapse_epoch}
    return None


def _snapshot(G: torch.nn.Module, epoch: int) -> dict:
    """G's weights now (a CPU copy, untouched by further training) and the epoch they are from."""
    return {"generator": {k: v.detach().cpu().clone() for k, v in G.state_dict().items()}, "epoch": epoch}


def _pretrained_fid(cfg, ctx, data, pre: Pretrained, G) -> dict:
    """FID of the stage-2 generator before distillation: in the stage-1 classifier's feature space against
    the validation split (always), and Inception FID against the balanced test sample (with weights)."""
    K, device = data.num_classes, data.val_y.device
    g = measurement_rng(cfg.seed, 0, "pretrained_fid")
    y = balanced_labels(cfg.fid_images, K, device)
    fake = torch.cat([sample(G, y[i:i + 512], g) for i in range(0, len(y), 512)])
    inception = _inception(ctx, cfg, data, lambda labels, g: sample(G, labels, g), 0, "pretrained_inception")
    return {M.FID_PRETRAINED_CLASSIFIER: classifier_fid(pre.classifier, data.val_x, to_uint8(fake)),
            M.FID_PRETRAINED_INCEPTION: math.nan if inception[M.FID_INCEPTION] is None else inception[M.FID_INCEPTION]}


def _inception(ctx, cfg, data, fake_images, epoch, purpose: str = "inception") -> dict:
    """FID, IS and KID with Inception weights when the run has them; else missing, with the reason.

    Real: a class-balanced sample of 2,000 test images (the same for every trial of a dataset, so values
    compare across seeds); generated: 2,000 class-balanced images from the measurement stream."""
    from harness.fidelity import inception_weights

    weights = inception_weights(ctx.inception_weights)
    if weights is None:  # missing, with the reason, before sampling 2,000 images for nothing
        m = inception_metrics(None, None, None)
    else:
        n = min(len(data.test_y), 2000)
        real = data.test_x[balanced_sample(data.test_y, n, torch.Generator().manual_seed(0))]
        fake = to_uint8(fake_images(balanced_labels(n, data.num_classes, data.test_y.device),
                                    measurement_rng(cfg.seed, epoch, purpose)))
        m = inception_metrics(real, fake, weights)
    return {REPORT_NAMES[k]: v for k, v in m.items()}  # FID, IS and KID (means and stds), the missing reason


def _save_figure_data(ctx, cfg, data, pre: Pretrained, model, before, fake_images, epoch, history) -> None:
    """What Fig. 2-5 need, beside the results: features of easy, hard and generated samples (before
    and after distillation), sample grids before and after (the same z and labels), and the per-epoch
    curves. Generated images come from the measurement streams; the classifier is read in eval mode."""
    K, n = data.num_classes, min(500, cfg.max_eval_images or 500)  # smoke caps it
    g = torch.Generator().manual_seed(0)
    pick = lambda mask: torch.nonzero(mask).flatten()[torch.randperm(int(mask.sum()), generator=g)[:n].to(mask.device)]
    easy_i, hard_i = pick(pre.easy), pick(pre.hard)
    pretrained = pre.classifier
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
