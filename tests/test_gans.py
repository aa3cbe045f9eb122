"""The GAN zoo, DiffAugment and the GAN training loop; parametrised over the registry, so a new GAN needs no
new test. Budgets are tiny (batch 4, two D and two G steps per epoch) because the full CIFAR BigGAN trains
at about 4 images/s on one CPU thread."""

import copy

import pytest
import torch

from harness.config import ConfigError
from harness.diffaugment import diff_augment
from harness.gan_train import (D_LOSS, DIVERGED, EXTRA_LOSS, G_LOSS, G_STEPS, IMAGES, STEPS, GANConfig,
                               GANState, gan_epoch, hinge_d_loss, hinge_g_loss)
from harness.gans import EMA, GANS, DBlock, GBlock, build_gan, count_parameters, sample, sample_z
from harness.registry import UnknownName


SHAPES = [(1, 28), (3, 32)]
SHAPE_IDS = ["1x28x28", "3x32x32"]
NUM_CLASSES = 10
N_IMAGES = 64
# NOTE: batch 16 would cost the full BigGAN ~9 s per epoch here (3.6 images/s at 3x32x32, one thread); batch
# 4 keeps the whole file well under a minute. Two batches per epoch still exercise the optimiser state.
BATCH = 4
MAX_BATCHES = 2
# The training tests run these full-width GANs as their tiny twin (the same modules at ch = 8; the twin test
# below checks that): one epoch plus a round trip of biggan_concat costs ~21 s here, biggan_tiny_concat ~1 s.
TRAIN_TWIN = {"biggan_concat": "biggan_tiny_concat"}
TRAIN_ARCHS = [n for n in GANS if n not in TRAIN_TWIN]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: 1 thread, restored after


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _data(channels: int, size: int):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (N_IMAGES, channels, size, size), dtype=torch.uint8, generator=g)
    y = torch.randint(0, NUM_CLASSES, (N_IMAGES,), generator=g)
    return x, y


# ----------------------------------------------------------------------------------------------------------
# Networks


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name", list(GANS))
def test_generator_and_discriminator_shapes(name, shape):
    torch.manual_seed(0)
    channels, size = shape
    gan = build_gan(name, channels, size, NUM_CLASSES)
    assert gan.loss in ("hinge", "bce") and gan.generator.z_dim == gan.z_dim
    y = torch.tensor([0, 3, 9])
    images = gan.generator(torch.randn(3, gan.z_dim), y)
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert gan.discriminator(images, y).shape == (3,)


@pytest.mark.parametrize("name", list(GANS))
def test_docstring_states_parameter_counts(name):
    doc = GANS[name].__doc__
    for channels, size in SHAPES:
        gan = build_gan(name, channels, size, NUM_CLASSES)
        for net in (gan.generator, gan.discriminator):
            assert f"{count_parameters(net):,}" in doc, (name, channels, size, type(net).__name__)


def test_biggan_add_blocks_keep_their_parameter_counts():
    gan = build_gan("biggan", 3, 32, NUM_CLASSES)
    assert (count_parameters(gan.generator), count_parameters(gan.discriminator)) == (4_304_387, 4_207_361)
    blocks = [*gan.generator.blocks, *gan.discriminator.blocks]
    assert all(b.block == "add" and not hasattr(b, "conv_cat") for b in blocks)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name", ["biggan_concat", "biggan_tiny_concat"])
def test_concat_gans_use_concat_blocks_everywhere(name, shape):
    channels, size = shape
    gan = build_gan(name, channels, size, NUM_CLASSES)
    blocks = [*gan.generator.blocks, *gan.discriminator.blocks]
    assert len(blocks) == (3 if size == 32 else 2) + 4
    for b in blocks:
        cin, cout = b.conv1.in_channels, b.conv2.out_channels
        assert b.block == "concat" and getattr(b, "conv_sc", None) is None
        conv = b.conv_cat
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (cin + cout, cout, (1, 1))
    width = 4 * (64 if name == "biggan_concat" else 8)
    assert gan.discriminator.blocks[0].conv_cat.in_channels == width + channels  # the image's channels


