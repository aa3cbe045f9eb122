"""The classifier zoo: every network that the benchmarked methods train or distil into, by registry name.

Each builder takes ``(in_channels, image_size, num_classes)`` and returns a :class:`Classifier`, which splits the
network into a ``body`` (image -> penultimate feature vector) and a linear ``head`` (features -> logits), because
several methods need the penultimate features as well as the logits. Inputs are float NCHW images scaled to
[-1, 1]; every builder works for 1x28x28 and 3x32x32 (and the mixed 3x28x28 / 1x32x32). The small networks
follow the code released with DeGAN (Addepalli et al. 2020, github vcl-iisc/DeGAN): LeNet / LeNet-half and the
CIFAR AlexNet / AlexNet-half; ResNet-20/32 are the CIFAR ResNets of He et al. 2016 (Sec. 4.2); ResNet-18/50,
DenseNet-121 and Inception-v3 are torchvision's ImageNet models (randomly initialised) with their stems changed
for 28-32 pixel inputs, as the docstring of each builder says. Flattened sizes are found by a dummy forward
pass at construction time rather than hard-coded, so the image size only has to be right once.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness.registry import Registry

CLASSIFIERS = Registry("classifier")


class Classifier(nn.Module):
    """``body`` maps images to (N, feature_dim) features; ``head`` is the final linear layer."""

    def __init__(self, body: nn.Module, head: nn.Linear):
        super().__init__()
        self.body = body
        self.head = head
        self.feature_dim: int = head.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.body(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_classifier(name: str, in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """Build a registered classifier; an unknown name raises :class:`harness.registry.UnknownName`."""
    return CLASSIFIERS[name](in_channels, image_size, num_classes)


def _flat_size(module: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features ``module`` produces per image, from one forward pass of zeros.

    Run in eval mode so BatchNorm running statistics are not updated (and batch size 1 is allowed), then
    put the module back in train mode, which is the mode every builder returns its network in.
    """
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, in_channels, image_size, image_size))
    module.train()
    return out[0].numel()


# ----------------------------------------------------------------------------------------------------------
# LeNet (DeGAN, Other_networks_used/lenet.py and lenet_half.py)


