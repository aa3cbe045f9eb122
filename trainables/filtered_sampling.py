"""filtered_sampling: a classifier trained on generated images only, drawn through a classifier filter (Pham,
Dutt, Pellerin, Quénot 2019, Algorithm 1; Slim 2020, Sec. 3 and Table 1).

Stage 1: the classifier trained on the real subset (a cached stage: the ``baseline`` cell with the same
classifier config). It is the filter, as in both papers ("a pre-trained classifier, trained on the same
training data as the GAN"; Slim: "the same ResNet classifier used for sample filtering" is the baseline). The
filter is that run's weights of lowest validation loss (harness.train.feature_classifier), while the
baseline row reports its test accuracy at the best validation accuracy: the two epochs can differ.
Stage 2: a conditional GAN pre-trained on the real subset (a cached stage, shared with the other GAN
methods). With ``source = "fixed"``, stage 3 generates one synthetic set (a cached stage). Then a fresh
classifier of the same config trains on generated images only, in epochs of the real subset's length (the
same number of optimisation steps as the real-data classifier, ``epoch_scale``), with the same epochs and
early stopping (on the *real* validation split), and is tested on the real test set.

Slim's Table 1 switches: ``source`` (fixed set vs on-the-fly generation), data transformations (the
classifier config's ``crop_padding`` and ``flip``), ``filtering`` (threshold ``threshold``, Slim's 0.9) and
``truncation`` (Slim's tau = 1.5). The drawing itself (labels uniform over the classes, the filter rule, what
happens to rejected draws) is :mod:`harness.synthetic`, whose docstring lists the choices the papers leave
open; each is a field of :class:`harness.synthetic.SyntheticConfig`.

Reported besides the classifier's metrics: per class, how many draws the filter accepted, rejected for a
wrong label and rejected for a low probability (Pham Figs. 6-7), how many slots were filled with a rejected
draw after ``max_draws`` (``filter_forced``), the images generated and the seconds spent, with the share of
that cost spent on rejected images; the generator's size in MB beside the size of the real subset it stands
for (Pham Table I: "Size (MB)"); the generator's FID in the filter's features against the validation split,
and Inception FID / IS / KID when Inception weights are given; its intra-class MS-SSIM diversity (Slim Table 2);
and each FID of real training images in the generated ones' place, the real-data row of Slim's Table 2
(harness.synthetic.generator_metrics); each generator's Classification Accuracy Score and its gap to the real-data
classifier (harness.cas: a cached stage per GAN, shared by every cell that trains that GAN).

Choices the papers leave open, beyond harness.synthetic's:
- The generator's size counts its parameters at 4 bytes (float32; the EMA copy, which we sample, has the same
  size); the real data's, its uint8 pixels (C x H x W bytes per image): 50,000 CIFAR-10 images are 153.6 MB,
  Pham's "150". MB = 1e6 bytes.
- The fixed set is generated once per (GAN, filter, seed) from its own random stream, class balanced, then
  iterated over in shuffled epochs like a real subset.

Figure data (``<out>/artifacts/<identity>/figure_data.pt``, read by reports/figures.py), saved once the classifier
has trained, from measurement streams of its own (harness.fidelity.measurement_rng), so saving it changes nothing
the trial computed:
- Pham Figs. 3-4 and 8-9: a grid of the first GAN's samples, ``GRID_PER_CLASS`` per class for the first
  ``GRID_CLASSES`` classes, untransformed and truncated as the classifier samples them, with the filter's verdict
  on each (the real-data classifier at ``threshold``, also when ``filtering`` is off: what it would reject).
- Slim Fig. 1: features (the real-data classifier's, as Slim's "same pre-trained ResNet") of up to
  ``TSNE_PER_CLASS`` real test images per class of the first ``TSNE_CLASSES`` classes (Slim: five "selected"
  classes, ours the first five), and of as many unfiltered generated images of the same labels from the first GAN.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import metrics as M
from harness.cas import cas_metrics
from harness.checkpoint import TuneCheckpointer
from harness.data import batches, to_float, to_uint8
from harness.fidelity import balanced_sample, measurement_rng
from harness.gan_train import gan_stage
from harness.stages import stage, stage_counts
from harness.storage import atomic_write
from harness.synthetic import (ACCEPTED, LOW_PROB, WRONG_LABEL, FilterCounts, GeneratedBatches, SyntheticConfig,
                               filter_verdicts, generator_metrics)
from harness.train import cell_data, epoch_steps, feature_classifier, fit_classifier
from harness.trial import setup, stage_root
from trainables import register_method

SET_FILE = "synthetic_set.pt"
FIGURE_FILE = "figure_data.pt"  # per-trial data for the figures (see the module docstring)
GRID_PER_CLASS = 8  # samples per class in the sample grids (Pham Figs. 3, 4, 8, 9 show "several samples")
GRID_CLASSES = 10  # classes in the grids at most: all of CIFAR-10, the first 10 of CIFAR-100
TSNE_CLASSES = 5  # Slim Fig. 1: "five selected classes"
TSNE_PER_CLASS = 256  # Slim Fig. 1: "256 real and generated images per class"


def size_metrics(generators, data) -> dict:
    """Pham's Table I sizes: the generators' parameters (float32) vs the real subset's pixels, in MB."""
    params = sum(p.numel() for G in generators for p in G.parameters())
    c, h, w = data.shape
    return {M.GENERATOR_MB: params * 4 / 1e6, M.REAL_DATA_MB: len(data.train_y) * c * h * w / 1e6,
            M.SOURCE_MB: params * 4 / 1e6}


