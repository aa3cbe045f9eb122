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
