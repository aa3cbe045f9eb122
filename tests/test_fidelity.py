"""harness.fidelity: classifier FID through torch-fidelity, content-hashed caching of the real set, and
Inception metrics that are recorded as missing (never faked, never downloaded) without the weights file."""

from __future__ import annotations

import math
import random
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch_fidelity
import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

from harness import fidelity
from harness.fidelity import (
    INCEPTION_WEIGHTS_FILE,
    REPORT_NAMES,
    balanced_sample,
    classifier_fid,
    data_hash,
    eval_mode,
    inception_metrics,
    inception_weights,
    isolated_rng,
    measurement_rng,
    weights_hash,
)
from harness.models import build_classifier

N = 200  # images per set


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread, restored after


def images(n: int, channels: int, size: int, low: int = 0, seed: int = 0) -> torch.Tensor:
    """Uniform uint8 noise in [low, 255]: ``low > 0`` gives a brighter, different distribution."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


@pytest.fixture
def lenet():
    torch.manual_seed(0)
    return build_classifier("lenet", 1, 28, 10)


def count_images(classifier: nn.Module) -> list[int]:
    """A list that grows by the batch size of every forward through ``classifier.body``."""
    seen: list[int] = []
    classifier.body.register_forward_hook(lambda m, inputs, out: seen.append(len(inputs[0])))
    return seen


# ----------------------------------------------------------------------------------------------------------
# Classifier FID


def test_classifier_fid_self_zero_cross_positive_symmetric(lenet):
    real, same, bright = images(N, 1, 28, seed=0), images(N, 1, 28, seed=0), images(N, 1, 28, low=100, seed=1)
    cross = classifier_fid(lenet, real, bright)
    assert cross > 0 and math.isfinite(cross)
    assert abs(classifier_fid(lenet, real, same)) < 1e-3 * cross
    assert classifier_fid(lenet, bright, real) == pytest.approx(cross, rel=1e-3)
    # a second sample of the same distribution is closer than the brighter one
    assert classifier_fid(lenet, real, images(N, 1, 28, seed=2)) < cross


def global_rng_states() -> tuple:
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def same_rng_states(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_classifier_fid_leaves_the_classifier_and_the_global_rngs_as_they_were():
    """Measuring must not change anything training reads (issue 7, item 8)."""
    torch.manual_seed(0)
    alexnet = build_classifier("alexnet", 1, 28, 10)  # dropout and BatchNorm: both would notice train mode
    alexnet.train()
    alexnet.body[0].eval()  # a submodule someone froze in eval mode stays so
    weights = {k: v.clone() for k, v in alexnet.state_dict().items()}
    before = global_rng_states()
    classifier_fid(alexnet, images(20, 1, 28), images(20, 1, 28, low=100))
    assert same_rng_states(before, global_rng_states())  # torch-fidelity's DataLoader drew from torch's RNG
    assert alexnet.training and not alexnet.body[0].training
    assert all(p.requires_grad for p in alexnet.parameters())  # torch-fidelity freezes the extractor it builds
    assert all(torch.equal(v, weights[k]) for k, v in alexnet.state_dict().items())  # BN statistics too


def test_isolated_rng_restores_every_global_rng():
    before = global_rng_states()
    with isolated_rng():
        torch.rand(3), np.random.rand(3), random.random()
        list(torch.utils.data.DataLoader(range(4)))  # draws its base seed from torch's global RNG
    assert same_rng_states(before, global_rng_states())
    list(torch.utils.data.DataLoader(range(4)))
    assert not same_rng_states(before, global_rng_states())  # (what it guards against)


def test_eval_mode_restores_each_submodule():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    net[1].eval()
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == [True, True, False, True]


def test_measurement_rng_depends_on_seed_epoch_and_purpose_only():
    draw = lambda *key: torch.randn(4, generator=measurement_rng(*key))
    assert torch.equal(draw(0, 3, "fid"), draw(0, 3, "fid"))
    assert not torch.equal(draw(0, 3, "fid"), draw(1, 3, "fid"))
    assert not torch.equal(draw(0, 3, "fid"), draw(0, 4, "fid"))
    assert not torch.equal(draw(0, 3, "fid"), draw(0, 3, "grid"))


def test_balanced_sample_is_seeded_and_class_balanced():
    y = torch.arange(10).repeat_interleave(100)  # sorted by class, as the JPEG CIFAR-10 is stored
    idx = balanced_sample(y, 205, torch.Generator().manual_seed(0))
    assert len(idx) == len(idx.unique()) == 205 and torch.equal(idx, idx.sort().values)
    counts = torch.bincount(y[idx], minlength=10)
    assert counts.min() == 20 and counts.max() == 21 and counts.sum() == 205
    assert torch.equal(idx, balanced_sample(y, 205, torch.Generator().manual_seed(0)))
    assert not torch.equal(idx, balanced_sample(y, 205, torch.Generator().manual_seed(1)))
    first_of_each_class = torch.cat([torch.arange(20) + 100 * c for c in range(10)])
    assert not torch.equal(balanced_sample(y, 200, torch.Generator().manual_seed(0)), first_of_each_class)
    # a short class gives what it has and the others fill in
    short = torch.cat([torch.zeros(3, dtype=torch.long), torch.ones(50, dtype=torch.long)])
    counts = torch.bincount(short[balanced_sample(short, 20, torch.Generator().manual_seed(0))])
    assert counts.tolist() == [3, 17]
    assert len(balanced_sample(short, len(short), torch.Generator())) == len(short)
    with pytest.raises(ValueError):
        balanced_sample(short, len(short) + 1, torch.Generator())


def test_classifier_fid_cache_is_keyed_by_weights_and_data(lenet, tmp_path):
    real, fake = images(N, 1, 28, seed=0), images(N, 1, 28, low=100, seed=1)
    seen = count_images(lenet)

    first = classifier_fid(lenet, real, fake, cache_dir=tmp_path)
    assert sum(seen) == 2 * N  # both sets went through the classifier
    stats = sorted(p.name for p in tmp_path.glob("*stat-fid*.pt"))
    assert len(stats) == 1
    assert data_hash(real) in stats[0] and weights_hash(lenet) in stats[0]
    assert not any(data_hash(fake) in p.name for p in tmp_path.iterdir())  # the fake set is never cached

    seen.clear()
    assert classifier_fid(lenet, real, fake, cache_dir=tmp_path) == first
    assert sum(seen) == N  # only the fake set: the real statistics came from the cache

    old_hash = weights_hash(lenet)
    with torch.no_grad():
        lenet.body.fc1[0].weight.mul_(2.0)  # a change that reaches the penultimate features
    assert weights_hash(lenet) != old_hash
    seen.clear()
    changed = classifier_fid(lenet, real, fake, cache_dir=tmp_path)
    assert sum(seen) == 2 * N  # stale statistics were not reused
    assert changed != pytest.approx(first, rel=1e-3)
    assert changed == pytest.approx(classifier_fid(lenet, real, fake), rel=1e-6)  # same as uncached
    assert len(list(tmp_path.glob("*stat-fid*.pt"))) == 2

    # other real images: another name too
    classifier_fid(lenet, images(N, 1, 28, seed=3), fake, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*stat-fid*.pt"))) == 3


def test_classifier_fid_rgb_classifier_and_channel_conversion():
    torch.manual_seed(0)
    alex = build_classifier("alexnet_half", 3, 32, 10)
    real, bright = images(64, 3, 32, seed=0), images(64, 3, 32, low=100, seed=1)
    cross = classifier_fid(alex, real, bright, batch_size=32)
    assert cross > 0 and math.isfinite(cross)
    assert abs(classifier_fid(alex, real, real.clone(), batch_size=32)) < 1e-3 * cross
    # grey images to an RGB classifier are repeated: same value as repeating them ourselves
    grey, grey_bright = images(64, 1, 32, seed=0), images(64, 1, 32, low=100, seed=1)
    assert classifier_fid(alex, grey, grey_bright) == pytest.approx(
        classifier_fid(alex, grey.expand(-1, 3, -1, -1), grey_bright.expand(-1, 3, -1, -1)), rel=1e-6)
    # RGB images of grey content to a grey classifier: the channel mean is the grey image itself
    lenet = build_classifier("lenet", 1, 28, 10)
    g1, g2 = images(64, 1, 28, seed=0), images(64, 1, 28, low=100, seed=1)
    assert classifier_fid(lenet, g1.expand(-1, 3, -1, -1), g2.expand(-1, 3, -1, -1)) == pytest.approx(
        classifier_fid(lenet, g1, g2), rel=1e-6)


def test_classifier_fid_rejects_bad_images(lenet):
    with pytest.raises(ValueError, match="uint8"):
        classifier_fid(lenet, images(8, 1, 28).float(), images(8, 1, 28))
    with pytest.raises(ValueError, match="at least 2"):
        classifier_fid(lenet, images(8, 1, 28), images(1, 1, 28))


# ----------------------------------------------------------------------------------------------------------
# Hashes


def test_hashes_follow_content(lenet, tmp_path):
    x = images(10, 1, 28)
    assert data_hash(x) == data_hash(x.clone()) and len(data_hash(x)) == 16
    y = x.clone()
    y[3, 0, 4, 4] ^= 1
    assert data_hash(y) != data_hash(x)
    assert data_hash(x) != data_hash(x.view(10, 28, 28))  # the shape is part of the content
    other = build_classifier("lenet", 1, 28, 10)
    other.load_state_dict(lenet.state_dict())
    assert weights_hash(other) == weights_hash(lenet)
    f = tmp_path / "w.pth"
    f.write_bytes(b"abc")
    assert weights_hash(f) == weights_hash(str(f)) != weights_hash(lenet)


# ----------------------------------------------------------------------------------------------------------
# Inception metrics


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt or socket connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_inception_weights_lookup(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    assert inception_weights(None) is None
    assert inception_weights(tmp_path / "nowhere.pth") is None
    (hub / "checkpoints").mkdir(parents=True)
    cached = hub / "checkpoints" / INCEPTION_WEIGHTS_FILE
    cached.write_bytes(b"x")
    assert inception_weights(None) == cached
    own = tmp_path / "mine.pth"
    own.write_bytes(b"y")
    assert inception_weights(str(own)) == own


def test_inception_metrics_without_weights_are_missing(no_network, monkeypatch):
    def refuse(**kwargs):
        raise AssertionError("torch-fidelity must not be called without weights")

    monkeypatch.setattr(torch_fidelity, "calculate_metrics", refuse)
    out = inception_metrics(images(8, 1, 28), images(8, 1, 28), weights=None)
    assert set(out) == set(REPORT_NAMES)
    assert all(out[k] is None for k in out if k != "missing_reason")
    assert "no Inception weights" in out["missing_reason"] and INCEPTION_WEIGHTS_FILE in out["missing_reason"]
    out = inception_metrics(images(8, 1, 28), images(8, 1, 28), weights=Path("/nonexistent/inception.pth"))
    assert out["fid"] is None and "/nonexistent/inception.pth" in out["missing_reason"]


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory) -> Path:
    """A weights file with the layout of torch-fidelity's Inception and random (He-normal) convolutions.

    It exercises the weights-path plumbing only: the numbers it gives are not Inception metrics.
    """

    class Unloaded(tf_inception.FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):
            return None

    download = tf_inception.load_state_dict_from_url
    tf_inception.load_state_dict_from_url = lambda *args, **kwargs: {}
    try:
        torch.manual_seed(0)
        net = Unloaded("random-inception", ["2048"])
    finally:
        tf_inception.load_state_dict_from_url = download
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)  # keeps activations from vanishing through 90+ layers
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    # float16 halves the file (48 MB); load_state_dict casts back to float32
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, path)
    return path


def test_inception_metrics_with_a_weights_file(random_inception_weights, tmp_path, no_network, monkeypatch):
    # NOTE: 75 px (Inception-v3's minimum) instead of 299 px, only to keep this CPU test fast.
    monkeypatch.setattr(tf_inception.FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 75)
    seen: list[int] = []
    forward = tf_inception.FeatureExtractorInceptionV3.forward
    monkeypatch.setattr(tf_inception.FeatureExtractorInceptionV3, "forward",
                        lambda self, x: seen.append(len(x)) or forward(self, x))
    real, fake = images(24, 1, 28, seed=0), images(16, 1, 28, low=100, seed=1)  # grey: repeated to RGB

    out = inception_metrics(real, fake, random_inception_weights, cache_dir=tmp_path, kid_subset_size=1000)
    assert out["missing_reason"] is None
    assert all(math.isfinite(out[k]) for k in ("fid", "isc_mean", "isc_std", "kid_mean", "kid_std"))
    assert out["fid"] > 0 and out["isc_mean"] >= 1.0
    assert sum(seen) == 24 + 16  # kid_subset_size was clipped to 16, else torch-fidelity would have refused
    names = [p.name for p in tmp_path.glob("*.pt")]
    assert names and all(data_hash(real) in n and weights_hash(random_inception_weights) in n for n in names)

    seen.clear()
    again = inception_metrics(real, fake, random_inception_weights, cache_dir=tmp_path)
    assert again == out
    assert sum(seen) == 16  # real features and statistics came from the cache


def test_metric_names_are_distinct():
    names = [fidelity.FID_CLASSIFIER, *REPORT_NAMES.values()]
    assert len(set(names)) == len(names)
