"""The split manifest, the batch path and the dataset sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.data import augment, batches, load_images, make_split, tensor_cache, to_float


def _labels(per_class=(100, 50, 30)):
    return np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])


def test_split_is_stratified_disjoint_and_deterministic():
    labels = _labels()
    split = make_split(labels, fraction=0.2, val_fraction=0.1, seed=3)
    assert set(split.train).isdisjoint(split.val)
    for c, n in enumerate((100, 50, 30)):
        assert (labels[split.train] == c).sum() == round(0.2 * n)
        assert (labels[split.val] == c).sum() == round(0.1 * n)
    again = make_split(labels, 0.2, 0.1, seed=3)
    assert np.array_equal(split.train, again.train) and split.hash == again.hash
    other = make_split(labels, 0.2, 0.1, seed=4)
    assert split.hash != other.hash and not np.array_equal(split.train, other.train)


def test_split_val_is_fixed_across_fractions_and_train_subsets_nest():
    labels = _labels()
    small, large = make_split(labels, 0.3, 0.1, 0), make_split(labels, 0.6, 0.1, 0)
    assert np.array_equal(small.val, large.val)
    assert set(small.train) < set(large.train)
    full = make_split(labels, 0.9, 0.1, 0)
    assert len(full.train) + len(full.val) == len(labels)


@pytest.mark.parametrize("fraction,val", [(0.0, 0.1), (1.5, 0.1), (0.95, 0.1)])
def test_split_rejects_bad_fractions(fraction, val):
    from harness.config import ConfigError

    with pytest.raises(ConfigError):
        make_split(_labels(), fraction, val, 0)


def test_augment_crops_and_flips_whole_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    assert torch.equal(augment(x, 0, False, g), x)
    flipped = augment(x, 0, True, torch.Generator().manual_seed(1))
    for i in range(2):  # each image is either itself or its mirror
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    cropped = augment(x, 1, False, g)
    assert cropped.shape == x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    for i in range(2):  # each crop is a 4x4 window of the padded image
        windows = padded[i, 0].unfold(0, 4, 1).unfold(1, 4, 1).reshape(-1, 4, 4)
        assert any(torch.equal(w, cropped[i, 0]) for w in windows)


def test_batches_cover_an_epoch_once_in_range():
    x = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    y = torch.arange(10)
    seen = torch.cat([yb for _, yb in batches(x, y, 4, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    xb, _ = next(batches(x, y, 4, torch.Generator().manual_seed(0)))
    assert xb.dtype == torch.float32 and xb.min() >= -1 and xb.max() <= 1
    assert torch.allclose(to_float(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([-1.0, 1.0]))


@pytest.mark.parametrize("name,train,test,shape,label", [
    ("fashion_mnist", 60000, 10000, (1, 28, 28), "fashion_mnist"),
    ("cifar10", 50000, 10000, (3, 32, 32), "cifar10 (jpeg q75)"),
])
def test_offline_sources_decode_once_into_the_tensor_cache(name, train, test, shape, label, data_root,
                                                           shared_out):
    path = tensor_cache(name, data_root, shared_out / "cache" / "data")
    images = load_images(path)
    assert (len(images.train_y), len(images.test_y), images.shape, images.label) == (train, test, shape, label)
    assert images.train_x.dtype == torch.uint8 and len(images.classes) == 10
    assert torch.bincount(images.test_y).tolist() == [1000] * 10
    mtime = path.stat().st_mtime_ns
    assert tensor_cache(name, data_root, shared_out / "cache" / "data") == path
    assert path.stat().st_mtime_ns == mtime  # read again, not decoded again
