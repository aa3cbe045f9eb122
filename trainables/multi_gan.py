"""multi_gan: a classifier trained on images of several GANs only (Pham, Dutt, Pellerin, Quénot 2019, Sec. III-C
and Table I; Slim 2020, Sec. 5 and Table 3).

Stage 1: the classifier trained on the real subset (the ``baseline`` cell's stage): the filter, and the
feature space of Slim's sample weights. Stages 2..N+1: ``gans`` conditional GANs, each a cached stage.
- ``conditioning = "none"`` (Pham; Slim's baseline): independent GANs from different seeds. GAN k of the cell
  with seed s is trained with seed ``gan_seed(s, k)``, and GAN 0 is the single-GAN methods' GAN, so a grid
  over N = 1, 2, 4, 6 trains 6 GANs per seed, not 13, and ``filtered_sampling`` shares GAN 0.
- ``conditioning`` in ("A_mu", "A_sigma", "B", "C") (Slim's conditioned GANs): GAN 0 as above; GAN k >= 1 is
  trained on the real subset drawn with probabilities from Slim's Algorithm 1 (harness.synthetic.
  sample_weights): each real image's mean feature distance to GANs 0..k-1's images of its class, normalised
  within the class, transformed by the method. The chain is cached stage by stage, the weights for GAN k a stage
  of their own (``slim_weights``, its inputs the filter and GANs 0..k-1) before GAN k's: a |G| = 3 cell reuses
  its |G| = 2 sibling's GANs and weights, and the figure of the weights reads them without computing them again.
Then a fresh classifier of the cell's config trains on generated images only (harness.synthetic.
GeneratedBatches: one GAN drawn per batch, uniformly or with ``gan_weights``, Slim's (3/4, 1/4); Pham's filter;
on the fly or a fixed set) for as many optimiser steps as its real-data counterpart, selected on the real
validation split and tested on the real test set.

Reported besides the classifier's metrics: the filter's per-class counts and generation cost, the generators'
total size in MB beside the real subset's (Pham Table I's "Size (MB)"), the classifier-feature FID of the
mixture (N GANs sampled as the classifier samples them, unfiltered) against the validation split, the
Inception FID / IS / KID of the mixture when Inception weights are given (missing with the reason otherwise),
and the mixture's intra-class MS-SSIM (Slim Table 4: "combined image diversity"; pairs drawn within a class
across the GANs, each supplying its share of the images).

Choices the papers leave open:
- GAN seeds ``gan_seed(s, k) = s + 1000 k``: distinct for any 1,000 cell seeds, and GAN 0 is the cell's seed.
- Slim computes weights "using 50k synthetic and real samples": ``weight_images`` generated images in all
  (0: as many as the real subset), split evenly over the previous GANs, class balanced, unfiltered (the
  weights describe what the previous GANs cover), in the features of the stage-1 classifier (his are the
  pre-trained ResNet's averaged last feature maps), from a stream of their own.
- Weighted GANs with more GANs than weights are refused (a config error), not padded.
- Early stopping of a conditioned GAN (the converge profile) measures its FID against the *unweighted*
  validation split, as every GAN's: the reweighted target it trains for is not what the classifier is tested
  on. Slim saw conditioned GANs collapse earlier ("around 70% earlier" for method A); early stopping keeps
  the best epoch before such a collapse. The paper profile has no early stopping (BigGAN-PyTorch's script keeps
  best-FID copies we do not): there a GAN is its last epoch's, collapsed or not.
- GAN k >= 1 starts from a fresh initialisation (its own seed), not from GAN k-1's weights: Slim does not say,
  and fresh GANs keep the chain's members as independent as the unconditioned baseline's.

Figure data: filtered_sampling's (the first GAN's sample grid with the filter's verdicts, real vs generated
features), and for a conditioned chain Slim's Fig. 2: the weights GAN 1 (the second) trained with, for the real
training images of one class (``WEIGHTS_CLASS``: CIFAR-10's "ship", Slim's; at most ``WEIGHTS_IMAGES`` of them),
the method's and the normalised ones before the transform (method C), with their features and those of some of
GAN 0's images of the class (unfiltered, untruncated: what the weights were computed against), from measurement
streams of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from harness.config import check
from harness.data import to_float
from harness.fidelity import measurement_rng
from harness.gan_train import gan_stage
from harness.stages import Stage, stage
from harness.storage import atomic_write
from harness.synthetic import WEIGHTINGS, GeneratedBatches, SyntheticConfig, sample_weights, sampling_probabilities
from harness.train import cell_data
from harness.trial import setup, stage_root
from trainables import register_method
from trainables.filtered_sampling import real_stages, sampled_generator, train_on_generators

CONDITIONINGS = ("none",) + WEIGHTINGS
WEIGHTS_FILE = "weights.pt"
WEIGHTS_CLASS = 8  # Slim Fig. 2's class, CIFAR-10's "ship" (class 0 for a dataset of fewer classes)
WEIGHTS_IMAGES = 500  # real images of that class in the figure at most (t-SNE cost)


@dataclass(frozen=True)
class MultiGanConfig(SyntheticConfig):
    """Generator-only training from several GANs (see the module docstring)."""

    gans: int = 1  # |G|, the number of GANs (Pham: 1, 2, 4, 6; Slim: 1, 2, 3)
    gan_weights: tuple[float, ...] = ()  # per-GAN probability of supplying a batch (empty: uniform)
    conditioning: str = "none"  # "none" (independent GANs) or a Slim weighting: A_mu, A_sigma, B, C
    weight_images: int = 0  # generated images for Slim's weights (0: as many as the real subset; Slim: 50k)

    def __post_init__(self):
        super().__post_init__()
        check(self.gans >= 1, f"gans {self.gans} must be at least 1")
        check(not self.gan_weights or (len(self.gan_weights) == self.gans and min(self.gan_weights) >= 0
                                       and sum(self.gan_weights) > 0),
              f"gan_weights {self.gan_weights} must be {self.gans} non-negative numbers, not all 0")
        check(self.conditioning in CONDITIONINGS, f"conditioning {self.conditioning!r} is not one of {CONDITIONINGS}")
        check(self.weight_images >= 0, f"weight_images {self.weight_images} is negative")


def gan_seed(seed: int, k: int) -> int:
    return seed + 1000 * k


def weights_stage(cfg: MultiGanConfig, previous, previous_stages, feature_net, filter_st, data, k: int, root) -> Stage:
    """The sample weights of the real subset for GAN k of a conditioned chain (Slim's Algorithm 1; a cached stage
    keyed by the filter's stage and GANs 0..k-1's): the previous GANs' images (``weight_images`` in all, an even
    share each, class balanced, unfiltered, untransformed and untruncated: what the GANs cover) against the real
    subset, in ``feature_net``'s features. Stores the method's weights and the normalised ones (method C)."""

    @torch.no_grad()
    def compute(artifact: Path, work: Path) -> None:
        n = cfg.weight_images or len(data.train_y)
        x, y = GeneratedBatches(previous, data.num_classes).fixed_set(
            n, measurement_rng(cfg.seed, k, "slim_weights"), data.train_y.device)
        fake = torch.cat([feature_net.features(x[i:i + 500]) for i in range(0, len(x), 500)])
        real = torch.cat([feature_net.features(to_float(data.train_x[i:i + 500]))
                          for i in range(0, len(data.train_y), 500)])
        weights = {"weights": sample_weights(real, data.train_y, fake, y, cfg.conditioning),
                   "normalised": sample_weights(real, data.train_y, fake, y, "C")}
        atomic_write(artifact / WEIGHTS_FILE, lambda f: torch.save(weights, f))

    key = {"seed": cfg.seed, "k": k, "conditioning": cfg.conditioning, "weight_images": cfg.weight_images,
           "sample_from_ema": cfg.sample_from_ema}
    return stage(root, "slim_weights", key, (filter_st.ref, *(st.ref for st in previous_stages)), compute)


def load_weights(st: Stage) -> dict:
    return torch.load(st.path(WEIGHTS_FILE), weights_only=False)


@torch.no_grad()
def weights_figure_data(cfg: MultiGanConfig, st: Stage, generator, feature_net, data) -> dict:
    """Slim Fig. 2's data (see the module docstring): GAN 1's weights (stage ``st``) for one class's real images."""
    c = WEIGHTS_CLASS if data.num_classes > WEIGHTS_CLASS else 0
    rng = measurement_rng(cfg.seed, 1, "figure_weights")
    at = torch.nonzero(data.train_y == c).flatten().cpu()
    at = at[torch.randperm(len(at), generator=rng)[:WEIGHTS_IMAGES]].sort().values
    labels = torch.full((min(len(at), 256),), c, device=data.train_y.device)
    fake, _ = GeneratedBatches([generator], data.num_classes).batch(len(labels), rng, labels.device, transform=False,
                                                                    labels=labels)
    w = load_weights(st)
    return {"weights": {"class": c, "method": cfg.conditioning, "weights": w["weights"][at],
                        "normalised": w["normalised"][at],
                        "real": feature_net.features(to_float(data.train_x[at.to(data.train_x.device)])).cpu(),
                        "generated": feature_net.features(fake).cpu()}}


