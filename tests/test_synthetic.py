"""harness.synthetic: Pham's filter rule, generated batches (refill, forced slots, counts), the truncation trick,
Slim's sample reweighting, against hand-computed values; and the MS-SSIM diversity wrapper against torchmetrics."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from harness import metrics as M
from harness import synthetic
from harness.gans import sample_z
from harness.synthetic import (ACCEPTED, LOW_PROB, MS_SSIM_BETAS, MS_SSIM_SIGMA, WRONG_LABEL, FilterCounts,
                               GeneratedBatches, diversity_metrics, filter_verdicts, intra_class_ms_ssim, ms_ssim,
                               ms_ssim_pairs, sample_weights, sampling_probabilities, transform_weights)
from harness.train import sum_over_epochs

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread, restored after


def test_filter_rule_splits_rejections_into_wrong_label_and_low_probability():
    probs = torch.tensor([[0.10, 0.90, 0.00],   # y=1: right and confident
                          [0.60, 0.30, 0.10],   # y=1: wrong label
                          [0.40, 0.50, 0.10],   # y=1: right label, below 0.9
                          [0.05, 0.05, 0.90]])  # y=2: exactly at the threshold: kept (p[y] >= threshold)
    labels = torch.tensor([1, 1, 1, 2])
    assert filter_verdicts(probs, labels, 0.9).tolist() == [ACCEPTED, WRONG_LABEL, LOW_PROB, ACCEPTED]
    # threshold 0: only the argmax matters (Pham's CIFAR-10 observation that the threshold barely matters)
    assert filter_verdicts(probs, labels, 0.0).tolist() == [ACCEPTED, WRONG_LABEL, ACCEPTED, ACCEPTED]


def test_truncated_latents_stay_inside_the_interval_and_plain_ones_do_not():
    g = torch.Generator().manual_seed(0)
    assert sample_z(20000, 8, g, 0.5).abs().max() <= 0.5
    assert sample_z(20000, 8, g).abs().max() > 3.0
    with pytest.raises(ValueError):
        sample_z(4, 8, g, 0.0)


class _SignGenerator(nn.Module):
    """A stand-in generator: the image is z's first coordinate broadcast, so the filter below can judge it."""

    z_dim = 4

    def forward(self, z, y):
        return z[:, :1, None, None].expand(len(z), 1, 2, 2).clone()


class _SignFilter(nn.Module):
    """Predicts class 2 with certainty for a positive image, class 0 otherwise."""

    def forward(self, x):
        positive = x[:, 0, 0, 0] > 0
        logits = torch.full((len(x), 3), -30.0)
        logits[positive, 2] = 30.0  # every positive image is "class 2"
        logits[~positive, 0] = 30.0
        return logits


def test_rejected_slots_are_drawn_again_with_their_label_until_the_batch_is_full():
    src = GeneratedBatches([_SignGenerator()], 3, filter_net=_SignFilter(), threshold=0.5, max_draws=100)
    labels = torch.tensor([2, 2, 2, 2, 2, 2, 2, 2])
    x, y = src.batch(8, torch.Generator().manual_seed(1), torch.device("cpu"), labels=labels.clone())
    assert y.tolist() == labels.tolist()  # refill keeps the labels: the batch stays as asked
    assert (x[:, 0, 0, 0] > 0).all()  # every kept image is one the filter accepted
    c = src.counts
    assert c.accepted == [0, 0, 8] and c.low_prob == [0, 0, 0] and c.forced == [0, 0, 0]
    assert c.wrong_label[2] > 0 and c.generated == 8 + c.wrong_label[2]  # about half the draws were rejected
    m = c.metrics()
    assert m["rejected_images"] == c.wrong_label[2]
    assert m["rejected_generation_s"] == pytest.approx(m["generation_s"] * m["rejected_images"] / m["generated_images"])


