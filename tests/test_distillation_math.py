"""Small numeric tests of GAN distillation's two pieces of math (Pennisi 2021, Algorithm 1 and Eq. 5)."""

from __future__ import annotations

import math

import torch

from trainables.gan_distillation import TripletSampler, diversity, hard_easy_split, triplet_loss


def test_hard_easy_split_by_correctness_and_confidence():
    probs = torch.tensor([[0.9, 0.1],    # correct, confident        -> easy
                          [0.6, 0.4],    # correct, exactly p_h      -> hard (confidence <= p_h)
                          [0.55, 0.45],  # correct, below p_h        -> hard
                          [0.2, 0.8]])   # wrong (label 0), confident -> hard
    labels = torch.tensor([0, 0, 0, 0])
    assert hard_easy_split(probs, labels, p_h=0.6).tolist() == [False, True, True, True]
    assert hard_easy_split(probs, labels, p_h=0.5).tolist() == [False, False, False, True]


def test_triplet_loss_on_unit_normalised_features():
    a = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[2.0, 0.0]])   # same direction: distance 0 after normalising
    n = torch.tensor([[0.0, 3.0]])   # orthogonal: distance sqrt(2)
    assert torch.isclose(triplet_loss(a, p, n, margin=1.0), torch.tensor(0.0))  # 0 - 1.414 + 1 < 0
    assert torch.isclose(triplet_loss(a, p, n, margin=2.0), torch.tensor(2.0 - math.sqrt(2)))
    # swapped roles: the anchor is far from the positive and close to the negative
    assert torch.isclose(triplet_loss(a, n, p, margin=1.0), torch.tensor(math.sqrt(2) + 1.0))
    # the mean runs over valid anchors only; none valid gives 0 with a gradient path
    a2 = torch.cat([a, a]).requires_grad_()
    loss = triplet_loss(a2, torch.cat([n, p]), torch.cat([p, n]), 1.0, valid=torch.tensor([True, False]))
    assert torch.isclose(loss, torch.tensor(math.sqrt(2) + 1.0))
    none = triplet_loss(a2, torch.cat([n, p]), torch.cat([p, n]), 1.0, valid=torch.tensor([False, False]))
    assert none.item() == 0.0 and none.requires_grad


def test_triplet_sampler_draws_same_class_hard_and_easy_and_masks_classes_without_them():
    y = torch.tensor([0, 0, 0, 1, 1])
    x = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 1, 2, 2).contiguous()
    hard = torch.tensor([True, False, False, True, True])  # class 1 has no easy sample
    sampler = TripletSampler(x, y, hard, ~hard, num_classes=2)
    assert sampler.classes_without_triplet == 1
    pos, neg, valid = sampler.draw(torch.tensor([0, 0, 1]), torch.Generator().manual_seed(0))
    assert valid.tolist() == [True, True, False]
    to_index = lambda img: int(round((img[0, 0, 0].item() + 1) * 127.5))  # back from [-1, 1]
    assert all(to_index(pos[i]) == 0 for i in range(2))      # the only hard sample of class 0
    assert all(to_index(neg[i]) in (1, 2) for i in range(2))  # an easy sample of class 0


def test_diversity_is_the_mean_pairwise_distance_per_class():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0],   # class 0: distances 5, 8, 5
                      [1.0, 1.0], [1.0, 1.0],               # class 1: identical images (collapse)
                      [2.0, 2.0]])                          # class 2: one image, no pair
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    d = diversity(x, y, num_classes=4)
    assert torch.allclose(d[:2], torch.tensor([6.0, 0.0])) and d[2:].isnan().all()
    assert diversity(x, y, num_classes=4, per_class=2)[0] == 5.0  # the first two images of the class


# ---- Algorithm 1's classifier epoch, the compute-matched control and early stopping (issue 8) ----

from harness import metrics as M  # noqa: E402
from harness.train import ClassifierConfig, paired_batches, paired_steps, stop_early  # noqa: E402


