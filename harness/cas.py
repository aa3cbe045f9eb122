"""Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional
Generative Models", NeurIPS): how good a conditional generator is as a *source of training data*. A classifier
is trained on generated images only, one per real training image, and tested on real data; the gap to the
same classifier trained on the real images is what the generator loses.

    CAS = test accuracy (%) of classifier(trained on G's images)      gap = real-data accuracy - CAS (points)

:func:`cas_stage` measures one generator, as a cached stage keyed by the generator (its GAN stage's key) and
the classifier config; :func:`cas_metrics` measures every GAN of a generator-only trial (filtered_sampling,
multi_gan) and returns the result columns (harness.metrics: CAS, CAS_PER_GAN, CAS_REAL, CAS_GAP,
CAS_GAP_PER_GAN). Reports show the gap beside GaFi's (search_spaces/gansweep_cas.py).

The protocol, with the choices the paper leaves open (or that a small-data harness has to make):
- **The set**: one generated image per real training image, with exactly the real subset's labels (the same
  class counts, the same order), fixed (image i is G(z_i, y_i) with its own latent z_i) and iterated over in
  shuffled epochs like the real subset (:class:`CASSet`; each image is made when first asked for).
  Ravuri & Vinyals generate as many images per class as the real training set holds (ImageNet's 1.28M);
  with the labels copied, the two training sets differ only in their pixels.
- **Plain CAS**: unfiltered and untruncated (latents N(0, 1); :attr:`CASConfig.truncation` > 0 measures a
  truncated generator, as in the truncation study they also report, and is not plain CAS). The generator-only
  methods filter and truncate to *train* their classifiers; CAS measures the generator itself, which is what
  the field compares.
- **Which weights**: the ones the trial's classifier samples: the EMA of G when it has one and
  ``sample_from_ema`` (BigGAN's practice), in eval mode (BatchNorm running statistics). The stage's key says
  which (``<gan stage key>:ema=<bool>``).
- **Its own random stream**: latents come from ``measurement_rng(seed, 0, "cas")``, seeded by the cell's seed
  only: the set does not depend on anything training drew, and every GAN of a cell is sampled with the same
  latents (common random numbers: CAS differences between a cell's GANs are differences between generators).
  The stage runs inside ``isolated_rng()``: the trial's global RNGs are as they were afterwards.
- **The classifier**: the real-data classifier's config exactly (the cell's architecture, optimiser,
  epochs, batch size, augmentation, early stopping; ``SyntheticConfig.real_classifier()``), trained by
  :func:`harness.train.fit_classifier`. So both classifiers take the same steps per epoch (the set has the real
  subset's size), start from the same weights (same seed) and differ only in their training images.
  Ravuri & Vinyals likewise keep the real-data classifier's architecture and training recipe.
- **Model selection**: early stopping and the reported epoch on the *real* validation split, as for every
  classifier here; CAS is the test accuracy at the best validation accuracy (``test_acc_at_best_val_acc``),
  the real-data classifier's reported number. Ravuri & Vinyals test on ImageNet's validation set after a
  fixed schedule (ImageNet's test labels are not public); with a validation split of our own, the test set
  is never consulted for selection.
- **The gap's reference**: the real-data classifier of the same cell and seed (the baseline cell's stage: same
  config, same split), so gaps pair over seeds.
- **Several GANs** (multi_gan): CAS per GAN stage, in the trial's order, and their mean; the gap of the mean.
  A mixture's CAS (one set from all GANs) is not measured: the field compares generators, one at a time.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from harness import metrics as M
from harness.checkpoint import FolderCheckpointer
from harness.config import check
from harness.data import augment, to_float, to_uint8
from harness.fidelity import eval_mode, isolated_rng, measurement_rng
from harness.gans import sample_z
from harness.stages import Stage, StageStore, stage
from harness.storage import atomic_write
from harness.train import CLASSIFIER_STAGE_FILE, CellData, ClassifierConfig, epoch_steps, fit_classifier

CAS_STAGE_FILE = "cas.pt"
CAS_STREAM = "cas"  # the measurement stream's purpose (harness.fidelity.measurement_rng)
CHUNK = 500  # images per generator call (memory only: no effect on the images)


@dataclass(frozen=True)
class CASConfig:
    """How the generated set is drawn, beyond the classifier's config (the defaults are plain CAS)."""

    truncation: float = 0.0  # latent truncation psi, z in [-psi, psi] (0: N(0, 1), plain CAS)

    def __post_init__(self):
        check(self.truncation >= 0, f"truncation {self.truncation} is negative")


