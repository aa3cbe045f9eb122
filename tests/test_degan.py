"""DeGAN's pieces without Ray (Addepalli et al. 2020): the entropy, diversity and KD losses against hand-computed
values, the teacher's view, proxy data (class subsets, conversion, the held-out split, noise), the unconditional
DCGAN, the student's loss hook in the classifier epoch, and the config's checks. Class-incremental learning (Table
3): the logit-scaling term, LwF.MC's binary cross-entropy, the KD step's loss, the grown head, the class draw and
the config. The methods themselves run end to end through the registry tests (tests/test_run.py runs every table
at smoke)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from harness.config import ConfigError
from harness.data import NOISE_IMAGES, Images, Proxy, read_proxy, to_float, to_shape
from harness.degan import VARIANTS, diversity_loss, entropy_loss, generator_loss_terms, teacher_view
from harness import metrics as M
from harness.gans import GANS, UNCONDITIONAL_GANS, build_gan
from harness.train import kd_loss, train_epoch

LN2 = math.log(2)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread, restored after


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


def test_agreement_split_scores_the_student_against_the_teachers_argmax_on_the_given_images():
    """The student's selection set (proxy_agreement: held-out proxy images; generator_agreement: G's images): the
    given uint8 images, each labelled with the teacher's argmax; the rest of the cell's data untouched."""
    from harness.train import CellData
    from trainables.degan import DeganConfig, agreement_split

    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    x = torch.randint(0, 256, (12, 1, 4, 4), dtype=torch.uint8)
    blank = torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.long)
    data = CellData(*blank, *blank, *blank, shape=(1, 4, 4), num_classes=3, split_hash="s", data_key="d")
    cfg = DeganConfig(dataset="fashion_mnist", model="lenet_half", teacher_model="lenet", max_eval_images=0,
                      selection="generator_agreement")
    out = agreement_split(cfg, teacher, x, data)
    expected = teacher(to_float(x)).argmax(1)
    assert torch.equal(out.val_x, x) and torch.equal(out.val_y, expected)
    assert len(set(expected.tolist())) > 1  # the labels come from the teacher, not a constant
    assert out.train_x is data.train_x and out.test_y is data.test_y


# ---- class-incremental learning (Sec. 5.2, Table 3; trainables/class_incremental.py) -------------------------

def _grown_head(old_rows, new_rows) -> "torch.nn.Module":
    """A GrownHead whose weight rows are ``old_rows`` then ``new_rows`` (no biases)."""
    from trainables.class_incremental import GrownHead

    old = torch.nn.Linear(len(old_rows[0]), len(old_rows), bias=False)
    head = GrownHead(old, len(new_rows), frozen_old=False)
    with torch.no_grad():
        old.weight.copy_(torch.tensor(old_rows))
        head.new.weight.copy_(torch.tensor(new_rows))
        head.new.bias.zero_()
    return head


def test_logit_scale_loss_is_the_squared_gap_of_mean_row_norms():
    from trainables.class_incremental import logit_scale_loss

    # old rows (3, 4) and (0, 1): norms 5 and 1, mean 3; the new row (6, 8): norm 10 -> (10 - 3)^2 = 49
    weight = torch.tensor([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])
    assert logit_scale_loss(weight, 2).item() == pytest.approx(49.0)
    # equal mean norms cost nothing, whatever the directions; the gap is squared, so its sign does not matter
    assert logit_scale_loss(torch.tensor([[3.0, 4.0], [0.0, 5.0], [-5.0, 0.0]]), 2).item() == pytest.approx(0.0)
    assert logit_scale_loss(torch.tensor([[6.0, 8.0], [3.0, 4.0]]), 1).item() == pytest.approx(25.0)
    # GrownHead.weight: the old rows first, then the new ones
    assert torch.equal(_grown_head([[3.0, 4.0], [0.0, 1.0]], [[6.0, 8.0]]).weight, weight)


def test_lwf_mc_loss_against_hand_computed_values():
    """Per class a binary cross-entropy: old classes against the old model's sigmoid, new ones against the label."""
    from trainables.class_incremental import Target, lwf_mc_loss

    # O = 1 old class, 1 new; all logits 0: each of the two terms is ln 2
    zeros = Target(torch.tensor([1]), torch.tensor([[0.0]]), 1, 0)
    assert lwf_mc_loss(torch.tensor([[0.0, 0.0]]), zeros).item() == pytest.approx(2 * LN2)
    # z = [2, -1], the old model's logit ln 3 (sigmoid 3/4), label 1 (the new class):
    # old: 3/4 softplus(-2) + 1/4 softplus(2) = softplus(-2) + 1/2 = 0.626928; new: softplus(1) = 1.313262
    target = Target(torch.tensor([1]), torch.tensor([[math.log(3)]]), 1, 0)
    assert lwf_mc_loss(torch.tensor([[2.0, -1.0]]), target).item() == pytest.approx(1.9401896985, abs=1e-7)
    # averaged over the batch, summed over the classes
    two = Target(torch.tensor([1, 1]), torch.tensor([[math.log(3)], [0.0]]), 2, 0)
    assert lwf_mc_loss(torch.tensor([[2.0, -1.0], [0.0, 0.0]]), two).item() == \
           pytest.approx((1.9401896985 + 2 * LN2) / 2, abs=1e-7)
    # an old logit equal to the old model's is not pulled (distillation's gradient sigma(z) - sigma(z_old) = 0);
    # the new class's is pulled up towards its label
    z = torch.tensor([[math.log(3), 0.0]], requires_grad=True)
    lwf_mc_loss(z, target).backward()
    assert z.grad[0, 0].item() == pytest.approx(0.0, abs=1e-7) and z.grad[0, 1].item() == pytest.approx(-0.5)


