import pytest
import torch

from distortion.models import ConvClassifier, ConvEmbedding, MLPEmbedding, UNet


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 28), (3, 33), (1, 150)])
def test_unet_keeps_shape_and_range(channels: int, size: int) -> None:
    g = UNet(in_channels=channels, depth=3, width=4)
    x = torch.rand(2, channels, size, size)
    y = g(x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1


def test_paper_unet_has_the_papers_channels() -> None:
    g = UNet(in_channels=1, depth=3, width=64)
    convs = [m.out_channels for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [64, 64, 128, 128, 256, 256, 128, 128, 64, 64, 1]


def test_unet_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="depth and width must be >= 1"):
        UNet(depth=0)


@pytest.mark.parametrize("net", [MLPEmbedding(), ConvEmbedding(width=8, dim=16)], ids=["mlp", "cnn"])
def test_embeddings_are_unit_norm_and_pass_gradients_to_the_input(net: torch.nn.Module) -> None:
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    e = net(x)
    assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    e.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_conv_embedding_and_classifier_take_colour_images_of_any_size() -> None:
    x = torch.rand(2, 3, 64, 48)
    assert ConvEmbedding(in_channels=3, width=4, dim=8)(x).shape == (2, 8)
    assert ConvClassifier(in_channels=3, width=4)(x).shape == (2, 10)


def test_residual_unet_starts_near_the_identity_and_changes_in_logit_space() -> None:
    from distortion.imaging.statistics import pearson

    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 40)
    g = UNet(3, depth=2, width=8, residual=True)
    assert pearson(x, g(x)).min() > 0.9
    with torch.no_grad():
        g.head.weight.zero_()
        g.head.bias.zero_()
    inner = x.clamp(1e-3, 1 - 1e-3)
    torch.testing.assert_close(g(x), inner, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="residual=True needs out_channels == in_channels"):
        UNet(3, out_channels=1, residual=True)


class PooledTemplate(torch.nn.Module):
    """An F that sees only 4x4 block means: pixels shuffled within a block leave F(x) unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 4).flatten(1)


@pytest.mark.parametrize("shape, stages, upsample", [((1, 28, 28), 2, 1), ((3, 150, 150), 3, 2)])
def test_carrier_output_depends_on_x_only_through_its_template(shape, stages, upsample) -> None:
    from distortion.models import CarrierGenerator

    f = PooledTemplate()
    dim = shape[0] * (shape[1] // 4) * (shape[2] // 4)
    g = CarrierGenerator(dim, shape, noise_dim=4, width=4, stages=stages, upsample=upsample)
    assert not g.reads_image
    x = torch.rand(2, *shape)
    blocks = x.unfold(2, 4, 4).unfold(3, 4, 4)  # shuffle the pixels inside every 4x4 block
    order = torch.randperm(16)
    shuffled = blocks.reshape(*blocks.shape[:4], 16)[..., order].reshape(blocks.shape)
    x2 = x.clone()
    h, w = blocks.shape[2] * 4, blocks.shape[3] * 4
    x2[..., :h, :w] = shuffled.permute(0, 1, 2, 4, 3, 5).reshape(2, shape[0], h, w)
    assert not torch.equal(x, x2) and torch.allclose(f(x), f(x2), atol=1e-6)
    torch.manual_seed(0)
    a = g(x, f(x))
    torch.manual_seed(0)
    assert torch.allclose(a, g(x2, f(x2)), atol=1e-6)  # same template, same noise: the same image
    torch.manual_seed(0)
    assert torch.equal(a, g(torch.zeros_like(x), f(x)))  # the pixels of x are never read
    assert a.shape == x.shape and 0 <= float(a.min()) and float(a.max()) <= 1
    assert not torch.equal(a, g(x, f(x)))  # fresh noise at every call
