"""DeGAN's pieces without Ray (Addepalli et al. 2020): the entropy, diversity and KD losses against hand-computed
values, the teacher's view, proxy data (class subsets, conversion, the held-out split, noise), the unconditional
DCGAN, the student's loss hook in the classifier epoch, and the config's checks. The method itself runs end to
end through the registry tests (tests/test_run.py runs addepalli2020.table1 at smoke)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from harness.config import ConfigError
from harness.data import NOISE_IMAGES, Images, Proxy, read_proxy, to_shape
from harness.degan import VARIANTS, diversity_loss, entropy_loss, generator_loss_terms, teacher_view
from harness import metrics as M
from harness.gans import GANS, UNCONDITIONAL_GANS, build_gan
from harness.train import kd_loss, train_epoch

LN2 = math.log(2)


def _logits(*probs) -> torch.Tensor:
    """Logits whose softmax is each row of ``probs`` (log-probabilities)."""
    return torch.log(torch.tensor(probs, dtype=torch.float64))


# ---- Eq. 4: entropy loss ------------------------------------------------------------------------------------

def test_entropy_loss_is_the_mean_entropy_of_each_prediction():
    # [1/2, 1/4, 1/4]: 1/2 ln 2 + 2 * 1/4 ln 4 = 1.5 ln 2 = 1.0397 nats
    assert entropy_loss(_logits([0.5, 0.25, 0.25])).item() == pytest.approx(1.0397207708, abs=1e-9)
    assert entropy_loss(_logits([1 / 3] * 3)).item() == pytest.approx(math.log(3))
    # a confident prediction has (nearly) none; the loss averages over the batch: (ln 2 + 0) / 2
    assert entropy_loss(torch.tensor([[50.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-12)
    assert entropy_loss(torch.tensor([[0.0, 0.0], [50.0, 0.0]])).item() == pytest.approx(LN2 / 2)


# ---- Eq. 5: diversity loss ----------------------------------------------------------------------------------

def test_diversity_loss_is_the_entropy_of_the_batch_mean_prediction():
    # y1 = [0.5, 0.25, 0.25], y2 = [0.1, 0.6, 0.3] -> w = [0.3, 0.425, 0.275]: -sum w ln w = 1.07987 nats
    logits = _logits([0.5, 0.25, 0.25], [0.1, 0.6, 0.3])
    assert diversity_loss(logits).item() == pytest.approx(1.0798705879, abs=1e-9)
    # two confident images of different classes spread the batch evenly (ln 2); of one class, not at all
    spread, same = torch.tensor([[50.0, 0.0], [0.0, 50.0]]), torch.tensor([[50.0, 0.0], [50.0, 0.0]])
    assert diversity_loss(spread).item() == pytest.approx(LN2)
    assert diversity_loss(same).item() == pytest.approx(0.0, abs=1e-12)
    assert torch.isfinite(diversity_loss(torch.tensor([[1e4, 0.0]])))  # w_k = 0 contributes 0, not nan


def test_generator_terms_follow_eq7_signs():
    """L_G = L_adv + lambda_e * L_entropy - lambda_d * L_diversity: confident and spread batches cost least."""
    logits = _logits([0.5, 0.25, 0.25], [0.1, 0.6, 0.3])
    expected = 2.0 * entropy_loss(logits) - 5.0 * diversity_loss(logits)
    assert generator_loss_terms(logits, 2.0, 5.0).item() == pytest.approx(expected.item())
    confident_spread = torch.tensor([[50.0, 0.0], [0.0, 50.0]])
    confident_same = torch.tensor([[50.0, 0.0], [50.0, 0.0]])
    unsure = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    costs = [generator_loss_terms(x, 1.0, 1.0).item() for x in (confident_spread, confident_same, unsure)]
    assert costs[0] == pytest.approx(-LN2) and costs[1] == pytest.approx(0.0, abs=1e-9)
    assert costs[2] == pytest.approx(LN2 - LN2)  # unsure but spread: entropy ln 2, diversity ln 2
    assert costs[0] < costs[1] and costs[0] < costs[2]


def test_generator_terms_move_g_towards_confident_and_balanced_images():
    """One gradient step on logits that favour class 0 everywhere: the diversity term pulls the batch towards
    the other class, the entropy term makes each row more confident."""
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    generator_loss_terms(logits, 0.0, 1.0).backward()
    assert (logits.grad[:, 0] > 0).all() and (logits.grad[:, 1] < 0).all()  # descent lowers class 0
    logits.grad = None
    generator_loss_terms(logits, 1.0, 0.0).backward()
    assert (logits.grad[:, 0] < 0).all()  # descent raises the leading class: more confident


# ---- Hinton's KD loss ---------------------------------------------------------------------------------------

def test_kd_loss_against_hand_computed_values():
    s = torch.tensor([[0.0, 0.0]])  # the student: uniform
    t = torch.tensor([[math.log(3), 0.0]])  # the teacher: [3/4, 1/4] at T = 1
    # T = 1: KL([3/4, 1/4] || [1/2, 1/2]) = 3/4 ln 3/2 + 1/4 ln 1/2 = 0.130812
    assert kd_loss(s, t, temperature=1.0, weight=1.0).item() == pytest.approx(0.1308120359, abs=1e-7)
    # T = 2: the teacher softens to [sqrt3, 1] / (sqrt3 + 1); KL = 0.0363408, times T^2 = 4: 0.145363
    assert kd_loss(s, t, temperature=2.0, weight=1.0).item() == pytest.approx(0.1453631315, abs=1e-6)
    # weight 1/2: half of that, plus half the cross-entropy with the teacher's argmax (class 0): ln 2
    assert kd_loss(s, t, 2.0, 0.5).item() == pytest.approx(0.5 * 0.1453631315 + 0.5 * LN2, abs=1e-6)
    # weight 0: the hard term alone
    assert kd_loss(s, t, 2.0, 0.0).item() == pytest.approx(LN2, abs=1e-7)


def test_kd_loss_is_zero_on_agreement_and_averages_over_the_batch():
    t = torch.tensor([[2.0, -1.0, 0.5]])
    assert kd_loss(t.clone(), t, 20.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.tensor([[0.0, 0.0]])
    one = kd_loss(s, torch.tensor([[math.log(3), 0.0]]), 1.0, 1.0)
    batch = kd_loss(s.repeat(2, 1), torch.tensor([[math.log(3), 0.0], [0.0, 0.0]]), 1.0, 1.0)
    assert batch.item() == pytest.approx(one.item() / 2)  # the second pair agrees: (0.1308 + 0) / 2


def test_student_epoch_trains_on_teacher_logits_and_reports_agreement():
    """train_epoch with a loss hook: the target is the teacher's logits, train accuracy the agreement."""
    torch.manual_seed(0)
    student = torch.nn.Linear(4, 3)
    teacher = torch.nn.Linear(4, 3)
    x = torch.randn(64, 4)
    with torch.no_grad():
        t = teacher(x)
    opt = torch.optim.Adam(student.parameters(), lr=0.05)
    loss_fn = lambda logits, target: kd_loss(logits, target, 4.0, 1.0)  # noqa: E731
    first = train_epoch(student, opt, [(x, t)], loss_fn)
    for _ in range(100):
        last = train_epoch(student, opt, [(x, t)], loss_fn)
    assert last["train_loss"] < first["train_loss"] / 10
    with torch.no_grad():
        agree = 100.0 * (student(x).argmax(1) == t.argmax(1)).float().mean().item()
    assert last["train_acc"] > 90 and agree > 90


