"""The GAN zoo: class-conditional generators and discriminators, by registry name, plus G's EMA and sampling.

Each builder takes ``(in_channels, image_size, num_classes)`` and returns a :class:`GAN`: a generator
``G(z, y) -> images`` in [-1, 1] (tanh; the input range of every classifier, see harness.data), a discriminator
``D(x, y) -> (N,)`` logits, the adversarial loss the architecture was published with ("hinge" or "bce"), and
the latent size. Every builder works for 1x28x28 (Fashion-MNIST) and 3x32x32 (CIFAR-10): 32 px generators start
from 4x4 and double three times, 28 px generators start from 7x7 and double twice.

- ``dcgan`` / ``dcgan_small`` / ``dcgan_tiny``: a conditional DCGAN (Radford et al. 2016) with a projection
  discriminator (Miyato & Koyama 2018), at base width 64, 32 and 16.
- ``biggan`` / ``biggan_small`` / ``biggan_tiny``: the CIFAR BigGAN (Brock et al. 2019) as configured in the
  DiffAugment release (Zhao et al. 2020, github mit-han-lab/data-efficient-gans, DiffAugment-biggan-cifar),
  which is the "Data-Efficient GAN" Pennisi 2021 uses (Sec. 4.2), at ch = 64, 32 and 8.
- ``biggan_concat`` / ``biggan_tiny_concat``: that BigGAN with Pham et al. 2019's concatenation residual block
  (Sec. III-B: y = Conv1x1(concat(F(x), x)) instead of y = F(x) + shortcut(x)) in G and D, at ch = 64 and 8.

Spectral norm is ``torch.nn.utils.parametrizations.spectral_norm`` (the parametrisation API, not the older
hook-based ``nn.utils.spectral_norm``): its state_dict keys are ``parametrizations.weight.original`` and
``parametrizations.weight.0._u`` / ``_v``, and it survives ``copy.deepcopy`` (which :class:`EMA` needs).
Parameter counts in the docstrings are for 10 classes and were printed by ``count_parameters``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from harness.registry import Registry

GANS = Registry("gan")


@dataclass
class GAN:
    """A generator, its discriminator, the adversarial loss they were published with, and the latent size."""

    generator: nn.Module  # forward(z: (N, z_dim), y: (N,) int64) -> (N, C, H, W) in [-1, 1]
    discriminator: nn.Module  # forward(x: (N, C, H, W), y: (N,) int64) -> (N,) logits
    loss: str  # "hinge" or "bce" (non-saturating); see harness.gan_train
    z_dim: int  # latent size
    # False: G(z, y) and D(x, y) ignore y (DeGAN's generator); the conditional call sites drive them unchanged
    conditional: bool = True


def build_gan(name: str, in_channels: int, image_size: int, num_classes: int) -> GAN:
    """Build a registered GAN; an unknown name raises :class:`harness.registry.UnknownName`."""
    return GANS[name](in_channels, image_size, num_classes)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (spectral norm's u, v vectors are buffers and are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _plan(image_size: int) -> tuple[int, int]:
    """(bottom width, number of 2x up-samplings): 32 -> 4x4 and 3; 28 -> 7x7 and 2."""
    if image_size % 8 == 0 and image_size >= 16:
        return image_size // 8, 3
    if image_size % 4 == 0:
        return image_size // 4, 2
    raise ValueError(f"GANs need an image size divisible by 4 (28 or 32), got {image_size}")


# ----------------------------------------------------------------------------------------------------------
# Conditional DCGAN (Radford et al. 2016) with a projection discriminator (Miyato & Koyama 2018)

DCGAN_Z_DIM = 100  # Radford et al. 2016, Fig. 1
DCGAN_LABEL_DIM = 50  # our choice: a learned label embedding of this size is concatenated to z


class DCGANGenerator(nn.Module):
    """cat(z, embed(y)) -> transposed conv to the bottom width -> (BN, ReLU, 4x4/2 transposed conv)* -> tanh."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, base: int):
        super().__init__()
        self.z_dim = DCGAN_Z_DIM
        bottom, n_up = _plan(image_size)
        widths = [base * 2**k for k in range(n_up, 0, -1)]  # 32 px: 8b, 4b, 2b; 28 px: 4b, 2b
        self.embed = nn.Embedding(num_classes, DCGAN_LABEL_DIM)  # default N(0, 1): the same scale as z
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.z_dim + DCGAN_LABEL_DIM, widths[0], bottom, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        # No BatchNorm on the output layer (Radford et al. Sec. 3: BN there caused sample oscillation).
        layers += [nn.ConvTranspose2d(widths[-1], in_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _dcgan_init(self.net)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.embed(y)], 1)
        return self.net(h[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """(4x4/2 conv, [BN], LeakyReLU 0.2)* -> flattened features h; logit = w.h + b + embed(y).h (projection)."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, base: int):
        super().__init__()
        _, n_down = _plan(image_size)
        widths = [base * 2**k for k in range(n_down)]  # 32 px: b, 2b, 4b; 28 px: b, 2b
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0))
            if i > 0:  # no BN on the input layer (Radford et al. Sec. 3)
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        flat = widths[-1] * (image_size // 2**n_down) ** 2  # 4b*4*4 at 32 px, 2b*7*7 at 28 px
        # Radford's last layer is a conv over the whole final map to one logit, i.e. a linear map of the
        # flattened features; the projection term adds the class evidence <embed(y), h> (Miyato & Koyama 2018).
        self.linear = nn.Linear(flat, 1)
        self.embed = nn.Embedding(num_classes, flat)
        _dcgan_init(self)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)


def _dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2016, Sec. 4: weights N(0, 0.02); BN gains N(1, 0.02) as PyTorch's DCGAN example."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _dcgan(in_channels: int, image_size: int, num_classes: int, base: int) -> GAN:
    g = DCGANGenerator(in_channels, image_size, num_classes, base)
    d = DCGANDiscriminator(in_channels, image_size, num_classes, base)
    return GAN(g, d, loss="bce", z_dim=g.z_dim)


@GANS.register
def dcgan(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """Conditional DCGAN (Radford et al. 2016 layout), base width 64, non-saturating BCE loss.

    G: z (100) concatenated with a learned 50-d label embedding -> 4x4 transposed conv to 512 channels, then
    4x4/2 transposed convs 512 -> 256 -> 128 -> C (32 px; 28 px: 7x7 to 256, then 256 -> 128 -> C), BatchNorm
    and ReLU between, tanh out. D: 4x4/2 convs C -> 64 -> 128 -> 256 (28 px: C -> 64 -> 128; BatchNorm after
    all but the first, LeakyReLU 0.2), then a projection head on the flattened 4x4x256 (28 px: 7x7x128)
    features, i.e. logit = w.h + b + embed(y).h (Miyato & Koyama 2018: we chose
    projection over concatenated label maps because it is what the BigGAN D uses too). Init N(0, 0.02).
    Parameters: 3x32x32: G 3,858,679, D 704,321; 1x28x28: G 2,409,205, D 201,409 (the 7x7 first layer
    is a 150 -> 256x7x7 projection, 1.9M of them).
    """
    return _dcgan(in_channels, image_size, num_classes, base=64)


@GANS.register
def dcgan_small(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`dcgan` with base width 32 (for CPU budgets).

    Parameters: 3x32x32: G 1,274,231, D 188,321; 1x28x28: G 1,073,781, D 67,937.
    """
    return _dcgan(in_channels, image_size, num_classes, base=32)


@GANS.register
def dcgan_tiny(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`dcgan` with base width 16: the converge profile's GAN, which must train to a flat FID on a
    2-core CPU within a table's 30 minutes (dcgan_small's transposed convolutions took ~0.15-0.36 s per D+G
    step of 64 at 28 px here, most of a converging run; dcgan_tiny 2.4x less).

    Parameters: 3x32x32: G 473,527, D 53,201; 1x28x28: G 504,373, D 25,777.
    """
    return _dcgan(in_channels, image_size, num_classes, base=16)


# ----------------------------------------------------------------------------------------------------------
# Unconditional DCGAN (Radford et al. 2016): DeGAN's generator. Addepalli et al. 2020 (Sec. 5.1) build on "the
# implementation of DCGAN from Singh (2019)", which follows PyTorch's DCGAN example: G(z) and D(x), no labels,
# BCE loss, Adam 2e-4 with beta1 0.5 (the released dfgan.py). Its classes take ``y`` and ignore it, so gan_epoch,
# sample and EMA drive them as they drive the conditional ones; ``GAN.conditional`` says which is which.


class DCGANUncondGenerator(nn.Module):
    """z -> transposed conv to the bottom width -> (BN, ReLU, 4x4/2 transposed conv)* -> tanh: the layout of
    :class:`DCGANGenerator` without its label embedding."""

    def __init__(self, in_channels: int, image_size: int, base: int):
        super().__init__()
        self.z_dim = DCGAN_Z_DIM
        bottom, n_up = _plan(image_size)
        widths = [base * 2**k for k in range(n_up, 0, -1)]
        layers: list[nn.Module] = [nn.ConvTranspose2d(self.z_dim, widths[0], bottom, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], in_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _dcgan_init(self.net)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANUncondDiscriminator(nn.Module):
    """(4x4/2 conv, [BN], LeakyReLU 0.2)* -> flattened features -> one logit: :class:`DCGANDiscriminator`
    without its projection term."""

    def __init__(self, in_channels: int, image_size: int, base: int):
        super().__init__()
        _, n_down = _plan(image_size)
        widths = [base * 2**k for k in range(n_down)]
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(widths[-1] * (image_size // 2**n_down) ** 2, 1)
        _dcgan_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.features(x)).squeeze(1)


def _dcgan_uncond(in_channels: int, image_size: int, base: int) -> GAN:
    g = DCGANUncondGenerator(in_channels, image_size, base)
    return GAN(g, DCGANUncondDiscriminator(in_channels, image_size, base), loss="bce", z_dim=g.z_dim,
               conditional=False)


@GANS.register
def dcgan_uncond(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """Unconditional DCGAN, base width 64 (the released DeGAN's ngf = ndf = 64, nz = 100), BCE loss; the layers of
    :func:`dcgan` without the label embedding in G and the projection term in D. ``num_classes`` is not used.
    The widths and nz are the released dcgan_model.py's, its layers are not: at 32 px its G has a fourth block
    (64 channels at 32x32) and a 1x1 output convolution where ours ends at 32x32 with a 4x4 transposed
    convolution, its D four strided convolutions and a 2x2 one where ours has three and a linear layer. The paper
    says only "DCGAN"; we keep one DCGAN family for every method.

    Parameters: 3x32x32: G 3,448,579, D 663,361; 1x28x28: G 1,781,505, D 138,689 (the 7x7 first layer is a
    100 -> 256x7x7 projection).
    """
    return _dcgan_uncond(in_channels, image_size, base=64)


@GANS.register
def dcgan_small_uncond(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`dcgan_uncond` with base width 32 (for CPU budgets).

    Parameters: 3x32x32: G 1,068,931, D 167,841; 1x28x28: G 759,681, D 36,577.
    """
    return _dcgan_uncond(in_channels, image_size, base=32)


@GANS.register
def dcgan_tiny_uncond(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`dcgan_uncond` with base width 16 (the smoke and converge profiles' DeGAN generator on a 2-core CPU).

    Parameters: 3x32x32: G 370,627, D 42,961; 1x28x28: G 347,073, D 10,097.
    """
    return _dcgan_uncond(in_channels, image_size, base=16)


UNCONDITIONAL_GANS = frozenset({"dcgan_uncond", "dcgan_small_uncond", "dcgan_tiny_uncond"})


# ----------------------------------------------------------------------------------------------------------
# BigGAN for CIFAR (Brock et al. 2019) as run by DiffAugment (Zhao et al. 2020)

BIGGAN_Z_DIM = 128  # BigGAN-PyTorch's default dim_z, which the DiffAugment CIFAR scripts keep


def _sn(layer: nn.Module) -> nn.Module:
    """N(0, 0.02) init (the scripts' ``--G_init N02 --D_init N02``), then spectral norm (one power iteration
    per training forward, as BigGAN's num_SV_itrs=1). Initialising first lets SN's u, v start from this
    weight."""
    nn.init.normal_(layer.weight, 0.0, 0.02)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return spectral_norm(layer)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine; gain ``1 + g[y]`` and bias ``b[y]`` per class (BigGAN's ``ccbn``).

    The released CIFAR config runs without ``--G_shared``, so each layer has its own class embeddings
    (nn.Embedding, no spectral norm, N(0, 0.02) init) rather than linear maps of one shared embedding.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.gain.weight, 0.0, 0.02)
        nn.init.normal_(self.bias.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(y))[:, :, None, None] + self.bias(y)[:, :, None, None]


BLOCKS = ("add", "concat")  # residual block: BigGAN's y = F(x) + shortcut(x), or Pham 2019's concatenation


def _check_block(block: str) -> None:
    if block not in BLOCKS:
        raise ValueError(f"unknown residual block {block!r}; known: {', '.join(BLOCKS)}")


class GBlock(nn.Module):
    """cBN-ReLU-upsample(nearest)-conv3x3-cBN-ReLU-conv3x3 = F(x), plus an upsample-conv1x1 shortcut (BigGAN's
    layers.GBlock; ``block="add"``).

    ``block="concat"`` (Pham et al. 2019, Sec. III-B): y = SN-conv1x1(cat(F(x), upsample(x))), cout + cin ->
    cout channels; this 1x1 conv (``conv_cat``) takes the place of the shortcut conv, which does not exist.
    """

    def __init__(self, cin: int, cout: int, num_classes: int, block: str = "add"):
        super().__init__()
        _check_block(block)
        self.block = block
        self.bn1 = ConditionalBatchNorm(cin, num_classes)
        self.conv1 = _sn(nn.Conv2d(cin, cout, 3, padding=1))
        self.bn2 = ConditionalBatchNorm(cout, num_classes)
        self.conv2 = _sn(nn.Conv2d(cout, cout, 3, padding=1))
        # Created last either way: the add path draws its initial weights in the same order as before.
        if block == "add":
            self.conv_sc = _sn(nn.Conv2d(cin, cout, 1))  # learnable because every block upsamples
        else:
            self.conv_cat = _sn(nn.Conv2d(cout + cin, cout, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        if self.block == "concat":
            return self.conv_cat(torch.cat([h, F.interpolate(x, scale_factor=2)], 1))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """[ReLU]-conv3x3-ReLU-conv3x3-[avgpool2], plus a shortcut (BigGAN layers.DBlock, "wide" D).

    The first block has no pre-activation and pools before its 1x1 shortcut conv; later blocks convolve first
    (the order of the released code). The shortcut conv exists only where channels change or we downsample.

    ``block="concat"`` (Pham et al. 2019, Sec. III-B): y = SN-conv1x1(cat(F(x), s)), cout + cin -> cout
    channels, in every block, where s is the block's input (not pre-activated, as the add shortcut's),
    average-pooled when the block downsamples; this 1x1 conv (``conv_cat``) takes the place of the shortcut
    conv (``conv_sc`` is None).
    """

    def __init__(self, cin: int, cout: int, downsample: bool, preactivation: bool, block: str = "add"):
        super().__init__()
        _check_block(block)
        self.block = block
        self.conv1 = _sn(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = _sn(nn.Conv2d(cout, cout, 3, padding=1))
        if block == "add":
            self.conv_sc = _sn(nn.Conv2d(cin, cout, 1)) if cin != cout or downsample else None
        else:
            self.conv_sc = None
            self.conv_cat = _sn(nn.Conv2d(cout + cin, cout, 1))
        self.downsample, self.preactivation = downsample, preactivation

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.preactivation:
            x = self.conv_sc(x) if self.conv_sc is not None else x
            return F.avg_pool2d(x, 2) if self.downsample else x
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.conv_sc(x) if self.conv_sc is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.block == "concat":  # _shortcut without a conv_sc: just the pooling
            return self.conv_cat(torch.cat([h, self._shortcut(x)], 1))
        return h + self._shortcut(x)


class BigGANGenerator(nn.Module):
    """z -> SN-linear to (4 ch) x bottom^2 -> GBlocks at 4 ch -> BN-ReLU-SN-conv3x3 -> tanh (BigGAN's
    G_arch[32]). ``block``: "add" (BigGAN) or "concat" (Pham 2019) residual blocks, see :class:`GBlock`."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, ch: int, block: str = "add"):
        super().__init__()
        self.z_dim = BIGGAN_Z_DIM
        self.bottom, n_up = _plan(image_size)
        self.width = 4 * ch  # G_arch[32]: in/out channels ch*[4, 4, 4]
        self.linear = _sn(nn.Linear(self.z_dim, self.width * self.bottom**2))
        self.blocks = nn.ModuleList(GBlock(self.width, self.width, num_classes, block) for _ in range(n_up))
        self.out_bn = nn.BatchNorm2d(self.width)  # unconditional BN with affine (BigGAN layers.bn)
        self.out_conv = _sn(nn.Conv2d(self.width, in_channels, 3, padding=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.size(0), self.width, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class BigGANDiscriminator(nn.Module):
    """4 DBlocks at 4 ch (the first two downsample), ReLU, global sum pool, SN-linear + SN-embedding
    projection (BigGAN's D_arch[32]). ``block``: "add" (BigGAN) or "concat" (Pham 2019), see :class:`DBlock`."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, ch: int, block: str = "add"):
        super().__init__()
        width = 4 * ch  # D_arch[32]: out channels ch*[4, 4, 4, 4], downsample [True, True, False, False]
        downs = (True, True, False, False)
        cins = (in_channels, width, width, width)
        self.blocks = nn.Sequential(*(DBlock(c, width, d, preactivation=i > 0, block=block)
                                      for i, (c, d) in enumerate(zip(cins, downs))))
        self.linear = _sn(nn.Linear(width, 1))
        self.embed = _sn(nn.Embedding(num_classes, width))  # BigGAN's SNEmbedding

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Global sum pooling (SN-GAN) makes D independent of the image size: 8x8 maps at 32 px, 7x7 at 28 px.
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)


def _biggan(in_channels: int, image_size: int, num_classes: int, ch: int, block: str = "add") -> GAN:
    g = BigGANGenerator(in_channels, image_size, num_classes, ch, block)
    d = BigGANDiscriminator(in_channels, image_size, num_classes, ch, block)
    return GAN(g, d, loss="hinge", z_dim=g.z_dim)


@GANS.register
def biggan(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """The CIFAR BigGAN of the DiffAugment release (DiffAugment-biggan-cifar: BigGAN.py, layers.py and
    scripts/DiffAugment-biggan-cifar10-0.2.sh), ch = 64, hinge loss: Pennisi's "Data-Efficient GAN".

    G: z (128) -> SN-linear to 256x4x4 -> 3 residual up-blocks at 256 channels (4 -> 8 -> 16 -> 32; at 28 px:
    7x7 and two blocks, 7 -> 14 -> 28) with class-conditional BN -> BN, ReLU, SN-conv3x3 to C -> tanh.
    D: 4 residual blocks at 256 channels (the first two downsample by 2x2 average pooling: 32 -> 16 -> 8 -> 8
    -> 8), ReLU, global sum pooling, SN-linear plus an SN class-embedding projection.
    Matched: G_arch[32] / D_arch[32] widths and block layout, wide D, ReLU in G and D, nearest-neighbour
    upsampling, per-layer class embeddings for cBN gains/biases (no --G_shared, no --hier), no attention
    (--G_attn 0 --D_attn 0), N(0, 0.02) init, spectral norm on every conv/linear of G and D and on D's
    embedding (not on G's cBN embeddings), one power iteration per step.
    Simplified: PyTorch's BatchNorm2d (running mean/var) instead of BigGAN's hand-written fused BN;
    spectral norm from torch (one singular value, no stored sv logging); no orthogonal regulariser
    (the scripts set --G_ortho 0.0 anyway).
    Parameters: 3x32x32: G 4,304,387, D 4,207,361 (BigGAN's CIFAR model: 4.3M / 4.2M); 1x28x28: G 4,133,377
    (its first linear maps to 256x7x7), D 4,202,241.
    """
    return _biggan(in_channels, image_size, num_classes, ch=64)


@GANS.register
def biggan_small(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`biggan` with ch = 32: 128 channels instead of 256 (half the width, about a quarter of the
    parameters and of the compute; for 2-core CPU budgets).

    Parameters: 3x32x32: G 1,218,307, D 1,055,105; 1x28x28: G 1,444,097, D 1,052,545.
    """
    return _biggan(in_channels, image_size, num_classes, ch=32)


@GANS.register
def biggan_tiny(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`biggan` with ch = 8: 32 channels instead of 256 (for CPU budgets; the add twin of
    :func:`biggan_tiny_concat`).

    Parameters: 3x32x32: G 129,475, D 67,169; 1x28x28: G 244,289 (its first linear maps to 32x7x7), D 66,529.
    """
    return _biggan(in_channels, image_size, num_classes, ch=8)


@GANS.register
def biggan_concat(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`biggan` (ch = 64, hinge loss) with Pham et al. 2019's concatenation residual block (Sec. III-B,
    y = Conv1x1(concat(F(x), x)), "used to reduce the number of channels and keep them the same as in the case
    of residual blocks") in every block of G and D; everything else as :func:`biggan`.

    The paper gives no more detail; our choices: the SN-conv1x1 (N(0, 0.02) init, as every conv here) replaces
    the learnable shortcut conv, which is gone, and exists in every block (D's last two blocks, whose add
    shortcut is the identity, get one too). It maps cat(F(x), s) with cout + cin channels to cout, where F(x)
    is the block's residual branch as in :func:`biggan` and s is what the add shortcut would see before its
    conv: in G the nearest-upsampled block input (256 + 256 -> 256), in D the block input, not
    pre-activated, 2x2 average-pooled in the two downsampling blocks (256 + C -> 256 in the first block,
    256 + 256 -> 256 after).
    Size: Pham's Table I stores one CIFAR-100 generator in 17.7 MB with add blocks, 18.8 MB with concat blocks
    (+6%). At 100 classes our G has 4,580,867 (add) and 4,777,475 (concat) parameters, 18.32 MB and 19.11 MB
    at 4 bytes each (MB = 1e6 bytes; +0.79 MB, +4%): the add G is 3.5% larger than Pham's, and concat adds
    0.79 MB where Pham's adds 1.1 MB. (In MiB ours are 17.47 and 18.22; the paper does not say which unit.)
    Parameters: 3x32x32: G 4,500,995, D 4,601,089; 1x28x28: G 4,264,449, D 4,595,969.
    """
    return _biggan(in_channels, image_size, num_classes, ch=64, block="concat")


@GANS.register
def biggan_tiny_concat(in_channels: int, image_size: int, num_classes: int) -> GAN:
    """:func:`biggan_concat` with ch = 8: 32 channels instead of 256 (for CPU budgets; the concat twin of
    :func:`biggan_tiny`).

    Parameters: 3x32x32: G 132,547, D 73,377; 1x28x28: G 246,337, D 72,737.
    """
    return _biggan(in_channels, image_size, num_classes, ch=8, block="concat")


# ----------------------------------------------------------------------------------------------------------
# EMA of G and sampling


class EMA:
    """Exponential moving average of a generator's weights (BigGAN's G_ema; Brock et al. 2019, Sec. 4).

    After each G step, ``ema_p <- decay * ema_p + (1 - decay) * p`` for every parameter; buffers (BatchNorm
    running statistics, spectral norm's u and v) are copied from the live generator, so the averaged copy
    samples with up-to-date normalisation statistics (BigGAN-PyTorch's utils.ema averages buffers too).
    For the first ``start`` updates the EMA is a plain copy (decay 0), as BigGAN-PyTorch's ``ema_start``
    (1000 in the DiffAugment CIFAR scripts). NOTE: averaging from the first step leaves 0.999^600 = 55% of
    the random initial weights in after 600 steps: seen at the mini profile, the EMA generator drew flat
    grey images while the live one drew objects, and GAN augmentation trained on them.
    ``module`` stays in eval mode.
    """

    def __init__(self, generator: nn.Module, decay: float, start: int = 0):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay {decay} is outside [0, 1]")
        self.decay, self.start, self.steps = decay, start, 0
        self.module = copy.deepcopy(generator).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        # lerp is exact at its end points: decay 0 copies the weights, decay 1 keeps them bit for bit.
        decay = 0.0 if self.steps < self.start else self.decay
        for ema_p, p in zip(self.module.parameters(), generator.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        self.steps += 1
        for ema_b, b in zip(self.module.buffers(), generator.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict:
        return {"weights": self.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["weights"])
        self.steps = state["steps"]


def sample_z(n: int, z_dim: int, rng: torch.Generator, truncation: float | None = None) -> torch.Tensor:
    """(n, z_dim) latents on the CPU: N(0, 1), or truncated to |z| <= truncation by resampling the values
    beyond it (BigGAN's truncation trick, Brock et al. 2019 Sec. 3.1; Pham 2019 / Slim 2020's psi)."""
    z = torch.randn(n, z_dim, generator=rng)
    if truncation is None:
        return z
    if truncation <= 0:
        raise ValueError(f"truncation {truncation} must be positive")
    while (out := z.abs() > truncation).any():
        z[out] = torch.randn(int(out.sum()), generator=rng)
    return z


def sample(generator: nn.Module, labels: torch.Tensor, generator_rng: torch.Generator,
           truncation: float | None = None) -> torch.Tensor:
    """Images of the given class labels from ``generator`` in eval mode (BN running statistics), without
    gradients; z is drawn on the CPU ``generator_rng`` and moved to the labels' device. The generator's
    train/eval mode is restored afterwards."""
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            z = sample_z(len(labels), generator.z_dim, generator_rng, truncation).to(labels.device)
            return generator(z, labels)
    finally:
        generator.train(was_training)


def sample_unconditional(generator: nn.Module, n: int, generator_rng: torch.Generator,
                         device: torch.device | str) -> torch.Tensor:
    """``n`` images of an unconditional generator (``GAN.conditional`` False): :func:`sample` with dummy
    labels, which such a generator ignores."""
    return sample(generator, torch.zeros(n, dtype=torch.int64, device=device), generator_rng)