def _lenet(in_channels: int, image_size: int, num_classes: int, channels: tuple[int, int]) -> Classifier:
    c1, c2 = channels
    convs = nn.Sequential(
        nn.Conv2d(in_channels, c1, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    flat = _flat_size(convs, in_channels, image_size)  # 16*5*5 = 400 at 32x32, 16*4*4 = 256 at 28x28
    body = nn.Sequential(
        OrderedDict(
            convs=convs,
            fc1=nn.Sequential(nn.Linear(flat, 120), nn.ReLU()),
            fc2=nn.Sequential(nn.Linear(120, 84), nn.ReLU()),
        )
    )
    head = nn.Linear(84, num_classes)
    # DeGAN's released LeNets fill every bias with 0 (weights keep PyTorch's default init).
    for m in (*body.modules(), head):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.zeros_(m.bias)
    return Classifier(body, head)


@CLASSIFIERS.register
def lenet(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """LeNet-5 as in DeGAN's lenet.py: conv 6@5x5, conv 16@5x5 (each ReLU + 2x2 max-pool), FC 120, FC 84."""
    return _lenet(in_channels, image_size, num_classes, (6, 16))


@CLASSIFIERS.register
def lenet_half(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """DeGAN's lenet_half.py: LeNet with half the conv channels (3, 8); the FC layers stay 120 and 84."""
    return _lenet(in_channels, image_size, num_classes, (3, 8))


# ----------------------------------------------------------------------------------------------------------
# AlexNet (DeGAN, CIFAR_10/network/alexnet.py and alexnet_half.py)


def _alexnet(
    in_channels: int, image_size: int, num_classes: int, channels: tuple[int, ...], fc: tuple[int, int]
) -> Classifier:
    c1, c2, c3, c4, c5 = channels
    f1, f2 = fc

    def conv(cin: int, cout: int, k: int, lrn: bool, pool: bool, bias: float) -> nn.Sequential:
        layer = nn.Conv2d(cin, cout, k, padding=k // 2)
        # The released code fills conv2/conv4/conv5 biases with 1.0 and the others with 0 (the usual
        # AlexNet trick to start those ReLUs in their active range); we replicate it.
        nn.init.constant_(layer.bias, bias)
        parts = [layer, nn.ReLU()]
        if lrn:
            parts.append(nn.LocalResponseNorm(2))
        if pool:
            parts.append(nn.MaxPool2d(3, stride=2))
        # BatchNorm comes after the pooling, as in the released code (eps matches its TF origin).
        parts.append(nn.BatchNorm2d(cout, eps=1e-3))
        return nn.Sequential(*parts)

    convs = nn.Sequential(
        OrderedDict(
            conv1=conv(in_channels, c1, 5, lrn=True, pool=True, bias=0.0),
            conv2=conv(c1, c2, 5, lrn=True, pool=True, bias=1.0),
            conv3=conv(c2, c3, 3, lrn=False, pool=False, bias=0.0),
            conv4=conv(c3, c4, 3, lrn=False, pool=False, bias=1.0),
            conv5=conv(c4, c5, 3, lrn=False, pool=True, bias=1.0),
            flatten=nn.Flatten(),
        )
    )
    flat = _flat_size(convs, in_channels, image_size)  # 128*3*3 = 1152 at 32x32, 128*2*2 = 512 at 28x28

    def dense(fin: int, fout: int) -> nn.Sequential:
        layer = nn.Linear(fin, fout)
        nn.init.zeros_(layer.bias)
        # Dropout before BatchNorm1d is the released code's order; the features therefore see dropout in
        # train mode, like every later layer did in the original.
        return nn.Sequential(layer, nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(fout, eps=1e-3))

    body = nn.Sequential(OrderedDict(convs=convs, fc1=dense(flat, f1), fc2=dense(f1, f2)))
    head = nn.Linear(f2, num_classes)
    nn.init.zeros_(head.bias)
    return Classifier(body, head)


@CLASSIFIERS.register
def alexnet(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """The CIFAR AlexNet of DeGAN's released code (CIFAR_10/network/alexnet.py).

    Conv 48@5x5, 128@5x5 (each ReLU, LRN(2), 3x3/2 max-pool, BN), conv 192, 192, 128 @3x3 (ReLU, BN; max-pool
    after the last), FC 512 and 256 (ReLU, dropout 0.5, BN1d); the 256-d output is the feature vector.
    Pennisi 2021 does not define the AlexNet he uses, so this DeGAN CIFAR AlexNet stands in for both papers.
    Bias init as released: conv2/conv4/conv5 biases 1.0, all other biases 0.
    """
    return _alexnet(in_channels, image_size, num_classes, (48, 128, 192, 192, 128), (512, 256))


@CLASSIFIERS.register
def alexnet_half(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """DeGAN's alexnet_half.py: the CIFAR AlexNet with half the widths (24/64/96/96/64, FC 256/128).

    Pennisi 2021 does not define his AlexNet either; we use DeGAN's for both papers. Same bias init as
    :func:`alexnet`.
    """
    return _alexnet(in_channels, image_size, num_classes, (24, 64, 96, 96, 64), (256, 128))


# ----------------------------------------------------------------------------------------------------------
# CIFAR ResNets (He et al. 2016, Sec. 4.2)


class _PadShortcut(nn.Module):
    """Option-A shortcut: parameter-free, take every other pixel and zero-pad the new channels."""

    def __init__(self, extra_channels: int):
        super().__init__()
        self.extra = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _PadShortcut(cout - cin) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _cifar_resnet(in_channels: int, num_classes: int, n: int) -> Classifier:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
    ]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(_BasicBlock(cin, cout, stride))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    body = nn.Sequential(*layers)
    for m in body.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)  # He et al. init, as in the paper
    return Classifier(body, nn.Linear(64, num_classes))


@CLASSIFIERS.register
def resnet20(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """CIFAR ResNet-20 (He et al. 2016, Sec. 4.2): 3x3 conv 16, 3 stages x 3 basic blocks (16/32/64 channels,
    stride 2 entering stages 2 and 3, option-A zero-pad shortcuts), global average pool; 64-d features.
    ``image_size`` is not needed: global pooling makes the network size-agnostic."""
    return _cifar_resnet(in_channels, num_classes, n=3)


@CLASSIFIERS.register
def resnet8(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """CIFAR ResNet-8: as :func:`resnet20` with 1 basic block per stage (78k parameters). The converge profile's
    stand-in for ResNet-50: ResNet-20's stage-3 epochs took ~45 s on 2 shared cores, too slow for a table in
    30 minutes (docs/evidence, 2026-12-02); ResNet-8 trains ~1.7x faster per image here."""
    return _cifar_resnet(in_channels, num_classes, n=1)


@CLASSIFIERS.register
def resnet32(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """CIFAR ResNet-32: as :func:`resnet20` with 5 basic blocks per stage."""
    return _cifar_resnet(in_channels, num_classes, n=5)


# ----------------------------------------------------------------------------------------------------------
# torchvision ImageNet models with small-image stems (randomly initialised)


def _small_resnet(net: torchvision.models.ResNet, in_channels: int, num_classes: int) -> Classifier:
    # A 7x7/2 conv plus a 3x3/2 max-pool would shrink 32x32 to 8x8 before the first stage; the usual CIFAR
    # adaptation keeps full resolution there with a 3x3/1 conv and no max-pool.
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's conv init
    net.maxpool = nn.Identity()
    head = nn.Linear(net.fc.in_features, num_classes)
    net.fc = nn.Identity()
    return Classifier(net, head)


@CLASSIFIERS.register
def resnet18(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """torchvision ResNet-18 (weights=None) for small images: conv1 -> 3x3 stride-1 padding-1 conv
    (in_channels -> 64, no bias, kaiming init like torchvision's), maxpool -> Identity, fc -> Identity in the
    body; the head is a new Linear(512, num_classes). Stages run at 32/16/8/4 px for 32x32 inputs."""
    import torchvision  # here, not at the top: importing it costs ~1.3 s in every Ray worker (torch._dynamo)

    return _small_resnet(torchvision.models.resnet18(weights=None), in_channels, num_classes)


@CLASSIFIERS.register
def resnet50(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """torchvision ResNet-50 (weights=None), adapted exactly as :func:`resnet18`; 2048-d features."""
    import torchvision

    return _small_resnet(torchvision.models.resnet50(weights=None), in_channels, num_classes)


@CLASSIFIERS.register
def densenet121(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """torchvision DenseNet-121 (weights=None) for small images: features.conv0 (7x7/2) -> 3x3 stride-1
    padding-1 conv (in_channels -> 64, no bias, kaiming init like torchvision's), features.pool0 -> Identity,
    classifier -> Identity (torchvision's forward already applies ReLU, global average pool and flatten before
    it); the head is a new Linear(1024, num_classes). Dense blocks run at 32/16/8/4 px for 32x32 inputs."""
    import torchvision

    net = torchvision.models.densenet121(weights=None)
    net.features.conv0 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.features.conv0.weight)
    net.features.pool0 = nn.Identity()
    head = nn.Linear(net.classifier.in_features, num_classes)
    net.classifier = nn.Identity()
    return Classifier(net, head)


@CLASSIFIERS.register
def inception_v3(in_channels: int, image_size: int, num_classes: int) -> Classifier:
    """torchvision Inception-v3 (aux_logits=False, init_weights=True, transform_input=False) for small images.

    Conv2d_1a_3x3 -> BasicConv2d(in_channels, 32, 3x3, stride 1, padding 1), Conv2d_2a_3x3 ->
    BasicConv2d(32, 32, 3x3, padding 1), maxpool1 and maxpool2 -> Identity, fc -> Identity (so the body ends
    with torchvision's global average pool, dropout 0.5 and flatten; 2048-d features); the head is a new
    Linear(2048, num_classes). This matches the CIFAR Inception-v3 used as DeGAN's teacher
    (Other_networks_used/inceptionv3_teacher.py): 32 -> 30 (Conv2d_4a) -> 14 (Mixed_6a) -> 6 (Mixed_7a) ->
    pool; 28x28 inputs go 28 -> 26 -> 12 -> 5. The two new convs get torchvision's truncated-normal
    (std 0.1) init like the rest of the network. Without aux logits the forward returns a plain tensor in
    train and eval mode.
    """
    import torchvision
    from torchvision.models.inception import BasicConv2d

    net = torchvision.models.Inception3(aux_logits=False, init_weights=True, transform_input=False)
    net.Conv2d_1a_3x3 = BasicConv2d(in_channels, 32, kernel_size=3, padding=1)
    net.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3, padding=1)
    for block in (net.Conv2d_1a_3x3, net.Conv2d_2a_3x3):
        nn.init.trunc_normal_(block.conv.weight, mean=0.0, std=0.1, a=-2, b=2)
    net.maxpool1 = nn.Identity()
    net.maxpool2 = nn.Identity()
    head = nn.Linear(net.fc.in_features, num_classes)
    net.fc = nn.Identity()
    return Classifier(net, head)