# ---- the teacher's view -------------------------------------------------------------------------------------

def test_teacher_view_counts_balance_and_confidence():
    identity = torch.nn.Identity()  # the "images" are the logits themselves
    balanced = torch.tensor([[9.0, 0.0], [0.0, 9.0], [9.0, 0.0], [0.0, 0.1]])
    view = teacher_view(identity, balanced)
    assert view[M.KD_SOURCE_HISTOGRAM] == [2, 2]
    assert view[M.KD_SOURCE_BALANCE] == pytest.approx(100.0)
    assert view[M.KD_SOURCE_CONFIDENT] == pytest.approx(75.0)  # the last row's p is 0.525 <= 0.9
    one_class = teacher_view(identity, torch.tensor([[9.0, 0.0, 0.0]] * 5))
    assert one_class[M.KD_SOURCE_HISTOGRAM] == [5, 0, 0] and one_class[M.KD_SOURCE_BALANCE] == pytest.approx(0.0)
    # 3 of 4 in one class, 1 in the other: 100 * H([3/4, 1/4]) / ln 2 = 81.13
    skew = teacher_view(identity, torch.tensor([[9.0, 0.0]] * 3 + [[0.0, 9.0]]))
    assert skew[M.KD_SOURCE_BALANCE] == pytest.approx(100 * (-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))) / LN2)