def test_a_class_the_filter_never_accepts_is_filled_with_its_best_draw_and_counted_as_forced():
    src = GeneratedBatches([_SignGenerator()], 3, filter_net=_SignFilter(), threshold=0.5, max_draws=3)
    x, y = src.batch(4, torch.Generator().manual_seed(0), torch.device("cpu"), labels=torch.tensor([1, 1, 2, 2]))
    assert y.tolist() == [1, 1, 2, 2]
    assert src.counts.forced == [0, 2, 0]  # class 1 is never predicted: both its slots forced after 3 draws
    assert src.counts.wrong_label[1] == 6  # 2 slots x 3 draws
    assert src.counts.accepted[2] == 2


class _LabelGenerator(nn.Module):
    """A stand-in generator whose image carries its label (the pixel value), to check labels stay with images."""

    z_dim = 4

    def forward(self, z, y):
        return y.float()[:, None, None, None].expand(len(y), 1, 2, 2).clone()


class _Never(nn.Module):
    """A filter that never predicts the label an image carries (it predicts label + 1)."""

    def forward(self, x):
        return F.one_hot((x[:, 0, 0, 0].long() + 1) % 3, 3).float() * 60 - 30


@pytest.mark.parametrize("same_label", [True, False])
def test_forced_slots_keep_an_image_of_their_own_label(same_label):
    """Out of draws, a slot is filled with an image drawn for the label it returns (a new label draws anew)."""
    src = GeneratedBatches([_LabelGenerator()], 3, filter_net=_Never(), threshold=0.5, max_draws=3,
                           refill_same_label=same_label)
    x, y = src.batch(12, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert (x[:, 0, 0, 0].long() == y).all()
    assert sum(src.counts.forced) == 12 and src.counts.forced == torch.bincount(y, minlength=3).tolist()
    assert src.counts.generated == 36  # 3 judged draws per slot, none drawn after the last judgement


def test_a_mixture_fixed_set_holds_every_generator_in_its_share():
    class Const(nn.Module):
        z_dim = 2

        def __init__(self, v):
            super().__init__()
            self.v = v

        def forward(self, z, y):
            return torch.full((len(y), 1, 2, 2), float(self.v))

    src = GeneratedBatches([Const(0), Const(1), Const(2)], 4, weights=(0.5, 0.25, 0.25))
    assert src.shares(10) == [5, 3, 2] or src.shares(10) == [5, 2, 3]
    x, y = src.fixed_set(1000, torch.Generator().manual_seed(0), torch.device("cpu"), chunk=64)
    assert torch.bincount(x[:, 0, 0, 0].long()).tolist() == [500, 250, 250]
    assert torch.bincount(y).tolist() == [250] * 4


def test_without_a_filter_every_draw_is_kept_and_counted_as_accepted():
    src = GeneratedBatches([_SignGenerator()], 3)
    _, y = src.batch(10, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert sum(src.counts.accepted) == 10 and src.counts.generated == 10
    assert torch.bincount(y, minlength=3).tolist() == src.counts.accepted


def test_a_fixed_set_is_class_balanced():
    src = GeneratedBatches([_SignGenerator()], 3)
    x, y = src.fixed_set(10, torch.Generator().manual_seed(0), torch.device("cpu"), chunk=4)
    assert x.shape == (10, 1, 2, 2) and torch.bincount(y).tolist() == [4, 3, 3]


def test_generator_weights_pick_generators_in_proportion():
    a, b = _SignGenerator(), _SignGenerator()
    src = GeneratedBatches([a, b], 3, weights=(0.75, 0.25))
    g = torch.Generator().manual_seed(0)
    picks = [src.pick_generator(g) is a for _ in range(4000)]
    assert sum(picks) / len(picks) == pytest.approx(0.75, abs=0.03)


def test_slim_weight_transforms_match_hand_computed_values():
    w = torch.tensor([0.0, 0.2, 0.4, 0.6, 1.0])
    mu, sigma = 0.44, math.sqrt(((w - 0.44) ** 2).mean().item())  # population std: 0.3441
    assert transform_weights(w, "A_mu").tolist() == pytest.approx([0, 0, 0, 0.6, 1.0])
    assert transform_weights(w, "A_sigma").tolist() == pytest.approx([0, 0, 0, 0, 1.0])  # mu + sigma = 0.784
    expected_b = [1 / (1 + math.exp(-2 * (v - mu) / sigma)) for v in w.tolist()]
    assert transform_weights(w, "B").tolist() == pytest.approx(expected_b)
    assert transform_weights(w, "C").tolist() == pytest.approx(w.tolist())
    with pytest.raises(ValueError):
        transform_weights(w, "D")


def test_sample_weights_are_min_max_normalised_mean_distances_within_each_class():
    # class 0: real at 0, 1, 3 (1-d features), generated at 0 and 2: mean distances 1, 1, 2 -> 0, 0, 1
    # class 1: real at 10, 14, generated at 10: distances 0, 4 -> 0, 1
    real = torch.tensor([[0.0], [1.0], [3.0], [10.0], [14.0]])
    real_y = torch.tensor([0, 0, 0, 1, 1])
    fake = torch.tensor([[0.0], [2.0], [10.0]])
    fake_y = torch.tensor([0, 0, 1])
    assert sample_weights(real, real_y, fake, fake_y, "C").tolist() == pytest.approx([0, 0, 1, 0, 1])
    p = sampling_probabilities(sample_weights(real, real_y, fake, fake_y, "C"), real_y)
    # each class keeps its share of the real set (3/5, 2/5); within it, proportional to the weights
    assert p.tolist() == pytest.approx([0, 0, 0.6, 0, 0.4])
    # a class whose weights are all 0 (A_sigma can do that) is drawn uniformly
    p0 = sampling_probabilities(torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]), real_y)
    assert p0.tolist() == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.2])