def test_train_twins_have_the_same_modules():
    for name, twin in TRAIN_TWIN.items():
        a, b = build_gan(name, 1, 28, NUM_CLASSES), build_gan(twin, 1, 28, NUM_CLASSES)
        assert a.loss == b.loss and a.z_dim == b.z_dim
        for net_a, net_b in ((a.generator, b.generator), (a.discriminator, b.discriminator)):
            assert net_a.state_dict().keys() == net_b.state_dict().keys()
            # By class name: spectral norm makes a new Parametrized* class per module.
            assert [(type(m).__name__, getattr(m, "block", None)) for m in net_a.modules()] == \
                   [(type(m).__name__, getattr(m, "block", None)) for m in net_b.modules()]


def _run_concat_block(block, x, *args, replace_shortcut=None):
    """(block output, conv_cat's input, the residual branch's output) in eval mode (no SN power iteration,
    so forwards repeat exactly); ``replace_shortcut`` swaps the shortcut half of conv_cat's input."""
    seen = {}
    cout = block.conv_cat.out_channels

    def pre(_, inputs):
        seen["cat"] = inputs[0].clone()
        if replace_shortcut is not None:
            return torch.cat([inputs[0][:, :cout], replace_shortcut], 1)

    hooks = [block.conv_cat.register_forward_pre_hook(pre),
             block.conv2.register_forward_hook(lambda m, i, o: seen.__setitem__("branch", o.clone()))]
    try:
        with torch.no_grad():
            out = block.eval()(x, *args)
    finally:
        for h in hooks:
            h.remove()
    return out, seen["cat"], seen["branch"]


def test_concat_gblock_concatenates_branch_and_upsampled_input():
    torch.manual_seed(0)
    block = GBlock(8, 16, NUM_CLASSES, block="concat")
    assert block.conv_cat.in_channels == 8 + 16 and not hasattr(block, "conv_sc")
    x, y = torch.randn(2, 8, 4, 4), torch.tensor([1, 7])
    out, cat, branch = _run_concat_block(block, x, y)
    assert out.shape == (2, 16, 8, 8) and cat.shape == (2, 24, 8, 8)
    assert torch.equal(cat[:, :16], branch)
    assert torch.equal(cat[:, 16:], torch.nn.functional.interpolate(x, scale_factor=2))
    changed, _, _ = _run_concat_block(block, x, y, replace_shortcut=torch.zeros(2, 8, 8, 8))
    assert changed.shape == out.shape and not torch.allclose(changed, out)


@pytest.mark.parametrize("cin, downsample, preactivation",
                         [(3, True, False), (16, True, True), (16, False, True)])  # D's blocks 1, 2, 3-4
def test_concat_dblock_concatenates_branch_and_input(cin, downsample, preactivation):
    torch.manual_seed(0)
    block = DBlock(cin, 16, downsample, preactivation, block="concat")
    assert block.conv_cat.in_channels == cin + 16 and block.conv_sc is None
    x = torch.randn(2, cin, 8, 8)  # negative values too: the shortcut half is x itself, not relu(x)
    out, cat, branch = _run_concat_block(block, x)
    size = 4 if downsample else 8
    assert out.shape == (2, 16, size, size) and cat.shape == (2, cin + 16, size, size)
    assert torch.equal(cat[:, :16], torch.nn.functional.avg_pool2d(branch, 2) if downsample else branch)
    assert torch.equal(cat[:, 16:], torch.nn.functional.avg_pool2d(x, 2) if downsample else x)
    changed, _, _ = _run_concat_block(block, x, replace_shortcut=torch.zeros(2, cin, size, size))
    assert not torch.allclose(changed, out)


def test_unknown_residual_block_raises():
    with pytest.raises(ValueError, match="residual block"):
        GBlock(8, 8, NUM_CLASSES, block="mul")
    with pytest.raises(ValueError, match="residual block"):
        DBlock(8, 8, False, True, block="dense")


def test_unknown_arch_raises():
    with pytest.raises(UnknownName):
        build_gan("no_such_gan", 3, 32, 10)
    with pytest.raises(ConfigError):
        GANConfig(arch="no_such_gan")
    with pytest.raises(ConfigError):
        GANConfig(diffaugment="translation,rotate")


# ----------------------------------------------------------------------------------------------------------
# Training: one epoch, then a checkpoint round trip (one module-scoped epoch per arch and shape)


@pytest.fixture(scope="module", params=[(n, s) for n in TRAIN_ARCHS for s in SHAPES],
                ids=[f"{n}-{i}" for n in TRAIN_ARCHS for i in SHAPE_IDS])