def test_incremental_loss_adds_ce_kd_and_the_scaling_term_on_their_rows():
    """CE over the new classes' logits on the real rows, KD over the old classes' on the distillation rows, and
    the scaling term of the head (O = 2 old classes, N = 2 new ones)."""
    from trainables.class_incremental import Target, incremental_loss

    # old rows (3, 4), (0, 1): mean norm 3; new rows (6, 8), (0, 0): mean norm 5 -> L_scale = (5 - 3)^2 = 4
    head = _grown_head([[3.0, 4.0], [0.0, 1.0]], [[6.0, 8.0], [0.0, 0.0]])
    # CE of the new logits [0, 0] with label 2 (the first new class): ln 2; the old logits [1, 0] equal the old
    # model's: KD 0
    agree = Target(torch.tensor([2]), torch.tensor([[1.0, 0.0]]), 1, 0)
    loss = incremental_loss(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), agree, head, temperature=2.0, kd_weight=1.0,
                            scale_weight=0.5)
    assert loss.item() == pytest.approx(LN2 + 0.5 * 4, abs=1e-6)
    # the CE term does not read the old logits: without KD and the scaling term, any old logits give ln 2
    loss = incremental_loss(torch.tensor([[9.0, -9.0, 0.0, 0.0]]), agree, head, 2.0, kd_weight=0.0, scale_weight=0.0)
    assert loss.item() == pytest.approx(LN2, abs=1e-6)
    # KD at T = 1 of old logits [0, 0] against [ln 3, 0]: 0.130812 (test_kd_loss_...), weighted 2
    proxy = Target(torch.tensor([3]), torch.tensor([[math.log(3), 0.0]]), 1, 0)
    loss = incremental_loss(torch.zeros(1, 4), proxy, head, temperature=1.0, kd_weight=2.0, scale_weight=0.0)
    assert loss.item() == pytest.approx(LN2 + 2 * 0.1308120359, abs=1e-6)  # float32
    # the temperature reaches the KD term: at T = 2 the soft term of old logits [0, 0] against [ln 9, 0] is
    # T^2 KL(softmax([ln 9, 0] / 2) = [3/4, 1/4] || [1/2, 1/2]) = 4 (3/4 ln 3/2 + 1/4 ln 1/2) = 0.5232481
    hot = Target(torch.tensor([3]), torch.tensor([[math.log(9), 0.0]]), 1, 0)
    loss = incremental_loss(torch.zeros(1, 4), hot, head, temperature=2.0, kd_weight=1.0, scale_weight=0.0)
    assert loss.item() == pytest.approx(LN2 + 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5)), abs=1e-6)
    # DeGAN's batch: row 0 a new image (CE only), row 1 a generated one (KD only, its new-class logits unread)
    degan = Target(torch.tensor([2, 0]), torch.tensor([[math.log(3), 0.0]]), 1, 1)
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 5.0, -5.0]])
    loss = incremental_loss(logits, degan, head, temperature=1.0, kd_weight=1.0, scale_weight=0.0)
    assert loss.item() == pytest.approx(LN2 + 0.1308120359, abs=1e-6)


