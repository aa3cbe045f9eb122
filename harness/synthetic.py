"""Classifier training data drawn from generators only (Pham et al. 2019, Slim 2020).

A classifier learns from generated images alone and is tested on real ones. The pieces here are shared by
``trainables/filtered_sampling.py`` and ``trainables/multi_gan.py``:

- :func:`filter_verdicts`: Pham's Algorithm 1 rule. A generated image conditioned on label y is kept only
  if a classifier pre-trained on the real data predicts y (argmax) with probability p[y] >= threshold.
  Rejections are split into "wrong label" (argmax != y) and "low probability" (argmax == y, p[y] below the
  threshold), per class, as Pham's Figs. 6-7 count them.
- :class:`GeneratedBatches`: batches of a fixed size made on the fly: per batch one generator is drawn (uniformly
  or with given weights: Slim's weighted GANs), labels are drawn uniformly over the classes, latents from
  N(0, 1) or truncated to [-psi, psi], then flip and crop (the classifier config's transforms), then the filter;
  rejected slots are drawn again (same label, new latent) until the batch is full.
- :func:`sample_weights`: Slim's Algorithm 1: each real image's mean feature distance to the previous
  generators' images of its class, min-max normalised within the class, transformed (methods A, B, C), to be
  used as sampling probabilities for the next GAN's training set.
- :func:`generator_metrics`: the generators' FIDs and intra-class MS-SSIM diversity (:func:`diversity_metrics`,
  Slim's Tables 2 and 4), each beside the same FID of real training images.

Choices the papers leave open, stated here and as fields of :class:`SyntheticConfig`:
- Threshold comparison: ``p[y] >= threshold`` (Slim's "C_{:,y}(x) >= rho_t"; Pham writes ``>``; the two
  differ only on a set of measure zero).
- Transforms before the filter on the fly (the filter judges the image the classifier will see); a fixed set
  is filtered untransformed when it is generated, and the classifier's flip and crop apply per epoch, as to
  real data.
- A rejected slot keeps its label and draws a new latent (``refill_same_label``): the batch stays class
  balanced, and Pham's Fig. 7 reads so ("for the majority of categories we need to sample repeatedly to get
  images of the correct category"). False draws a new uniform label instead (Algorithm 1 read literally,
  which lets the classes the generator draws well take over the batches).
- A slot still rejected after ``max_draws`` draws is filled with its best-scoring draw (the highest p[y])
  and counted as ``forced``: a generator the filter never accepts (at smoke budgets, or a collapsed class)
  still yields a batch instead of looping forever, and the report shows how often that happened.
- Sampling mode: generators sample in eval mode (BatchNorm running statistics), from their EMA weights when
  they have one (``sample_from_ema``), as BigGAN samples.
- A fixed set is stored as uint8 pixels, as real data is (on-the-fly images stay float: the two sources also
  differ by that quantisation, at most half a grey level). Model selection is on the real validation split
  for both sources (Slim validates a fixed set "using 10k samples", which we read as generated ones; ours is
  the real-data yardstick every method shares).
- Slim's Algorithm 1 is garbled in the extracted text. Read here: the distance is Euclidean between feature
  vectors; d_min and d_max are over the real images of the class (the text's "min over D_G,k" cannot be, as
  d is defined on real images); mu_k and sigma_k are the mean and population standard deviation of the
  normalised weights of the class.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness import metrics as M
from harness.config import check
from harness.data import augment, to_uint8
from harness.fidelity import (REPORT_NAMES, balanced_sample, classifier_fid, inception_metrics, inception_weights,
                              measurement_rng)
from harness.gan_train import GANConfig
from harness.gans import GANS, sample_z
from harness.train import ClassifierConfig

SOURCES = ("on_the_fly", "fixed")

# MS-SSIM at 28-32 px (see :func:`intra_class_ms_ssim` for why): Wang, Simoncelli, Bovik 2003's per-scale weights,
# finest first (torchmetrics' default betas), of which 3 scales fit 28-32 px images
WANG_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_BETAS = tuple(b / sum(WANG_BETAS[:3]) for b in WANG_BETAS[:3])  # (0.0711, 0.4530, 0.4760): sum 1
MS_SSIM_SIGMA = 1.5 * 7 / 11  # px: Wang's 11-px window (sigma 1.5) shrunk to 7 px, the most 28 px at 3 scales allow
MS_SSIM_NORMALIZE = "relu"  # negative contrast-structure terms count as 0 (TensorFlow's and torchmetrics' way)
MS_SSIM_PAIRS = 200  # pairs per class (Slim Sec. 4.3)


@dataclass(frozen=True)
class SyntheticConfig(ClassifierConfig):
    """The classifier config (trained on generated images only), the GAN, and how images are drawn from it."""

    gan: GANConfig = GANConfig()  # each GAN pre-trained on the cell's real subset
    # Pham Sec. III-B / IV-D: "concat" trains the GANs with his concatenation residual block in G and D instead
    # of the usual addition: the profile's BigGAN-style arch is swapped for its twin (biggan -> biggan_concat,
    # biggan_tiny -> biggan_tiny_concat; :meth:`gan_config`). A cell field rather than a profile's GAN, so one
    # table holds both blocks at the same budget.
    gan_block: str = "add"
    # "on_the_fly": new images every batch (Slim's on-the-fly generation; Pham's Sec. IV-B); "fixed": one
    # set generated once (a cached stage) and iterated over like a real dataset.
    source: str = "on_the_fly"
    fixed_images: int = 0  # size of the fixed set (0: as many as the real training subset; Slim: 50k)
    filtering: bool = True  # Pham's Algorithm 1 filter with the baseline's classifier (Slim Table 1's column)
    threshold: float = 0.9  # filter probability threshold (Slim: rho_t = 0.9; Pham's Fig. 5 varies it)
    truncation: float = 0.0  # latent truncation psi: z in [-psi, psi] (0: plain N(0, 1); Slim: 1.5)
    refill_same_label: bool = True  # a rejected slot keeps its label (see the module docstring)
    max_draws: int = 50  # draws per slot before its best draw is used anyway (counted as forced)
    sample_from_ema: bool = True  # sample the generators' EMA weights (BigGAN's practice)
    # The classifier trained on real data (the filter, the GAN's early-stopping FID net, Slim's baseline) has
    # its own augmentation: the cells' transforms switch is about the generated images only, and one real
    # classifier and one GAN per seed serve every cell (Slim: the filter "trained using data augmentation").
    real_crop_padding: int = 4
    real_flip: bool = True
    # Generated images for the generators' FID in the real classifier's features (and 2,000, if Inception
    # weights are given, for Inception FID / IS / KID against 2,000 test images: fewer than the usual 10k/50k,
    # so FID reads higher and IS lower than the papers'; compare ours with ours)
    metric_images: int = 1000
    # Intra-class diversity (Slim Sec. 4.3, Tables 2 and 4; :func:`intra_class_ms_ssim`). Slim names neither an
    # implementation nor its settings; torchmetrics' defaults (5 scales, 11-px window) need >= 161-px images.
    ms_ssim_pairs: int = MS_SSIM_PAIRS  # random same-class pairs per class (fewer under max_eval_images)
    ms_ssim_betas: tuple[float, ...] = MS_SSIM_BETAS  # per-scale exponents, finest first; one scale each
    ms_ssim_sigma: float = MS_SSIM_SIGMA  # px, the Gaussian window's standard deviation (it sets the window's size)
    ms_ssim_normalize: str = MS_SSIM_NORMALIZE  # "relu" (negative terms -> 0) or "simple" ((x + 1) / 2)

    def __post_init__(self):
        super().__post_init__()
        check(self.source in SOURCES, f"source {self.source!r} is not one of {SOURCES}")
        check(self.fixed_images >= 0, f"fixed_images {self.fixed_images} is negative")
        check(0 <= self.threshold < 1, f"threshold {self.threshold} is outside [0, 1)")
        check(self.truncation >= 0, f"truncation {self.truncation} is negative")
        check(self.max_draws >= 1, f"max_draws {self.max_draws} must be at least 1")
        check(self.real_crop_padding >= 0, f"real_crop_padding {self.real_crop_padding} is negative")
        check(self.metric_images >= 2, f"metric_images {self.metric_images} must be at least 2")
        check(self.gan_block in ("add", "concat"), f"gan_block {self.gan_block!r} is not 'add' or 'concat'")
        check(self.gan_block == "add" or f"{self.gan.arch}_concat" in GANS,
              f"gan_block 'concat': the GAN {self.gan.arch!r} has no concat twin (the BigGAN-style ones have)")
        check(self.ms_ssim_pairs >= 1, f"ms_ssim_pairs {self.ms_ssim_pairs} must be at least 1")
        check(len(self.ms_ssim_betas) >= 1 and min(self.ms_ssim_betas) > 0,
              f"ms_ssim_betas {self.ms_ssim_betas} must be one or more positive numbers")
        check(self.ms_ssim_sigma > 0, f"ms_ssim_sigma {self.ms_ssim_sigma} must be positive")
        check(self.ms_ssim_normalize in ("relu", "simple"),
              f"ms_ssim_normalize {self.ms_ssim_normalize!r} is not one of ('relu', 'simple')")

    def gan_config(self) -> GANConfig:
        """The GAN every generator of this cell trains with (:attr:`gan_block` applied)."""
        return self.gan if self.gan_block == "add" else dataclasses.replace(self.gan, arch=f"{self.gan.arch}_concat")

    def real_classifier(self) -> ClassifierConfig:
        """The classifier trained on the real subset: this config's, with the real data's augmentation."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(ClassifierConfig)}
        return ClassifierConfig(**{**fields, "crop_padding": self.real_crop_padding, "flip": self.real_flip})

    # NOTE: an epoch of generated images has the real subset's length (ClassifierConfig.epoch_scale, 1), so the
    # generator-trained classifier and its real-data counterpart take the same optimiser steps (Pham Sec. IV-B;
    # Slim Table 1: "400 batches per epoch ... to match the size of a 50k images dataset").