def one_epoch(request):
    """State after one epoch, with everything needed to continue: (cfg, state, saved, rng state, data, ...)."""
    name, (channels, size) = request.param
    torch.manual_seed(0)
    cfg = GANConfig(arch=name, batch_size=BATCH, max_batches_per_epoch=MAX_BATCHES)
    state = GANState.create(cfg, channels, size, NUM_CLASSES)
    before = _params(state.gan.generator)
    x, y = _data(channels, size)
    rng = torch.Generator().manual_seed(0)
    result = gan_epoch(state, cfg, x, y, rng)
    # state_dict() returns references to live tensors (torch's convention): copy before training on.
    saved = copy.deepcopy(state.state_dict())
    return dict(name=name, shape=(channels, size), cfg=cfg, state=state, before=before, result=result,
                saved=saved, rng_state=rng.get_state(), x=x, y=y)


def test_gan_epoch_runs_and_trains_g(one_epoch):
    r = one_epoch["result"]
    assert not r[DIVERGED]
    for key in (D_LOSS, G_LOSS, EXTRA_LOSS):
        assert torch.isfinite(torch.tensor(r[key])), key
    assert r[IMAGES] == BATCH * MAX_BATCHES
    assert r[G_STEPS] == MAX_BATCHES and r[STEPS] == 2 * MAX_BATCHES
    assert not _same(one_epoch["before"], _params(one_epoch["state"].gan.generator))


def test_checkpoint_round_trip_is_bitwise(one_epoch):
    cfg, (channels, size), x, y = one_epoch["cfg"], one_epoch["shape"], one_epoch["x"], one_epoch["y"]
    torch.manual_seed(123)  # the fresh state's own init must not matter once the checkpoint is loaded
    resumed = GANState.create(cfg, channels, size, NUM_CLASSES)
    resumed.load_state_dict(one_epoch["saved"])
    snapshot = copy.deepcopy(one_epoch["saved"])
    results = []
    for state in (one_epoch["state"], resumed):
        rng = torch.Generator()
        rng.set_state(one_epoch["rng_state"])
        results.append(gan_epoch(state, cfg, x, y, rng))
    assert results[0] == results[1]
    original, again = one_epoch["state"], resumed
    pairs = ((original.gan.generator, again.gan.generator),
             (original.gan.discriminator, again.gan.discriminator),
             (original.ema.module, again.ema.module))
    for a, b in pairs:
        sa, sb = a.state_dict(), b.state_dict()  # parameters and buffers (BN statistics, SN's u and v)
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    # Training the resumed state must not rewrite the checkpoint it was loaded from (Adam's moments).
    for opt in ("opt_g", "opt_d"):
        for key, moments in snapshot[opt]["state"].items():
            for name, value in moments.items():
                assert torch.equal(one_epoch["saved"][opt]["state"][key][name], value), (opt, key, name)


def test_extra_g_loss_is_added_and_reported():
    torch.manual_seed(0)
    cfg = GANConfig(arch="dcgan_small", batch_size=BATCH, max_batches_per_epoch=1, ema_decay=0.0)
    state = GANState.create(cfg, 1, 28, NUM_CLASSES)
    assert state.ema is None
    x, y = _data(1, 28)
    seen = []

    def extra(fake, labels):
        seen.append((fake.shape, labels.shape, fake.requires_grad))
        return fake.mean() * 0 + 2.5

    r = gan_epoch(state, cfg, x, y, torch.Generator().manual_seed(0), extra)
    assert r[EXTRA_LOSS] == 2.5
    assert seen == [((BATCH, 1, 28, 28), (BATCH,), True)]


def test_non_finite_loss_stops_the_epoch():
    torch.manual_seed(0)
    cfg = GANConfig(arch="dcgan_small", batch_size=BATCH, max_batches_per_epoch=2)
    state = GANState.create(cfg, 1, 28, NUM_CLASSES)
    x, y = _data(1, 28)
    nan_loss = lambda fake, labels: fake.sum() * torch.nan  # noqa: E731
    r = gan_epoch(state, cfg, x, y, torch.Generator().manual_seed(0), nan_loss)
    assert r[DIVERGED] and r[G_STEPS] == 0


