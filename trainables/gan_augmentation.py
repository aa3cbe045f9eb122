"""gan_augmentation: a conditional GAN as a data-augmentation tool (the quickstart's augmentation row).

Pennisi 2021's Table 3 row "GAN augmentation" is not this trainable: it is his stage 3 without the distillation
term (``gan_distillation`` with ``dist_weight`` 0, search_spaces/pennisi2021.py), which is what his text describes.

A GAN is pre-trained on the cell's real training subset (a cached stage shared by every cell with the
same GAN config, subset and seed: the p_r cells of a table train one GAN). The classifier then trains
from scratch, as the baseline does, but on batches with a fraction p_r of real images and 1 - p_r
generated ones, each labelled with its conditioning class.

Choices the paper leaves open (config fields):
- ``sample_from_ema``: generated images come from the EMA of the generator (BigGAN's practice for
  sampling), not from the last iterate.
- Generated labels follow the real training labels' class frequencies; a classifier epoch has the
  baseline's number of steps, so methods compare at equal optimiser steps (harness.train.mixed_batches),
  and with early stopping both stop by the same rule within the same maximum: augmentation never
  trains beyond the baseline's budget, so it needs no compute-matched control.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.checkpoint import TuneCheckpointer
from harness.config import check
from harness.gan_train import GANConfig, gan_stage
from harness.gans import sample
from harness.stages import stage_counts
from harness.train import ClassifierConfig, cell_data, feature_classifier, fit_classifier, mixed_batches
from harness.trial import setup, stage_root
from trainables import register_method


@dataclass(frozen=True)
class GanAugmentationConfig(ClassifierConfig):
    """The baseline's classifier config, plus the GAN and the batch mix."""

    gan: GANConfig = GANConfig()  # the GAN pre-trained on the cell's real subset
    p_r: float = 0.5  # fraction of real images per classifier batch (Pennisi: 0.5)
    sample_from_ema: bool = True  # generate with the generator's EMA weights

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.p_r <= 1, f"p_r {self.p_r} is outside [0, 1]")


@register_method(GanAugmentationConfig)
def gan_augmentation(params: dict) -> None:
    cfg, ctx, device = setup(params, GanAugmentationConfig)
    data = cell_data(ctx.data_file, cfg, device, ctx.data_fingerprint)

    # ---- stage: the GAN pre-trained on the cell's real subset (early stopping measures FID with a
    # pre-trained classifier of the cell: the baseline's stage) ----
    root = stage_root(ctx)
    fid_net = feature_classifier(cfg, data, device, root, cfg.gan.fid_model) if cfg.gan.patience else None
    gan_st, gan, _ = gan_stage(cfg.gan, cfg.seed, data, device, root, fid_net)
    G = gan.ema.module if cfg.sample_from_ema and gan.ema is not None else gan.gan.generator

    # ---- the classifier, from scratch, on [generated, real] batches ----
    def make_batches(rng):
        return mixed_batches(data.train_x, data.train_y, cfg, cfg.p_r, lambda labels: sample(G, labels, rng), rng)

    stages = [gan_st] + ([fid_net[0]] if fid_net else [])
    fit_classifier(cfg, data, device, TuneCheckpointer(stage_counts(stages)), make_batches)