# ----------------------------------------------------------------------------------------------------------
# The filter (Pham 2019, Algorithm 1)

ACCEPTED, WRONG_LABEL, LOW_PROB = 0, 1, 2


def filter_verdicts(probs: torch.Tensor, labels: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per image: ACCEPTED when argmax(p) == y and p[y] >= threshold, WRONG_LABEL when argmax(p) != y,
    LOW_PROB when the label is right but its probability is below the threshold. ``probs``: (N, K) softmax."""
    wrong = probs.argmax(1) != labels
    low = ~wrong & (probs.gather(1, labels[:, None]).squeeze(1) < threshold)
    verdict = torch.full_like(labels, ACCEPTED)
    verdict[wrong] = WRONG_LABEL
    verdict[low] = LOW_PROB
    return verdict


@dataclass
class FilterCounts:
    """Per-class counts of generated images by verdict, forced fills, and the time spent generating."""

    accepted: list[int]
    wrong_label: list[int]
    low_prob: list[int]
    forced: list[int]
    seconds: float = 0.0  # generating and filtering, all draws

    @classmethod
    def zeros(cls, num_classes: int) -> "FilterCounts":
        return cls([0] * num_classes, [0] * num_classes, [0] * num_classes, [0] * num_classes)

    def add(self, labels: torch.Tensor, verdicts: torch.Tensor) -> None:
        for name, code in (("accepted", ACCEPTED), ("wrong_label", WRONG_LABEL), ("low_prob", LOW_PROB)):
            counts = torch.bincount(labels[verdicts == code].cpu(), minlength=len(self.accepted)).tolist()
            setattr(self, name, [a + b for a, b in zip(getattr(self, name), counts)])

    def merged(self, other: "FilterCounts") -> "FilterCounts":
        return FilterCounts(*([a + b for a, b in zip(getattr(self, f), getattr(other, f))]
                              for f in ("accepted", "wrong_label", "low_prob", "forced")),
                            seconds=self.seconds + other.seconds)

    @property
    def generated(self) -> int:
        return sum(self.accepted) + sum(self.wrong_label) + sum(self.low_prob)

    def metrics(self) -> dict:
        """Result columns, all additive (a run's totals are sums over its epochs): per-class lists, image counts,
        seconds spent generating, and the generation cost of the rejected images."""
        rejected = sum(self.wrong_label) + sum(self.low_prob)
        return {"filter_accepted": self.accepted, "filter_wrong_label": self.wrong_label,
                "filter_low_prob": self.low_prob, "filter_forced": self.forced,
                "generated_images": self.generated, "rejected_images": rejected,
                "generation_s": self.seconds,
                # the generation cost of the rejected images, at the mean cost per generated image
                "rejected_generation_s": self.seconds * rejected / self.generated if self.generated else 0.0}


# ----------------------------------------------------------------------------------------------------------
# Generated batches


@dataclass
class GeneratedBatches:
    """Draws batches of generated images, optionally filtered (see the module docstring)."""

    generators: Sequence[nn.Module]  # each G(z, y) -> [-1, 1] images, with a ``z_dim``
    num_classes: int
    weights: Sequence[float] | None = None  # per-generator probabilities (None: uniform)
    truncation: float = 0.0
    filter_net: nn.Module | None = None  # a classifier in eval mode; None: no filtering
    threshold: float = 0.0
    crop_padding: int = 0
    flip: bool = False
    refill_same_label: bool = True
    max_draws: int = 50

    def __post_init__(self):
        self.counts = FilterCounts.zeros(self.num_classes)
        if self.weights is not None:
            check(len(self.weights) == len(self.generators) and min(self.weights) >= 0 and sum(self.weights) > 0,
                  f"generator weights {tuple(self.weights)} do not fit {len(self.generators)} generators")

    def shares(self, n: int) -> list[int]:
        """``n`` images split over the generators in proportion to their weights (largest remainders)."""
        w = torch.tensor(self.weights if self.weights is not None else [1.0] * len(self.generators), dtype=torch.float64)
        exact = n * w / w.sum()
        out = exact.floor().long()
        out[torch.argsort(exact - out, descending=True)[:n - int(out.sum())]] += 1
        return out.tolist()

    def pick_generator(self, rng: torch.Generator) -> nn.Module:
        if len(self.generators) == 1:
            return self.generators[0]
        w = torch.tensor(self.weights if self.weights is not None else [1.0] * len(self.generators))
        return self.generators[int(torch.multinomial(w, 1, generator=rng))]

    @torch.no_grad()
    def _draw(self, G: nn.Module, labels: torch.Tensor, rng: torch.Generator, transform: bool) -> torch.Tensor:
        z = sample_z(len(labels), G.z_dim, rng, self.truncation or None).to(labels.device)
        x = G(z, labels)
        if transform and (self.crop_padding or self.flip):
            x = augment(x, self.crop_padding, self.flip, rng)
        return x

    @torch.no_grad()
    def batch(self, n: int, rng: torch.Generator, device: torch.device, transform: bool = True,
              labels: torch.Tensor | None = None, generator: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` images and their labels (uniform over the classes unless given) from one generator (drawn by
        the weights unless given)."""
        t0 = time.perf_counter()
        G = generator if generator is not None else self.pick_generator(rng)
        was_training = G.training
        G.eval()
        try:
            if labels is None:
                labels = torch.randint(0, self.num_classes, (n,), generator=rng).to(device)
            x = self._draw(G, labels, rng, transform)
            if self.filter_net is None:
                self.counts.add(labels, torch.full_like(labels, ACCEPTED))
                return x, labels
            best_x, best_p = x.clone(), torch.full((n,), -1.0, device=device)
            todo = torch.arange(n, device=device)  # slots still waiting for an accepted image; x: their draws
            for draw in range(self.max_draws):
                probs = F.softmax(self.filter_net(x), 1)
                y = labels[todo]
                verdict = filter_verdicts(probs, y, self.threshold)
                self.counts.add(y, verdict)
                p_y = probs.gather(1, y[:, None]).squeeze(1)
                keep = (verdict == ACCEPTED) | (p_y > best_p[todo])  # accepted, or the best draw so far
                best_x[todo[keep]], best_p[todo[keep]] = x[keep], p_y[keep]
                todo = todo[verdict != ACCEPTED]
                if len(todo) == 0 or draw == self.max_draws - 1:  # done, or out of draws: nothing more to judge
                    break
                if not self.refill_same_label:
                    labels[todo] = torch.randint(0, self.num_classes, (len(todo),), generator=rng).to(device)
                    best_p[todo] = -1.0  # a new label: earlier draws were for another class
                x = self._draw(G, labels[todo], rng, transform)
            if len(todo):  # still rejected after max_draws: the best draw, counted as forced
                forced = torch.bincount(labels[todo].cpu(), minlength=self.num_classes).tolist()
                self.counts.forced = [a + b for a, b in zip(self.counts.forced, forced)]
            return best_x, labels
        finally:
            G.train(was_training)
            self.counts.seconds += time.perf_counter() - t0

    def epoch(self, steps: int, batch_size: int, rng: torch.Generator,
              device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``steps`` batches made on the fly (a classifier epoch of generated images only)."""
        for _ in range(steps):
            yield self.batch(batch_size, rng, device)

    def fixed_set(self, n: int, rng: torch.Generator, device: torch.device,
                  chunk: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` images generated once, untransformed: each generator its share (:meth:`shares`, not a random
        draw per chunk, so every generator of a mixture is in it), class balanced (labels 0..K-1 repeated)."""
        labels = (torch.arange(n) % self.num_classes).to(device)
        parts, start = [], 0
        for G, m in zip(self.generators, self.shares(n)):
            for i in range(start, start + m, chunk):
                parts.append(self.batch(min(chunk, start + m - i), rng, device, transform=False,
                                        labels=labels[i:min(i + chunk, start + m)].clone(), generator=G))
            start += m
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


# ----------------------------------------------------------------------------------------------------------
# Intra-class diversity: MS-SSIM of same-class pairs (Slim 2020, Sec. 4.3, Tables 2 and 4)


def ms_ssim(a: torch.Tensor, b: torch.Tensor, betas: Sequence[float] = MS_SSIM_BETAS, sigma: float = MS_SSIM_SIGMA,
            normalize: str = MS_SSIM_NORMALIZE) -> torch.Tensor:
    """MS-SSIM of each pair (a[i], b[i]) of uint8 (N, C, H, W) images: (N,), 1 for identical images. torchmetrics'
    ``multiscale_structural_similarity_index_measure`` on pixels / 255 with ``data_range`` 1 (fixed: left None,
    torchmetrics estimates it from each batch's extremes), one scale per beta; settings: :func:`intra_class_ms_ssim`.

    NOTE: torchmetrics sizes its Gaussian window from sigma alone, ``int(3.5 sigma + 0.5) * 2 + 1`` px, and reads
    ``kernel_size`` only in its image-size check; so we pass the size sigma gives (7 px at our 0.95). Sigma 1.5
    with ``kernel_size=7`` passes that check and silently filters with 11 px, mostly reflected padding at 8 px."""
    # NOTE: imported here, not at the top: torchmetrics' image package imports torchvision and torch._dynamo,
    # ~3.5 s of every CLI process and Ray worker that imports the trainables (python -X importtime, 2026-12-02)
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    window = int(3.5 * sigma + 0.5) * 2 + 1
    return multiscale_structural_similarity_index_measure(
        a.float() / 255, b.float() / 255, gaussian_kernel=True, sigma=sigma, kernel_size=window, betas=tuple(betas),
        data_range=1.0, reduction="none", normalize=normalize)


def ms_ssim_pairs(pairs: int, max_eval_images: int, num_classes: int) -> int:
    """Pairs per class to measure: ``pairs``, or fewer under a budget profile's cap on evaluation images
    (``max_eval_images``, 2 images a pair, at least one pair per class): the smoke profile's 64 give 3."""
    return min(pairs, max(1, max_eval_images // (2 * num_classes))) if max_eval_images else pairs


def intra_class_ms_ssim(x: torch.Tensor, y: torch.Tensor, num_classes: int, pairs: int, rng: torch.Generator,
                        **settings) -> torch.Tensor:
    """Per class, the mean MS-SSIM of ``pairs`` random pairs of its images (uint8 ``x``, labels ``y``): (K,), NaN
    for a class with fewer than 2 images. ``settings``: :func:`ms_ssim`'s betas, sigma, normalize.

    Pairs, as Slim counts them ("200 image pairs from each class ... 4000 images per image source, 200 pairs per
    class": 10 x 200 x 2): disjoint, 2 x ``pairs`` distinct images per class drawn with ``rng`` (a measurement
    stream of its own, :func:`harness.fidelity.measurement_rng`) and paired in the order drawn; a class with
    fewer images gives as many pairs as it can. Pairs never cross classes.

    Settings for 28-32 px (Slim names no implementation nor settings; each is a :class:`SyntheticConfig` field):
    - Scales: 3 (32/16/8 px, 28/14/7 px), not torchmetrics' default 5 with an 11-px window, which needs 161-px
      images (its check: side // (scales - 1)^2 > window - 1). At 3 scales the largest window 28 px allows is
      7 px (28 // 4 > 6); 4 scales would leave 3 px (28 // 9 > 2): local statistics over 9 pixels.
    - Window: a Gaussian of sigma 1.5 x 7 / 11 = 0.95 px, 7 px wide: Wang et al.'s 11-px, sigma-1.5 window
      shrunk whole, the rule of the reference MS-SSIM code in tensorflow/models (``size = min(11, side)``,
      ``sigma = size * 1.5 / 11``), not cut to 7 px at sigma 1.5 (truncated at 2 sigma).
    - Betas: Wang et al.'s first three weights (0.0448, 0.2856, 0.3001), rescaled to sum to 1 as their five do
      (0.0711, 0.4530, 0.4760): the scales keep their relative weight, and the score a weighted geometric mean.
    - Negative terms (unrelated images often correlate negatively at some scale): "relu" counts them as 0, so the
      pair scores 0 (torchmetrics' default, as TensorFlow's ``tf.image.ssim_multiscale``); "simple" maps every
      term to (x + 1) / 2 (pytorch-msssim's ``normalize``). Left as they are, a negative term to a fractional
      power is NaN.
    Colour: the SSIM maps are averaged over channels (RGB jointly); grey images as they are.

    Levels are not comparable with Slim's: on 4,000 CIFAR-10 training images (400 per class) these settings read
    8.5 +- 1.3 (x100, mean +- std over classes; 39% of pairs score 0), "simple" 53.7 +- 0.8; his CIFAR-10 row is
    40.5 +- 0.8. Compare rows measured alike: the ordering (real < GAN < truncated GAN) is his finding."""
    y = y.cpu()
    means = []
    for k in range(num_classes):
        at = torch.nonzero(y == k).flatten()
        m = min(pairs, len(at) // 2)
        if m == 0:
            means.append(torch.tensor(float("nan")))
            continue
        at = at[torch.randperm(len(at), generator=rng)[:2 * m]].to(x.device)
        means.append(ms_ssim(x[at[:m]], x[at[m:]], **settings).mean().cpu())
    return torch.stack(means)


def diversity_metrics(x: torch.Tensor, y: torch.Tensor, num_classes: int, pairs: int, rng: torch.Generator,
                      **settings) -> dict:
    """Slim's "MS-SSIM (x100), mean and std" of uint8 images ``x`` (:func:`intra_class_ms_ssim`): the per-class
    means x 100, and their mean and standard deviation over the classes (classes weigh equally).

    Slim does not say over what his std runs; over classes fits his numbers: on the 4,000 CIFAR-10 images above,
    the std over the 10 class means is 1.3 (x100) and over the 2,000 pairs 9.6, against his 0.8 for CIFAR-10; and
    his std growing with truncation (1.6, 2.6, 5.8) fits classes losing diversity unevenly. Population std
    (numpy's default), over the classes that have a pair."""
    per_class = 100 * intra_class_ms_ssim(x, y, num_classes, pairs, rng, **settings).double()
    measured = per_class[~per_class.isnan()]
    return {M.MS_SSIM_MEAN: measured.mean().item(), M.MS_SSIM_STD: measured.std(unbiased=False).item(),
            M.MS_SSIM_PER_CLASS: per_class.tolist()}


def real_diversity(cfg: ClassifierConfig, data) -> dict:
    """:func:`diversity_metrics` of the real training subset (the baseline's: Slim's Table 2 real-data row), with
    :class:`SyntheticConfig`'s default settings: a generator-only method measures its generators with those."""
    pairs = ms_ssim_pairs(MS_SSIM_PAIRS, cfg.max_eval_images, data.num_classes)
    return diversity_metrics(data.train_x, data.train_y, data.num_classes, pairs,
                             measurement_rng(cfg.seed, 0, "ms_ssim"))


# ----------------------------------------------------------------------------------------------------------
# The generators' metrics


def generator_metrics(source: GeneratedBatches, cfg: SyntheticConfig, feature_net: nn.Module, data,
                      weights_path: str | None) -> dict:
    """Quality and diversity of ``source``'s generators, sampled as the classifier samples them (the mixture's
    shares, the truncation) but unfiltered and untransformed, from streams of their own:
    - FID in ``feature_net``'s features against the validation split (``metric_images`` images);
    - intra-class MS-SSIM (:func:`diversity_metrics`, ``ms_ssim_pairs`` pairs per class, class balanced);
    - Inception FID / IS / KID against a class-balanced 2,000-image test sample when Inception weights are found
      (missing, with the reason, otherwise).
    Each FID also of real training images in the generated ones' place, same counts and references (Slim's
    Table 2 real-data row; the real subset's MS-SSIM is the baseline's, :func:`real_diversity`)."""
    plain = GeneratedBatches(source.generators, source.num_classes, weights=source.weights, truncation=source.truncation)
    device, n, classes = data.train_y.device, cfg.metric_images, data.num_classes
    x, _ = plain.fixed_set(n, measurement_rng(cfg.seed, 0, "generator_fid"), device)
    real = data.train_x[balanced_sample(data.train_y, min(n, len(data.train_y)),
                                        measurement_rng(cfg.seed, 0, "real_fid"))]
    out = {M.FID_CLASSIFIER: classifier_fid(feature_net, data.val_x, to_uint8(x)),
           M.REAL_FID_CLASSIFIER: classifier_fid(feature_net, data.val_x, real)}
    # Diversity: 2 x pairs images per class (fixed_set's labels cycle through the classes), then paired at random
    # within each class, so the pairs of a mixture also cross its generators
    pairs = ms_ssim_pairs(cfg.ms_ssim_pairs, cfg.max_eval_images, classes)
    rng = measurement_rng(cfg.seed, 0, "generator_ms_ssim")
    x, y = plain.fixed_set(2 * pairs * classes, rng, device)
    out.update(diversity_metrics(to_uint8(x), y, classes, pairs, rng, betas=cfg.ms_ssim_betas,
                                 sigma=cfg.ms_ssim_sigma, normalize=cfg.ms_ssim_normalize))
    weights = inception_weights(weights_path)
    if weights is None:
        m, out[M.REAL_FID_INCEPTION] = inception_metrics(None, None, None), None
    else:
        k = min(len(data.test_y), 2000)
        test = data.test_x[balanced_sample(data.test_y, k, torch.Generator().manual_seed(0))]
        fake, _ = plain.fixed_set(k, measurement_rng(cfg.seed, 0, "generator_inception"), device)
        m = inception_metrics(test, to_uint8(fake), weights)
        real = data.train_x[balanced_sample(data.train_y, min(k, len(data.train_y)),
                                            measurement_rng(cfg.seed, 0, "real_inception"))]
        out[M.REAL_FID_INCEPTION] = inception_metrics(test, real, weights)["fid"]
    return {**out, **{REPORT_NAMES[name]: v for name, v in m.items()}}


# ----------------------------------------------------------------------------------------------------------
# Slim 2020, Algorithm 1: sample weights for the next GAN of a conditioned chain

WEIGHTINGS = ("A_mu", "A_sigma", "B", "C")


def transform_weights(w: torch.Tensor, method: str) -> torch.Tensor:
    """Slim's weight transforms of one class's normalised weights ``w`` (in [0, 1]), with mu, sigma their
    mean and standard deviation: A_mu zeroes weights below mu, A_sigma below mu + sigma, B is the sigmoid
    1 / (1 + exp(-2 (w - mu) / sigma)), C the identity."""
    mu, sigma = w.mean(), w.std(unbiased=False)
    if method == "A_mu":
        return torch.where(w < mu, torch.zeros_like(w), w)
    if method == "A_sigma":
        return torch.where(w < mu + sigma, torch.zeros_like(w), w)
    if method == "B":
        return torch.sigmoid(2 * (w - mu) / sigma) if sigma > 0 else torch.full_like(w, 0.5)
    if method == "C":
        return w
    raise ValueError(f"weighting {method!r} is not one of {WEIGHTINGS}")


def sample_weights(real_features: torch.Tensor, real_labels: torch.Tensor, fake_features: torch.Tensor,
                   fake_labels: torch.Tensor, method: str) -> torch.Tensor:
    """Slim's Algorithm 1: per real image, the mean Euclidean distance of its features to the generated images'
    features of its class; min-max normalised within the class (so every class spans [0, 1]: class balance);
    then :func:`transform_weights`. A class whose distances are all equal gets weight 1 everywhere."""
    w = torch.zeros(len(real_labels), dtype=torch.float64)
    for k in real_labels.unique().tolist():
        r_at = torch.nonzero(real_labels == k).flatten()
        g = fake_features[fake_labels == k].double()
        check(len(g) > 0, f"no generated image of class {k} to weigh real images against")
        d = torch.cat([torch.cdist(real_features[r_at[i:i + 1024]].double(), g).mean(1)
                       for i in range(0, len(r_at), 1024)])
        span = d.max() - d.min()
        wk = (d - d.min()) / span if span > 0 else torch.ones_like(d)
        w[r_at.cpu()] = transform_weights(wk, method).cpu()
    return w


def sampling_probabilities(weights: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image probabilities for drawing a GAN's training batches: within each class proportional to the
    weights, and each class keeping its share of the real set (Slim: "apply them as sampling probabilities
    rather than loss weights"; normalising per class keeps the class balance, as his per-class
    normalisation intends). A class whose weights are all 0 is drawn uniformly."""
    labels = labels.cpu()
    p = torch.zeros(len(labels), dtype=torch.float64)
    for k in labels.unique().tolist():
        at = labels == k
        wk = weights[at].double()
        wk = wk / wk.sum() if wk.sum() > 0 else torch.full_like(wk, 1.0 / len(wk))
        p[at] = wk * at.sum() / len(labels)
    return p