class CASSet:
    """The generated training set: image i is G(z_i, y_i), with y_i the real subset's i-th label and z_i the i-th
    latent drawn from ``rng`` (so the set is fixed when it is created), made the first time a batch asks for it.

    NOTE: made lazily because a budget-capped classifier (smoke, mini: a few batches per epoch) sees a small part
    of the set; generating all of it first took 5.6 s per GAN stage at smoke (4,500 images of the small DCGAN,
    2 busy cores), for 32 images used. Uncapped, every image is made in the first epoch, as a set made up
    front would be. G samples in eval mode (BatchNorm running statistics), so an image does not depend on the
    batch it is made in."""

    def __init__(self, generator: nn.Module, labels: torch.Tensor, rng: torch.Generator, truncation: float = 0.0):
        self.generator, self.y = generator, labels.clone()
        self.z = sample_z(len(labels), generator.z_dim, rng, truncation or None)  # CPU, as harness.gans.sample
        self.made = torch.zeros(len(labels), dtype=torch.bool)
        self.x: torch.Tensor | None = None  # uint8 images, allocated with the first one made

    def __len__(self) -> int:
        return len(self.y)

    @torch.no_grad()
    def images(self, idx: torch.Tensor) -> torch.Tensor:
        """The uint8 images at ``idx`` (distinct CPU indices), made now where not made yet."""
        todo = idx[~self.made[idx]]
        for i in range(0, len(todo), CHUNK):
            part = todo[i:i + CHUNK]
            with eval_mode(self.generator):
                x = to_uint8(self.generator(self.z[part].to(self.y.device), self.y[part.to(self.y.device)]))
            if self.x is None:
                self.x = torch.zeros(len(self.y), *x.shape[1:], dtype=torch.uint8, device=x.device)
            self.x[part.to(x.device)] = x
            self.made[part] = True
        return self.x[idx.to(self.x.device)]

    def batches(self, cfg: ClassifierConfig, rng: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One classifier epoch over the set, as harness.train.real_batches over a real subset of its size: shuffled
        passes of ``cfg.batch_size`` (the last batch of a pass smaller), ``epoch_steps`` batches, crop and flip."""
        def passes():
            while True:
                order = torch.randperm(len(self), generator=rng)
                yield from (order[i:i + cfg.batch_size] for i in range(0, len(self), cfg.batch_size))

        for idx in itertools.islice(passes(), epoch_steps(cfg, len(self))):
            x = to_float(self.images(idx))
            if cfg.crop_padding or cfg.flip:
                x = augment(x, cfg.crop_padding, cfg.flip, rng)
            yield x, self.y[idx.to(self.y.device)]


def cas_stage(cfg: ClassifierConfig, generator: nn.Module, generator_key: str, data: CellData,
              device: torch.device, root: StageStore | Path, cas: CASConfig = CASConfig()) -> tuple[Stage, dict]:
    """The CAS of ``generator`` from the stage cache, measured if absent (module docstring: the protocol).

    ``cfg`` is the real-data classifier's config (a plain ClassifierConfig, so that every method's cells share
    the stage); ``generator_key`` must name the generator's weights (a GAN stage's key and which of its
    weights). The generator is called only when the stage is computed. Returns the stage and its payload:
    ``{"cas": %, "result", "history", "cost"}`` (the classifier's, without its weights) and ``"images"`` (the
    set's size)."""
    check(type(cfg) is ClassifierConfig, f"cas_stage takes a plain ClassifierConfig, not {type(cfg).__name__}: "
                                         "the real-data classifier's (SyntheticConfig.real_classifier())")

    def compute(artifact: Path, work: Path) -> None:
        with isolated_rng():
            images = CASSet(generator, data.train_y, measurement_rng(cfg.seed, 0, CAS_STREAM), cas.truncation)
            fitted = fit_classifier(cfg, data, device, FolderCheckpointer(work), lambda g: images.batches(cfg, g))
        payload = {"cas": fitted["result"][M.TEST_ACC_AT_BEST_VAL_ACC], "result": fitted["result"],
                   "history": fitted["history"], "cost": fitted["cost"], "images": len(images)}
        atomic_write(artifact / CAS_STAGE_FILE, lambda f: torch.save(payload, f))

    key = {"classifier": dataclasses.asdict(cfg), "cas": dataclasses.asdict(cas)}
    st = stage(root, "cas", key, (generator_key, data.data_key), compute)
    return st, torch.load(st.path(CAS_STAGE_FILE), weights_only=False)


def cas_metrics(cfg, data: CellData, device: torch.device, root: StageStore | Path, generators: Sequence[nn.Module],
                gan_stages: Sequence[Stage], real_st: Stage) -> tuple[dict, list[Stage]]:
    """CAS of every GAN of a generator-only trial, and the gaps to its real-data classifier.

    ``cfg``: the trial's SyntheticConfig (its ``real_classifier()`` and ``sample_from_ema``); ``generators[i]``:
    ``gan_stages[i]``'s generator as the trial samples it (trainables.filtered_sampling.sampled_generator);
    ``real_st``: the real-data classifier's stage (trainables.filtered_sampling.real_stages). Returns the result
    columns (per GAN lists and means) and the CAS stages, for the trial's stage counts."""
    real = torch.load(real_st.path(CLASSIFIER_STAGE_FILE), weights_only=False)["result"][M.TEST_ACC_AT_BEST_VAL_ACC]
    stages, scores = [], []
    for G, gan_st in zip(generators, gan_stages, strict=True):
        st, payload = cas_stage(cfg.real_classifier(), G, f"{gan_st.ref}:ema={cfg.sample_from_ema}", data, device,
                                root)
        stages.append(st)
        scores.append(payload["cas"])
    mean = math.fsum(scores) / len(scores)
    return {M.CAS: mean, M.CAS_PER_GAN: scores, M.CAS_REAL: real, M.CAS_GAP: real - mean,
            M.CAS_GAP_PER_GAN: [real - s for s in scores]}, stages