# ---- proxy data ---------------------------------------------------------------------------------------------

def _cache(tmp_path, channels=3, size=32, per_class=10, classes=("cat", "dog", "ship", "truck")):
    g = torch.Generator().manual_seed(0)
    n = per_class * len(classes)
    x = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % len(classes)
    images = Images(x, y, x[:4], y[:4], tuple(classes), "toy (rgb)")
    path = tmp_path / "toy.pt"
    torch.save({f.name: getattr(images, f.name) for f in dataclasses.fields(images)}, path)
    return path, images


def test_proxy_class_subset_is_renumbered_in_the_spec_order_and_converted(tmp_path):
    path, images = _cache(tmp_path)
    proxy = read_proxy(Proxy("cifar10", ("ship", "cat")), str(path), (1, 28, 28), pool=0, seed=0)
    assert proxy.train_x.shape[1:] == (1, 28, 28) and proxy.train_x.dtype == torch.uint8
    assert len(proxy.train_y) == 16 and len(proxy.val_y) == 4  # 20 images of 2 classes, 20% held out
    assert sorted(proxy.train_y.unique().tolist()) == [0, 1]
    # "ship" is proxy class 0: its images are the source's class 2, converted
    ships = images.train_x[images.train_y == 2]
    assert any(torch.equal(to_shape(ships[i:i + 1], (1, 28, 28))[0], proxy.train_x[proxy.train_y == 0][0])
               for i in range(len(ships)))
    assert "2 classes (ship, cat)" in proxy.label and "grayscale" in proxy.label and "28x28" in proxy.label


def test_proxy_split_is_seeded_disjoint_and_pooled(tmp_path):
    path, _ = _cache(tmp_path, per_class=50)
    a = read_proxy(Proxy("cifar10"), str(path), (3, 32, 32), pool=0, seed=0)
    assert len(a.train_y) == 160 and len(a.val_y) == 40 and a.label == "toy (rgb)"  # no conversion needed
    again, other = (read_proxy(Proxy("cifar10"), str(path), (3, 32, 32), 0, s) for s in (0, 1))
    assert again.split_hash == a.split_hash and other.split_hash != a.split_hash
    pooled = read_proxy(Proxy("cifar10"), str(path), (3, 32, 32), pool=100, seed=0)
    assert len(pooled.train_y) + len(pooled.val_y) == 100


def test_proxy_unknown_class_and_noise(tmp_path):
    from harness.data import DataError

    path, _ = _cache(tmp_path)
    with pytest.raises(DataError, match="no class horse"):
        read_proxy(Proxy("cifar10", ("horse",)), str(path), (1, 28, 28), 0, 0)
    noise = read_proxy(Proxy("noise"), None, (1, 28, 28), pool=200, seed=0)
    assert len(noise.train_y) + len(noise.val_y) == 200 and noise.train_x.shape[1:] == (1, 28, 28)
    assert torch.equal(noise.train_x, read_proxy(Proxy("noise"), None, (1, 28, 28), 200, 0).train_x)  # fixed draw
    assert read_proxy(Proxy("noise"), None, (1, 28, 28), 0, 0).train_y.numel() == round(0.8 * NOISE_IMAGES)
    with pytest.raises(ConfigError):
        Proxy("noise", ("sea",))
    with pytest.raises(ConfigError):
        Proxy("no_such_dataset")
    assert Proxy("noise").datasets == () and Proxy("cifar10").datasets == ("cifar10",)


