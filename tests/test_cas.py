"""harness.cas: the Classification Accuracy Score measures what it claims, on real Fashion-MNIST (no Ray).

Two stand-in generators bound it: a "perfect" one, whose images are fresh real training images of the asked
class (outside the cell's subset and validation split: a sample of the data distribution itself), scores
about the real-data classifier's accuracy; one of pure noise scores about chance (10%)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

from harness import metrics as M
from harness.cas import CAS_STAGE_FILE, CAS_STREAM, CASSet, cas_metrics
from harness.checkpoint import FolderCheckpointer
from harness.data import load_images, make_split, tensor_cache, to_float
from harness.fidelity import measurement_rng
from harness.stages import Stage, stage_counts
from harness.synthetic import SyntheticConfig
from harness.train import cell_data, classifier_stage

CPU = torch.device("cpu")
# LeNet on 600 Fashion-MNIST images (1%), 600 for validation, 1,000 test images: a few seconds per classifier
CFG = SyntheticConfig(dataset="fashion_mnist", fraction=0.01, val_fraction=0.01, model="lenet", optimizer="adam",
                      lr=3e-3, batch_size=32, epochs=10, crop_padding=0, flip=False, real_crop_padding=0,
                      real_flip=False, max_eval_images=1000)


class PerfectGenerator(nn.Module):
    """G(z, y): a real image of class y from a pool the classifiers never see, picked by z (uniform via the
    normal CDF): i.i.d. draws from the data distribution, which no GAN beats."""

    z_dim = 1

    def __init__(self, x_u8: torch.Tensor, y: torch.Tensor):
        super().__init__()
        self.pools = [x_u8[y == c] for c in range(int(y.max()) + 1)]
        self.calls = 0

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        u = torch.special.ndtr(z[:, 0])
        out = torch.empty(len(y), *self.pools[0].shape[1:], dtype=torch.uint8)
        for c in y.unique().tolist():
            at = y == c
            pool = self.pools[c]
            out[at] = pool[(u[at] * len(pool)).long().clamp(max=len(pool) - 1)]
        return to_float(out)


class NoiseGenerator(nn.Module):
    """G(z, y): uniform noise in [-1, 1], whatever the label."""

    z_dim = 28 * 28

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return (2 * torch.special.ndtr(z) - 1).view(len(z), 1, 28, 28)


@pytest.fixture(scope="module")
def cell(data_root, shared_out, one_torch_thread):
    """The cell's data, and the perfect generator's pool: the training images outside its subset and split."""
    data_file = tensor_cache("fashion_mnist", data_root, shared_out / "cache" / "data")
    data = cell_data(str(data_file), CFG, CPU, fingerprint="fmnist-test")
    images = load_images(data_file)
    split = make_split(images.train_y, CFG.fraction, CFG.val_fraction, CFG.seed)
    unseen = torch.ones(len(images.train_y), dtype=torch.bool)
    unseen[torch.from_numpy(split.train)] = False
    unseen[torch.from_numpy(split.val)] = False
    return data, PerfectGenerator(images.train_x[unseen], images.train_y[unseen])


def test_the_set_has_one_image_per_real_one_with_exactly_its_labels_and_is_fixed(cell):
    data, _ = cell
    noise = NoiseGenerator()
    images = CASSet(noise, data.train_y, measurement_rng(CFG.seed, 0, CAS_STREAM))
    assert len(images) == 600 and torch.equal(images.y, data.train_y)  # same labels, same order: 60 per class
    # a capped epoch (2 batches of 32) makes only the images it uses
    capped = dataclasses.replace(CFG.real_classifier(), max_batches_per_epoch=2)
    got = list(images.batches(capped, torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in got] == [32, 32] and int(images.made.sum()) == 64 and noise.calls == 2
    for x, _ in got:  # float images in [-1, 1]
        assert x.shape == (32, 1, 28, 28) and x.abs().max() <= 1
    # an uncapped epoch: every image once, in 19 batches (the last of 24), one per real image
    epoch = list(images.batches(CFG.real_classifier(), torch.Generator().manual_seed(1)))
    assert [len(y) for _, y in epoch] == [32] * 18 + [24] and bool(images.made.all())
    assert torch.equal(torch.cat([y for _, y in epoch]).sort().values, data.train_y.sort().values)
    # fixed: image i is the same whatever order it was made in (here all at once, from the same stream)
    again = CASSet(noise, data.train_y, measurement_rng(CFG.seed, 0, CAS_STREAM))
    everything = torch.arange(600)
    assert again.images(everything).dtype == torch.uint8
    assert torch.equal(again.images(everything), images.images(everything))


def test_cas_is_about_real_accuracy_for_real_images_and_chance_for_noise_and_is_cached(cell, tmp_path):
    data, perfect = cell
    noise = NoiseGenerator()
    root = tmp_path / "stages"
    real_st, real = classifier_stage(CFG.real_classifier(), data, CPU, root, FolderCheckpointer)
    gans = [Stage("gan", "perfect", tmp_path / "gan-perfect-c0de", True),  # a stage is named by its folder
            Stage("gan", "noise", tmp_path / "gan-noise-c0de", True)]

    rng_before = torch.get_rng_state()
    got, stages = cas_metrics(CFG, data, CPU, root, [perfect, noise], gans, real_st)
    assert torch.equal(torch.get_rng_state(), rng_before)  # a measurement: the trial's global RNG is untouched
    real_acc = real["result"][M.TEST_ACC_AT_BEST_VAL_ACC]
    (cas_perfect, cas_noise), gaps = got[M.CAS_PER_GAN], got[M.CAS_GAP_PER_GAN]
    print(f"\nreal-data LeNet {real_acc:.1f}%, CAS of real images {cas_perfect:.1f}% (gap {gaps[0]:+.1f}), "
          f"CAS of noise {cas_noise:.1f}% (gap {gaps[1]:+.1f})")
    assert real_acc > 65
    # a generator as good as the data: no gap beyond sampling noise (seeds 0-4: |gap| 0.4-2.5 points)
    assert abs(cas_perfect - real_acc) < 5
    # nothing to learn: about chance (10 classes). Seeds 0-4 gave 10.5-20.8%: a net fitted to noise predicts a few
    # classes for real images, and the epoch is picked on real validation accuracy
    assert cas_noise < 25
    assert got[M.CAS_REAL] == real_acc
    assert got[M.CAS] == pytest.approx((cas_perfect + cas_noise) / 2)
    assert got[M.CAS_GAP] == pytest.approx(real_acc - got[M.CAS])
    assert gaps == pytest.approx([real_acc - cas_perfect, real_acc - cas_noise])
    for st in stages:  # one generated image per real one, trained as the real classifier was
        payload = torch.load(st.path(CAS_STAGE_FILE), weights_only=False)
        assert payload["images"] == len(data.train_y)
        assert payload["cost"][M.OPT_STEPS] == real["cost"][M.OPT_STEPS]

    calls = (perfect.calls, noise.calls)
    again, stages = cas_metrics(CFG, data, CPU, root, [perfect, noise], gans, real_st)
    assert again == got and (perfect.calls, noise.calls) == calls  # read from the cache, nothing generated
    assert stage_counts(stages) == {M.STAGES_COMPUTED: 0, M.STAGES_REUSED: 2, M.STAGES_STALE: 0}
