"""Models: parameter counts from the architecture by hand, forward/backward, shape errors."""

from __future__ import annotations

import functools

import pytest
import torch

from deep.models import MODELS, build


def linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def conv(i, o, k, bias=False):
    return i * o * k * k + (o if bias else 0)


def bn(c):
    return 2 * c


def f1_count(width=512, depth=5, d_in=784, classes=10, batch_norm=True):
    total, fan_in = 0, d_in
    for _ in range(depth):
        total += linear(fan_in, width) + (bn(width) if batch_norm else 0)
        fan_in = width
    return total + linear(fan_in, classes)


def shallow_count(classes):
    return (
        conv(3, 64, 5)
        + bn(64)
        + conv(64, 64, 5)
        + bn(64)
        + linear(64 * 7 * 7, 384, False)
        + bn(384)
        + linear(384, 192, False)
        + bn(192)
        + linear(192, classes)
    )


def resnet_count(n, widths, classes, stem=16):
    total = conv(3, stem, 3) + bn(stem)
    c_in = stem
    for i, w in enumerate(widths):
        for b in range(n):
            stride = 2 if (i > 0 and b == 0) else 1
            total += conv(c_in, w, 3) + bn(w) + conv(w, w, 3) + bn(w)
            if stride != 1 or c_in != w:
                total += conv(c_in, w, 1) + bn(w)
            c_in = w
    return total + linear(c_in, classes)


def vgg16_count(classes):
    total, c_in = 0, 3
    for w in [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]:
        total += conv(c_in, w, 3) + bn(w)
        c_in = w
    return total + linear(512, 512, False) + bn(512) + linear(512, classes)


def alexnet_count(classes):
    feats = (
        conv(3, 64, 11)
        + bn(64)
        + conv(64, 192, 5)
        + bn(192)
        + conv(192, 384, 3)
        + bn(384)
        + conv(384, 256, 3)
        + bn(256)
        + conv(256, 256, 3)
        + bn(256)
    )
    return (
        feats
        + linear(9216, 4096, False)
        + bn(4096)
        + linear(4096, 4096, False)
        + bn(4096)
        + linear(4096, classes)
    )


@functools.cache
def built(name):
    """Each model is built once per session (AlexNet alone initialises 61M weights)."""
    torch.manual_seed(0)
    return build(name)


EXPECTED = {
    "f1": f1_count(),
    "c1": shallow_count(10),
    "c3": shallow_count(100),
    "resnet44": resnet_count(7, (16, 32, 64), 10),
    "vgg16": vgg16_count(10),
    "wresnet16_4": resnet_count(2, (64, 128, 256), 10),
    "alexnet": alexnet_count(1000),
    "f1_small": f1_count(128, 2),
    "mlp1d": f1_count(256, 3, 40),
    "mlp1d_nobn": f1_count(256, 3, 40, batch_norm=False),
    "mlp_digits": f1_count(128, 2, 64),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_count_matches_hand_count(name):
    model = built(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[name]


def _count(name: str) -> int:
    return sum(p.numel() for p in built(name).parameters())


def test_built_models_have_the_published_sizes():
    """Sizes counted on the built networks, checked against the papers' tables (not against
    constants computed here): ResNet44 for CIFAR-10 has 0.66M parameters (He et al. 2016,
    Table 6), WRN-16-4 2.7M (Zagoruyko & Komodakis 2016, Table 4). Catches a wrong stage
    width or depth (ResNet44 with 16/32/128 channels has 1.8M; with n=5 blocks, 0.47M)."""
    assert round(_count("resnet44") / 1e6, 2) == 0.66
    assert round(_count("wresnet16_4") / 1e6, 1) == 2.7


def test_c3_differs_from_c1_only_in_the_classifier():
    """192 -> 100 instead of 192 -> 10: 90 more rows of 192 weights and a bias each.
    Catches a C3 that changes anything else (a wider FC, a bias-free classifier)."""
    assert _count("c3") - _count("c1") == 90 * 193
    c1, c3 = built("c1"), built("c3")
    shapes1 = [p.shape for p in c1.parameters()]
    shapes3 = [p.shape for p in c3.parameters()]
    assert shapes1[:-2] == shapes3[:-2]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward(name):
    model = built(name)
    model.zero_grad()
    x = torch.randn(2, *model.input_shape)
    out = model(x)
    assert out.shape == (2, model.num_classes)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_num_classes_and_flat_inputs():
    model = build("c1", num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    f1 = build("f1")
    assert f1(torch.randn(3, 784)).shape == (3, 10)  # flat MNIST works too


@pytest.mark.parametrize(
    "name, bad",
    [
        ("c1", (2, 3, 28, 28)),
        ("resnet44", (2, 32, 32)),
        ("f1", (2, 1, 32, 32)),
        ("alexnet", (2, 3, 32, 32)),
    ],
)
def test_wrong_input_shape_is_a_clear_error(name, bad):
    model = built(name)
    with pytest.raises(
        ValueError, match=r"expects input of shape \(N, " + ", ".join(map(str, model.input_shape))
    ):
        model(torch.randn(*bad))


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="resnet44.*vgg16|valid names") as info:
        build("resnet50")
    for name in MODELS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="num_classes"):
        build("f1", num_classes=1)