def fixed_set_stage(cfg: SyntheticConfig, source: GeneratedBatches, data, device, root, inputs: tuple[str, ...]):
    """The synthetic set of ``cfg`` (``fixed_images``, or as many as the real subset), generated once."""
    n = cfg.fixed_images or len(data.train_y)

    def compute(artifact: Path, work: Path) -> None:
        source.counts = FilterCounts.zeros(data.num_classes)
        x, y = source.fixed_set(n, measurement_rng(cfg.seed, 0, "fixed_set"), device)
        atomic_write(artifact / SET_FILE, lambda f: torch.save(
            {"x": to_uint8(x).cpu(), "y": y.cpu(), "counts": dataclasses.asdict(source.counts)}, f))

    key = {f: getattr(cfg, f) for f in ("seed", "fixed_images", "filtering", "threshold", "truncation",
                                        "refill_same_label", "max_draws", "sample_from_ema")}
    # a mixture's set depends on the GANs' weights (multi_gan) as well as on the GANs (the inputs)
    st = stage(root, "synthetic_set", {**key, "images": n, "gan_weights": getattr(cfg, "gan_weights", ())},
               inputs, compute)
    payload = torch.load(st.path(SET_FILE), weights_only=False)
    return st, payload["x"].to(device), payload["y"].to(device), FilterCounts(**payload["counts"])


def real_stages(cfg: SyntheticConfig, data, device, root):
    """Stage 1 of a generator-only method: the classifier trained on the real subset (the baseline's stage; the
    filter), and the classifier measuring the GANs' early-stopping FID when they stop early. Returns
    (stage, classifier, fid_net or None)."""
    real = cfg.real_classifier()
    real_st, real_net = feature_classifier(real, data, device, root)
    fid_net = feature_classifier(real, data, device, root, cfg.gan.fid_model) if cfg.gan.patience else None
    return real_st, real_net, fid_net


def sampled_generator(state, cfg: SyntheticConfig):
    """The generator the classifier samples: its EMA when it has one and ``sample_from_ema``."""
    return state.ema.module if cfg.sample_from_ema and state.ema is not None else state.gan.generator


def train_on_generators(cfg: SyntheticConfig, ctx, device, data, root, generators, gan_stages, real_st, real_net,
                        stages, weights=None, figure_extra: dict | None = None) -> None:
    """A fresh classifier trained on ``generators``' images only (drawn through the filter when ``filtering``),
    reporting the filter's counts, the generators' size, FIDs and diversity, and the stages' counts; then the
    trial's figure data (:func:`figure_data`, and ``figure_extra``: a method's own)."""
    source = GeneratedBatches(generators, data.num_classes, weights=weights, truncation=cfg.truncation,
                              filter_net=real_net if cfg.filtering else None, threshold=cfg.threshold,
                              crop_padding=cfg.crop_padding, flip=cfg.flip,
                              refill_same_label=cfg.refill_same_label, max_draws=cfg.max_draws)
    make_batches, epoch_metrics, constant, set_stages = make_epochs(
        cfg, source, data, device, root, [st.ref for st in gan_stages], real_st)
    cas, cas_stages = cas_metrics(cfg, data, device, root, generators, gan_stages, real_st)  # each GAN's CAS
    extra = {**stage_counts(stages + gan_stages + set_stages + cas_stages), **size_metrics(generators, data),
             **constant, **generator_metrics(source, cfg, real_net, data, ctx.inception_weights), **cas}
    fit_classifier(cfg, data, device, TuneCheckpointer(extra), make_batches, epoch_metrics)
    save_figure_data(ctx, {**figure_data(cfg, data, generators[0], real_net), **(figure_extra or {})})