def test_grown_model_keeps_the_old_logits_and_fixed_representation_trains_new_rows_only():
    from harness.models import build_classifier
    from trainables.class_incremental import grow

    torch.manual_seed(0)
    old = build_classifier("resnet8", 3, 32, 4).eval().requires_grad_(False)  # BatchNorm in the body
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        before = old(x)
    grown = grow(old, 3).eval()
    with torch.no_grad():
        logits = grown(x)
    assert logits.shape == (6, 7) and torch.equal(logits[:, :4], before)  # bit for bit, before training
    assert all(p.requires_grad for p in grown.parameters())  # finetuning: every weight learns
    # the fixed representation: only the new head rows learn; BatchNorm keeps the old statistics in train mode
    fixed = grow(old, 3, fixed_representation=True)
    learn = {name for name, p in fixed.named_parameters() if p.requires_grad}
    assert learn == {"head.new.weight", "head.new.bias"}
    opt = torch.optim.SGD([p for p in fixed.parameters() if p.requires_grad], lr=1.0)
    with torch.no_grad():
        new_before = fixed.eval()(x)[:, 4:]  # this model's own new rows, before its step
    fixed.train()
    torch.nn.functional.cross_entropy(fixed(x), torch.tensor([4, 5, 6, 4, 5, 6])).backward()
    opt.step()
    fixed.eval()
    with torch.no_grad():
        after = fixed(x)
    assert torch.equal(after[:, :4], before) and not torch.equal(after[:, 4:], new_before)
    with torch.no_grad():
        assert torch.equal(old(x), before)  # the old model is a copy, untouched


def test_train_epoch_scores_a_tuple_target_on_its_labels():
    """A target tuple: train accuracy reads its first item (the labels), the loss all of it."""
    from trainables.class_incremental import Target, lwf_mc_loss

    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # logits = x
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    target = Target(torch.tensor([1, 1]), torch.zeros(2, 1), 2, 0)
    stats = train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0), [(x, target)], lwf_mc_loss)
    assert stats["train_acc"] == pytest.approx(50.0) and stats["images"] == 2
    assert stats["train_loss"] == pytest.approx(lwf_mc_loss(x, target).item())


def test_class_split_is_a_seeded_draw_of_disjoint_groups():
    from trainables.class_incremental import ClassIncrementalConfig, class_split

    cfg = ClassIncrementalConfig(dataset="cifar10", model="lenet", old_classes=5, new_classes=4, seed=0)
    old, new = class_split(cfg, 10)
    assert len(old) == 5 and len(new) == 4 and not set(old) & set(new) and list(old) == sorted(old)
    assert class_split(cfg, 10) == (old, new)  # seeded
    draws = {class_split(dataclasses.replace(cfg, seed=s), 10) for s in range(5)}
    assert len(draws) > 1  # class_seed -1: each trial seed draws its own classes
    fixed = {class_split(dataclasses.replace(cfg, seed=s, class_seed=7), 10) for s in range(5)}
    assert len(fixed) == 1  # a class_seed fixes one draw for every seed
    with pytest.raises(ConfigError):
        class_split(dataclasses.replace(cfg, new_classes=6), 10)