def test_per_epoch_counts_sum_to_run_totals():
    a, b = FilterCounts([1, 2], [0, 1], [3, 0], [0, 0], 1.0), FilterCounts([4, 0], [1, 1], [0, 0], [0, 1], 2.0)
    history = [{"epoch": 1, **a.metrics()}, {"epoch": 2, **b.metrics()}]
    total = sum_over_epochs(history, a.metrics())
    whole = a.merged(b).metrics()
    # the rejected images' cost is estimated per epoch (at that epoch's cost per image), then summed
    assert total.pop("rejected_generation_s") == a.metrics()["rejected_generation_s"] + b.metrics()["rejected_generation_s"]
    assert total == {k: v for k, v in whole.items() if k != "rejected_generation_s"}
    assert total["filter_accepted"] == [5, 2] and total["generated_images"] == 13


# ---- intra-class MS-SSIM (Slim 2020, Tables 2 and 4) -----------------------------------------------------------


def _images(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)])  # CIFAR-10, Fashion-MNIST
def test_ms_ssim_is_1_for_identical_images_and_torchmetrics_own_value_otherwise(shape):
    a = _images(6, shape, 0)
    noise = torch.randint(-40, 41, a.shape, generator=torch.Generator().manual_seed(1))
    b = (a.int() + noise).clamp(0, 255).to(torch.uint8)
    assert ms_ssim(a, a).tolist() == pytest.approx([1.0] * 6, abs=1e-5)
    # the documented settings: 3 scales with Wang's first weights rescaled to sum 1, a 7-px window of sigma 0.95
    assert MS_SSIM_BETAS == pytest.approx((0.0711, 0.4530, 0.4760), abs=1e-4) and sum(MS_SSIM_BETAS) == pytest.approx(1)
    direct = multiscale_structural_similarity_index_measure(
        a.float() / 255, b.float() / 255, sigma=1.5 * 7 / 11, kernel_size=7, betas=MS_SSIM_BETAS, data_range=1.0,
        reduction="none")
    ours = ms_ssim(a, b)
    assert ours.tolist() == pytest.approx(direct.tolist(), abs=1e-6)
    assert ((ours > 0) & (ours < 1)).all()  # similar images, not identical ones
    assert ms_ssim(a, _images(6, shape, 2)).max() < 0.2  # unrelated noise images