def test_to_shape_converts_channels_and_size():
    grey = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    rgb = to_shape(grey, (3, 32, 32))
    assert rgb.shape == (2, 3, 32, 32) and (rgb == 200).all()
    back = to_shape(torch.full((1, 3, 32, 32), 100, dtype=torch.uint8), (1, 28, 28))
    assert back.shape == (1, 1, 28, 28) and (back == 100).all()  # equal channels: luma of grey is grey


# ---- the unconditional generator ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(UNCONDITIONAL_GANS))
def test_unconditional_gans_ignore_labels(name):
    assert name in GANS
    torch.manual_seed(0)
    gan = build_gan(name, 1, 28, 10)
    assert not gan.conditional and build_gan("dcgan_tiny", 1, 28, 10).conditional
    gan.generator.eval()
    gan.discriminator.eval()
    z = torch.randn(3, gan.z_dim)
    images = gan.generator(z, torch.tensor([0, 1, 2]))
    assert torch.equal(images, gan.generator(z, torch.tensor([9, 9, 9]))) and torch.equal(images, gan.generator(z))
    assert torch.equal(gan.discriminator(images, torch.tensor([0, 1, 2])), gan.discriminator(images))


# ---- the config ---------------------------------------------------------------------------------------------

def test_config_checks_and_teacher_config():
    from trainables.degan import DeganConfig

    cfg = DeganConfig(dataset="fashion_mnist", seed=3, train_pool=2000, model="lenet_half", teacher_model="lenet",
                      teacher_epochs=7, teacher_patience=2, max_eval_images=128, **VARIANTS["code"])
    teacher = cfg.teacher_config()
    assert (teacher.model, teacher.seed, teacher.fraction, teacher.val_fraction, teacher.train_pool) == \
           ("lenet", 3, 0.8, 0.2, 2000)
    assert (teacher.epochs, teacher.patience, teacher.max_eval_images, teacher.test_every_epoch) == (7, 2, 128, False)
    assert cfg.other_datasets == ("cifar10",)
    assert dataclasses.replace(cfg, kd_source="teacher").other_datasets == ()
    assert dataclasses.replace(cfg, proxy=Proxy("noise")).other_datasets == ()
    for bad in ({"kd_source": "gan"}, {"selection": "test"}, {"lambda_e": -1.0}, {"temperature": 0.0},
                {"kd_weight": 1.5}, {"teacher_model": "vgg"}, {"gan": dataclasses.replace(cfg.gan, arch="dcgan")}):
        with pytest.raises(ConfigError):
            dataclasses.replace(cfg, **bad)
    # the variants differ in the entropy loss only (the released code's c_l = 0)
    assert {k for k in VARIANTS["code"] if VARIANTS["code"][k] != VARIANTS["paper"][k]} == {"lambda_e"}


def test_one_dataset_trials_keep_their_identity_data_key():
    """A proxy joins the data part of a trial's identity; a one-dataset trial's is its fingerprint as before."""
    from harness.launch import data_key
    from harness.train import ClassifierConfig
    from trainables.degan import DeganConfig

    info = {"fashion_mnist": {"fingerprint": "f"}, "cifar10": {"fingerprint": "c"}}
    assert data_key(ClassifierConfig(dataset="fashion_mnist"), info) == "f"
    assert data_key(DeganConfig(dataset="fashion_mnist", model="lenet_half", teacher_model="lenet"), info) == "f+c"