@register_method(MultiGanConfig)
def multi_gan(params: dict) -> None:
    cfg, ctx, device = setup(params, MultiGanConfig)
    data = cell_data(ctx.data_file, cfg, device, ctx.data_fingerprint)
    root = stage_root(ctx)

    # ---- stage 1: the classifier trained on the real subset: the filter and the weights' feature space ----
    real_st, real_net, fid_net = real_stages(cfg, data, device, root)

    # ---- stages 2..N+1: the GANs, independent or a conditioned chain (each after its weights' stage) ----
    generators, gan_stages, weight_stages = [], [], []
    for k in range(cfg.gans):
        sampling = None
        if cfg.conditioning != "none" and k > 0:
            w_st = weights_stage(cfg, list(generators), list(gan_stages), real_net, real_st, data, k, root)
            weight_stages.append(w_st)
            sampling = (w_st.ref, lambda w_st=w_st: sampling_probabilities(load_weights(w_st)["weights"], data.train_y))
        st, state, _ = gan_stage(cfg.gan_config(), gan_seed(cfg.seed, k), data, device, root, fid_net, sampling)
        gan_stages.append(st)
        generators.append(sampled_generator(state, cfg))

    # ---- (a fixed set,) then the classifier on generated images only; Slim Fig. 2's weights as figure data ----
    extra = weights_figure_data(cfg, weight_stages[0], generators[0], real_net, data) if weight_stages else {}
    train_on_generators(cfg, ctx, device, data, root, generators, gan_stages, real_st, real_net,
                        [real_st] + ([fid_net[0]] if fid_net else []) + weight_stages,
                        weights=cfg.gan_weights or None, figure_extra=extra)