def test_ms_ssim_pairs_are_disjoint_pairs_within_a_class_drawn_from_the_given_stream(monkeypatch):
    # image i carries its index i in its first pixel, so the pairs measured can be traced back to their labels
    y = torch.tensor([0] * 9 + [1] * 5 + [2] * 1)[torch.randperm(15, generator=torch.Generator().manual_seed(0))]
    x = _images(15, (1, 28, 28), 3)
    x[:, 0, 0, 0] = torch.arange(15, dtype=torch.uint8)
    seen = []  # per class measured: (indices of the first images, indices of their partners)

    def recording(a, b, **settings):
        seen.append((a[:, 0, 0, 0].tolist(), b[:, 0, 0, 0].tolist()))
        return ms_ssim(a, b, **settings)

    monkeypatch.setattr(synthetic, "ms_ssim", recording)

    def pairs_of(seed):
        seen.clear()
        means = intra_class_ms_ssim(x, y, 3, 4, torch.Generator().manual_seed(seed))
        return means, list(seen)

    means, pairs = pairs_of(0)
    assert [len(a) for a, _ in pairs] == [4, 2]  # class 0: 4 pairs of its 9 images, class 1: 2 of 5; class 2: none
    for k, (a, b) in enumerate(pairs):
        assert set(y[a].tolist()) == set(y[b].tolist()) == {k}  # never across classes
        assert len(set(a + b)) == 2 * len(a)  # disjoint: each image in one pair at most
    assert math.isnan(means[2]) and not means[:2].isnan().any()
    again, pairs_again = pairs_of(0)
    assert pairs_again == pairs and torch.equal(again[:2], means[:2])  # seeded: the same pairs from the same stream
    assert pairs_of(1)[1] != pairs  # another stream, other pairs


def test_diversity_is_x100_mean_and_population_std_over_the_class_means():
    # class 0: one image repeated (MS-SSIM 1 for every pair); class 1: unrelated noise images (near 0)
    x = torch.cat([_images(1, (3, 32, 32), 4).expand(8, -1, -1, -1), _images(8, (3, 32, 32), 5)])
    y = torch.tensor([0] * 8 + [1] * 8)
    per_class = 100 * intra_class_ms_ssim(x, y, 2, 4, torch.Generator().manual_seed(0)).double()
    out = diversity_metrics(x, y, 2, 4, torch.Generator().manual_seed(0))
    assert per_class[0] == pytest.approx(100, abs=1e-3) and per_class[1] < 20
    assert out[M.MS_SSIM_PER_CLASS] == pytest.approx(per_class.tolist())
    assert out[M.MS_SSIM_MEAN] == pytest.approx(per_class.mean().item())
    assert out[M.MS_SSIM_STD] == pytest.approx(abs(per_class[0] - per_class[1]).item() / 2)  # population std of two


def test_a_profile_cap_on_evaluation_images_caps_the_pairs():
    assert ms_ssim_pairs(200, 0, 10) == 200  # no cap (converge, paper)
    assert ms_ssim_pairs(200, 64, 10) == 3  # smoke: 64 images, 2 per pair, 10 classes
    assert ms_ssim_pairs(200, 2000, 10) == 100 and ms_ssim_pairs(200, 5, 10) == 1


def test_the_concat_block_is_the_gans_concat_twin_and_refused_where_there_is_none():
    from harness.config import ConfigError
    from harness.gan_train import GANConfig
    from harness.synthetic import SyntheticConfig

    cfg = SyntheticConfig(dataset="fashion_mnist", model="lenet", gan=GANConfig(arch="biggan_tiny"), gan_block="concat")
    assert cfg.gan_config().arch == "biggan_tiny_concat" and cfg.gan_config().epochs == cfg.gan.epochs
    assert SyntheticConfig(dataset="fashion_mnist", model="lenet", gan=GANConfig(arch="biggan")).gan_config().arch == "biggan"
    with pytest.raises(ConfigError, match="no concat twin"):
        SyntheticConfig(dataset="fashion_mnist", model="lenet", gan=GANConfig(arch="dcgan_tiny"), gan_block="concat")