def test_by_class_renumbers_old_then_new_and_tests_every_class_seen():
    from harness.train import CellData
    from trainables.class_incremental import ClassIncrementalConfig, by_class

    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    x = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 1, 2, 2).contiguous()  # image i: pixels i
    full = CellData(x, y, x, y, x, y, (1, 2, 2), 4, "split", "data")
    cfg = ClassIncrementalConfig(dataset="cifar10", model="lenet", old_classes=2, new_classes=1, max_eval_images=0)
    old_data, new_data = by_class(cfg, full, (1, 3), (0,))  # class 2 is in neither group
    assert old_data.train_y.tolist() == [0, 1, 0, 1] and old_data.train_x[:, 0, 0, 0].tolist() == [1, 3, 5, 7]
    assert old_data.num_classes == 2 and old_data.test_y.tolist() == [0, 1, 0, 1]
    assert new_data.train_y.tolist() == [2, 2] and new_data.train_x[:, 0, 0, 0].tolist() == [0, 4]
    assert new_data.num_classes == 3 and new_data.val_y.tolist() == [2, 2]  # new_val: the new classes only
    assert new_data.test_y.tolist() == [2, 0, 1, 2, 0, 1]  # every class seen, none other
    assert old_data.data_key != new_data.data_key and "data" in old_data.data_key
    # another draw of the classes is other data: its stages (old model, generator) never share a key with these
    other_old, other_new = by_class(cfg, full, (0, 3), (1,))
    assert other_old.data_key != old_data.data_key and other_new.data_key != new_data.data_key
    _, oracle = by_class(dataclasses.replace(cfg, selection="all_val"), full, (1, 3), (0,))
    assert oracle.val_y.tolist() == [2, 0, 1, 2, 0, 1]


def test_class_incremental_config_checks_and_old_config():
    from harness.train import ClassifierConfig
    from trainables.class_incremental import ClassIncrementalConfig

    cfg = ClassIncrementalConfig(dataset="cifar10", model="lenet", seed=2, train_pool=1000, old_classes=5,
                                 new_classes=5, patience=3)
    old = cfg.old_config()
    assert type(old) is ClassifierConfig and not old.test_every_epoch
    assert (old.model, old.seed, old.train_pool, old.patience, old.lr) == ("lenet", 2, 1000, 3, cfg.lr)
    assert (ClassIncrementalConfig().dataset, ClassIncrementalConfig().model) == ("cifar100", "resnet32")
    for bad in ({"strategy": "icarl"}, {"selection": "test"}, {"old_classes": 1}, {"new_classes": 0},
                {"class_seed": -2}, {"test_every_epoch": True}, {"temperature": 0.0}, {"kd_weight": -1.0},
                {"scale_weight": -0.1}, {"lambda_d": -1.0}, {"gan": dataclasses.replace(cfg.gan, arch="dcgan")}):
        with pytest.raises(ConfigError):
            dataclasses.replace(cfg, **bad)


def test_group_accuracy_splits_the_test_images_into_old_and_new_classes():
    """Old classes 0..O-1, new O..: a model that always predicts old class 0 is right on old class 0's images only."""
    from harness import metrics as M
    from harness.train import CellData
    from trainables.class_incremental import group_accuracy

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0, 0.0]))  # always class 0
    x = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    data = CellData(x, torch.tensor([0, 1, 2, 2]), x, torch.tensor([0, 1, 2, 2]), x.float(),
                    torch.tensor([0, 1, 2, 2]), (1, 2, 2), 3, "split", "data")
    out = group_accuracy(model, {"model": model.state_dict()}, data, n_old=2, batch_size=2)
    assert out[M.TEST_ACC_OLD_CLASSES] == pytest.approx(50.0) and out[M.TEST_ACC_NEW_CLASSES] == pytest.approx(0.0)
    assert all(math.isnan(v) for v in group_accuracy(model, None, data, 2, 2).values())  # diverged: no weights