def _algorithm1_epoch(n: int, batch_size: int, p_r: float, real_only: bool = False):
    """One epoch over n real images whose pixel value is their index, fakes marked -1."""
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    y = torch.arange(n) % 3
    cfg = ClassifierConfig(dataset="fashion_mnist", batch_size=batch_size, crop_padding=0, flip=False)
    fake = lambda labels: torch.full((len(labels), 1, 2, 2), -5.0)  # outside [-1, 1]: a generated image
    return list(paired_batches(x, y, cfg, p_r, fake, torch.Generator().manual_seed(0), real_only)), x, y


def _index(xb: torch.Tensor) -> torch.Tensor:
    """The real image's index back from its [-1, 1] pixel (to_float maps v to v / 127.5 - 1)."""
    return ((xb[:, 0, 0, 0] + 1) * 127.5).round().long()


def test_algorithm1_epoch_uses_every_real_sample_once_with_paired_labels():
    for p_r in (0.5, 0.75, 0.25):
        got, x, y = _algorithm1_epoch(n=50, batch_size=8, p_r=p_r)
        n_real = round(p_r * 8)
        assert len(got) == paired_steps(50, 8, p_r) == math.ceil(50 / n_real)
        seen = []
        for xb, yb in got:
            is_fake = xb[:, 0, 0, 0] == -5.0
            real_idx = _index(xb[~is_fake])
            seen += real_idx.tolist()
            assert torch.equal(yb[~is_fake], y[real_idx])  # real images keep their labels
            # [generated, real]; generated labels are the real ones' labels, repeated in order
            k = int((~is_fake).sum())
            assert is_fake[:len(yb) - k].all() and not is_fake[len(yb) - k:].any()
            expected = y[real_idx].repeat(8)[:int(is_fake.sum())]
            assert torch.equal(yb[is_fake], expected)
            if len(yb) == 8:  # full batches hold exactly round(p_r B) real images
                assert k == n_real
        assert sorted(seen) == list(range(50))  # every real sample exactly once per epoch


def test_algorithm1_extremes_and_the_compute_matched_control():
    got, _, _ = _algorithm1_epoch(n=50, batch_size=8, p_r=1.0)  # all real: the baseline's epoch
    assert len(got) == math.ceil(50 / 8) and all((xb[:, 0, 0, 0] != -5.0).all() for xb, _ in got)
    got, _, y = _algorithm1_epoch(n=50, batch_size=8, p_r=0.0)  # all generated: one pass of labels
    assert len(got) == math.ceil(50 / 8) and all((xb[:, 0, 0, 0] == -5.0).all() for xb, _ in got)
    assert sorted(torch.cat([yb for _, yb in got]).tolist()) == sorted(y.tolist())
    # the control: as many steps of the same batch size as distillation's epoch at p_r = 0.5, all real
    control, _, _ = _algorithm1_epoch(n=50, batch_size=8, p_r=0.5, real_only=True)
    distil, _, _ = _algorithm1_epoch(n=50, batch_size=8, p_r=0.5)
    assert len(control) == len(distil) == paired_steps(50, 8, 0.5) == 13
    assert [len(yb) for _, yb in control] == [len(yb) for _, yb in distil]
    assert all((xb[:, 0, 0, 0] != -5.0).all() for xb, _ in control)
    # at p_r = 0.5 a stage-3 epoch (and so the control's) has about twice a baseline epoch's steps
    assert (paired_steps(4000, 128, 0.5), paired_steps(4000, 128, 1.0)) == (63, 32)


def test_early_stopping_rule():
    def hist(accs):
        return [{M.EPOCH: i + 1, M.VAL_ACC: a} for i, a in enumerate(accs)]
    assert not stop_early(hist([50, 60, 61, 61, 60]), patience=0)  # off
    assert not stop_early(hist([50, 60, 61, 61, 60]), patience=3)  # best at 3, last 5: 2 epochs without gain
    assert stop_early(hist([50, 60, 61, 61, 60, 59]), patience=3)  # 3 epochs without a gain (a tie is none)
    assert not stop_early(hist([50, 60, 61, 61, 60, 62]), patience=3)  # improved again
    assert stop_early(hist([50, float("nan"), 49]), patience=2)  # a diverged epoch never counts as best