# ----------------------------------------------------------------------------------------------------------
# Losses, DiffAugment, sampling, EMA


def test_hinge_loss_on_hand_picked_logits():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real) = 0, 0.5, 2   -> mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + fake) = 0, 1, 2     -> mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(5 / 6 + 1)
    assert hinge_g_loss(fake).item() == pytest.approx(1 / 3)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_diffaugment_shape_and_gradient(policy, shape):
    channels, size = shape
    x = (torch.rand(5, channels, size, size) * 2 - 1).requires_grad_()
    out = diff_augment(x, policy, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The same generator state gives the same augmentation (what makes checkpoints resume bit for bit).
    again = diff_augment(x.detach(), policy, torch.Generator().manual_seed(0))
    assert torch.equal(out.detach(), again)


def test_diffaugment_empty_policy_is_identity():
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(diff_augment(x, ""), x)


def test_translation_and_cutout_move_and_zero_pixels():
    x = torch.ones(64, 1, 32, 32)
    cut = diff_augment(x, "cutout", torch.Generator().manual_seed(0))
    # Each image loses at most a 16x16 square (clipped at the border), and at least some of it.
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert (zeros > 0).all() and (zeros <= 16 * 16).all()
    moved = diff_augment(x, "translation", torch.Generator().manual_seed(0))
    # Shifts are at most 32 // 8 = 4 px per axis, so the central 24x24 always stays filled.
    assert (moved[:, :, 4:-4, 4:-4] == 1).all()
    assert (moved == 0).any()


def test_truncated_z_stays_within_threshold():
    z = sample_z(2000, 128, torch.Generator().manual_seed(0), truncation=0.5)
    assert z.shape == (2000, 128) and z.abs().max() <= 0.5
    assert z.std() > 0.2  # resampled, not clamped: values spread over the whole interval


def test_sample_uses_eval_mode_and_restores_it():
    torch.manual_seed(0)
    g = build_gan("dcgan_small", 1, 28, NUM_CLASSES).generator
    labels = torch.arange(4)
    a = sample(g, labels, torch.Generator().manual_seed(0), truncation=1.0)
    b = sample(g, labels, torch.Generator().manual_seed(0), truncation=1.0)
    assert a.shape == (4, 1, 28, 28) and torch.equal(a, b) and not a.requires_grad
    assert g.training
    g.eval()
    sample(g, labels, torch.Generator().manual_seed(0))
    assert not g.training


@pytest.mark.parametrize("name", list(GANS))
def test_ema_decay_zero_copies_and_decay_one_freezes(name):
    torch.manual_seed(0)
    g = build_gan(name, 1, 28, NUM_CLASSES).generator
    initial = _params(g)
    follow, frozen = EMA(g, 0.0), EMA(g, 1.0)
    assert not follow.module.training
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p))
    g(torch.randn(4, g.z_dim), torch.arange(4))  # a train-mode forward moves BN statistics (buffers)
    follow.update(g)
    frozen.update(g)
    assert _same(_params(follow.module), _params(g))
    assert _same(_params(frozen.module), initial)
    assert all(torch.equal(a, b) for a, b in zip(follow.module.buffers(), g.buffers()))
    restored = EMA(build_gan(name, 1, 28, NUM_CLASSES).generator, 0.5)
    restored.load_state_dict(follow.state_dict())
    assert _same(_params(restored.module), _params(g))


def test_ema_is_a_copy_for_its_first_start_steps():
    torch.manual_seed(0)
    g = build_gan("dcgan_small", 1, 28, NUM_CLASSES).generator
    ema = EMA(g, 0.999, start=2)
    for step in range(3):
        with torch.no_grad():
            for p in g.parameters():
                p.add_(torch.randn_like(p))
        before = _params(ema.module)
        ema.update(g)
        if step < 2:  # a plain copy
            assert _same(_params(ema.module), _params(g))
        else:  # 0.999 * before + 0.001 * now
            expected = [b.lerp(p, 1.0 - 0.999) for b, p in zip(before, _params(g))]
            assert _same(_params(ema.module), expected) and not _same(_params(ema.module), _params(g))
    again = EMA(build_gan("dcgan_small", 1, 28, NUM_CLASSES).generator, 0.999, start=2)
    again.load_state_dict(ema.state_dict())
    assert again.steps == 3 and _same(_params(again.module), _params(ema.module))