@torch.no_grad()
def figure_data(cfg: SyntheticConfig, data, generator, real_net) -> dict:
    """The sample grid with the filter's verdicts (Pham Figs. 3-4, 8-9) and real vs generated features (Slim
    Fig. 1) of ``generator`` (see the module docstring); ``real_net``: the real-data classifier, in eval mode."""
    device, K = data.train_y.device, data.num_classes
    plain = GeneratedBatches([generator], K, truncation=cfg.truncation)  # unfiltered, untransformed
    labels = torch.arange(min(K, GRID_CLASSES), device=device).repeat(GRID_PER_CLASS)  # a column per class
    grid, _ = plain.batch(len(labels), measurement_rng(cfg.seed, 0, "figure_grid"), device, transform=False,
                          labels=labels)
    probs = F.softmax(real_net(grid), 1)
    # Slim Fig. 1: real test images of the first classes (class balanced) and generated ones of the same labels
    rng = measurement_rng(cfg.seed, 0, "figure_tsne")
    among = torch.nonzero(data.test_y < TSNE_CLASSES).flatten()
    real = among[balanced_sample(data.test_y[among], min(len(among), TSNE_PER_CLASS * min(K, TSNE_CLASSES)), rng)]
    fake, fake_y = plain.batch(len(real), rng, device, transform=False, labels=data.test_y[real])

    def features(x):
        return torch.cat([real_net.features(x[i:i + 500]) for i in range(0, len(x), 500)]).cpu()

    return {"grid": to_uint8(grid).cpu(), "grid_labels": labels.cpu(),
            "grid_verdicts": filter_verdicts(probs, labels, cfg.threshold).cpu(),
            "verdict_codes": {"accepted": ACCEPTED, "wrong_label": WRONG_LABEL, "low_prob": LOW_PROB},
            "threshold": cfg.threshold, "filtering": cfg.filtering, "truncation": cfg.truncation,
            "features": {"real": features(to_float(data.test_x[real])), "generated": features(fake)},
            "labels": {"real": data.test_y[real].cpu(), "generated": fake_y.cpu()}}


def save_figure_data(ctx, payload: dict) -> None:
    """``payload`` into the trial's artifacts folder (``<out>/artifacts/<identity>``: the report finds it by the
    results row's identity); nothing when the trial has no such folder (a trainable called outside a run)."""
    if ctx.artifacts:
        atomic_write(Path(ctx.artifacts) / FIGURE_FILE, lambda f: torch.save(payload, f))


@register_method(SyntheticConfig)
def filtered_sampling(params: dict) -> None:
    cfg, ctx, device = setup(params, SyntheticConfig)
    data = cell_data(ctx.data_file, cfg, device, ctx.data_fingerprint)
    root = stage_root(ctx)
    # ---- stage 1: the classifier trained on the real subset (the baseline): the filter ----
    real_st, real_net, fid_net = real_stages(cfg, data, device, root)
    # ---- stage 2: the GAN ----
    gan_st, gan, _ = gan_stage(cfg.gan_config(), cfg.seed, data, device, root, fid_net)
    # ---- (stage 3, a fixed set,) then the classifier on generated images only ----
    train_on_generators(cfg, ctx, device, data, root, [sampled_generator(gan, cfg)], [gan_st], real_st, real_net,
                        [real_st] + ([fid_net[0]] if fid_net else []))


def make_epochs(cfg: SyntheticConfig, source: GeneratedBatches, data, device, root, gan_keys, filter_st):
    """The classifier's epochs of generated images: ``(make_batches(rng), epoch_metrics, constant metrics,
    stages)``. On the fly: ``source`` draws every batch, and its counts are reported per epoch. Fixed: one
    set (a cached stage keyed by the GANs and the filter) iterated over in shuffled passes, its counts
    reported once."""
    steps = epoch_steps(cfg, len(data.train_y))
    if cfg.source == "on_the_fly":
        def make_batches(rng):
            source.counts = FilterCounts.zeros(data.num_classes)  # this epoch's draws
            return source.epoch(steps, cfg.batch_size, rng, device)

        return make_batches, lambda: source.counts.metrics(), {}, []
    inputs = tuple(gan_keys) + ((filter_st.ref,) if cfg.filtering else ())
    set_st, x, y, counts = fixed_set_stage(cfg, source, data, device, root, inputs)

    def make_batches(rng):  # ``steps`` batches: shuffled passes over the set, as many as needed
        passes = (batches(x, y, cfg.batch_size, rng, cfg.crop_padding, cfg.flip) for _ in itertools.count())
        return itertools.islice(itertools.chain.from_iterable(passes), steps)

    return make_batches, None, counts.metrics(), [set_st]
