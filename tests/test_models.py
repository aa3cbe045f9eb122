import pytest
import torch
import torch.nn as nn

from harness.models import CLASSIFIERS, Classifier, build_classifier
from harness.registry import UnknownName

# One torch thread (conftest: restored after): ResNet-50, DenseNet-121 and Inception-v3 on batches of 2 keep a
# second thread mostly waiting, and the suite's other xdist worker wants that core.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXPECTED_NAMES = {
    "lenet",
    "lenet_half",
    "alexnet",
    "alexnet_half",
    "resnet18",
    "resnet8",
    "resnet20",
    "resnet32",
    "resnet50",
    "densenet121",
    "inception_v3",
}


def test_registered_names():
    assert set(CLASSIFIERS) == EXPECTED_NAMES


@pytest.mark.parametrize("shape", [(1, 28), (3, 32)], ids=["1x28x28", "3x32x32"])
@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_forward_features_backward(name, shape):
    torch.manual_seed(0)
    channels, size = shape
    model = build_classifier(name, channels, size, 10)
    assert isinstance(model, Classifier)
    assert model.training  # builders hand back a network in train mode
    x = torch.rand(2, channels, size, size) * 2 - 1

    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert model.features(x).shape == (2, model.feature_dim)

    model.zero_grad()
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    for param in (model.head.weight, model.head.bias):
        assert param.grad is not None and torch.isfinite(param.grad).all()
        assert param.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        out = model(x)
        feats = model.features(x)
    assert type(out) is torch.Tensor and out.shape == (2, 10)
    assert feats.shape == (2, model.feature_dim)
    torch.testing.assert_close(model.head(feats), out)


@pytest.mark.parametrize("shape", [(3, 28), (1, 32)], ids=["3x28x28", "1x32x32"])
@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_mixed_shapes(name, shape):
    channels, size = shape
    model = build_classifier(name, channels, size, 7).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, channels, size, size)).shape == (1, 7)


@pytest.mark.parametrize("size,grids", [(32, [30, 14, 6]), (28, [26, 12, 5])])
def test_inception_grid_sizes_match_degan_teacher(size, grids):
    model = build_classifier("inception_v3", 3, size, 10).eval()
    seen = []
    for block in ("Conv2d_4a_3x3", "Mixed_6a", "Mixed_7a"):
        getattr(model.body, block).register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    assert seen == grids


def test_dummy_forward_leaves_batchnorm_stats_alone():
    model = build_classifier("alexnet", 3, 32, 10)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert int(m.num_batches_tracked) == 0
            assert torch.all(m.running_mean == 0)


def test_unknown_name_raises():
    with pytest.raises(UnknownName):
        build_classifier("vgg_nonexistent", 3, 32, 10)


def _conv_widths(model):
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_alexnet_widths_follow_degan():
    full = build_classifier("alexnet", 3, 32, 10)
    half = build_classifier("alexnet_half", 3, 32, 10)
    assert _conv_widths(full) == [48, 128, 192, 192, 128]
    assert _conv_widths(half) == [24, 64, 96, 96, 64]
    assert full.feature_dim == 256 and half.feature_dim == 128
    # The released code's flatten size at 32x32: 128*3*3 and 64*3*3.
    assert [m.in_features for m in full.modules() if isinstance(m, nn.Linear)] == [1152, 512, 256]
    assert [m.in_features for m in half.modules() if isinstance(m, nn.Linear)] == [576, 256, 128]
    # Released bias init: conv2/conv4/conv5 biases 1.0, the rest 0.
    biases = [float(m.bias.detach().mean()) for m in full.modules() if isinstance(m, nn.Conv2d)]
    assert biases == [0.0, 1.0, 0.0, 1.0, 1.0]


def test_lenet_widths_follow_degan():
    full = build_classifier("lenet", 1, 32, 10)
    half = build_classifier("lenet_half", 1, 32, 10)
    assert _conv_widths(full) == [6, 16]
    assert _conv_widths(half) == [3, 8]
    assert [m.in_features for m in full.modules() if isinstance(m, nn.Linear)] == [400, 120, 84]
    assert [m.in_features for m in half.modules() if isinstance(m, nn.Linear)] == [200, 120, 84]


@pytest.mark.parametrize("name,n_convs", [("resnet8", 7), ("resnet20", 19), ("resnet32", 31)])
def test_cifar_resnet_depth_and_option_a(name, n_convs):
    model = build_classifier(name, 3, 32, 10)
    assert len(_conv_widths(model)) == n_convs  # + the head = 20 / 32 weighted layers
    assert model.feature_dim == 64
    # Option-A shortcuts are parameter-free: every conv is 3x3, none is a 1x1 projection.
    assert all(m.kernel_size == (3, 3) for m in model.modules() if isinstance(m, nn.Conv2d))
