"""Huge images in tiles: the layout, whole-image statistics (exact where the receptive field allows), the
blend, bounded activations, and the Translator's tiles (on request and above the pixel budget)."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import tiny_cyclegan_run
from torch import nn

from translate import Translator
from translate.errors import ConfigError
from translate.generators.munit import MunitGenerator, MunitTranslator
from translate.generators.resnet import ResnetGenerator
from translate.inference import tiles
from translate.inference.tiles import Axis, per_image_norms, translate_tiled
from translate.layers import batch_statistics, init_weights


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` -> the 0..255 values an output file holds."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round()


def photo_like(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``(1, 3, H, W)`` in [-1, 1] with content that varies across the image, as a photo's does: smooth
    gradients (sky to ground), blobs of colour, fine texture."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)
    channels = [0.8 - 1.2 * y, 0.3 * torch.sin(6 * x + 2 * y), 0.5 * x - 0.4]
    image = torch.stack(channels)
    for _ in range(12):  # blobs
        cy, cx, radius = torch.rand(3, generator=generator)
        blob = torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.01 + 0.02 * radius))
        image += blob * (torch.rand(3, 1, 1, generator=generator) * 2 - 1)
    image += 0.15 * torch.randn(3, height, width, generator=generator)
    return image.clamp(-1, 1)[None]


def resnet(base_channels: int = 8, num_blocks: int = 3, norm: str = "instance") -> nn.Module:
    torch.manual_seed(0)
    network = ResnetGenerator(base_channels=base_channels, num_blocks=num_blocks, norm=norm).eval()
    init_weights(network, "normal", 0.02)  # as training starts
    return network


class OwnStatistics(tiles.WholeImageNorms):
    """Finds no norm layer: each tile on its own statistics, as plain tiling does."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__(network)
        self.layers = []


# ------------------------------------------------------------------------------------------------ layout
@pytest.mark.parametrize("length", [96, 100 * 4, 129 * 4, 1000])
@pytest.mark.parametrize(("tile", "overlap", "multiple"), [(64, 16, 4), (128, 32, 4), (96, 8, 32)])
def test_tiles_cover_the_axis_their_cores_partition_it_and_the_weights_sum_to_one(
    length, tile, overlap, multiple
):
    length = -(-length // multiple) * multiple
    axis = Axis.plan(length, tile, overlap, multiple)
    assert axis.size % multiple == 0 and axis.size <= max(tile, multiple) + multiple
    assert all(start % multiple == 0 for start in axis.starts)
    assert axis.starts[0] == 0 and axis.starts[-1] + axis.size == length
    bounds = [b for core in axis.cores for b in core]
    assert bounds[0] == 0 and bounds[-1] == length and bounds == sorted(bounds)
    assert all(a == b for a, b in zip(bounds[1::2], bounds[2::2])), "cores meet without gaps or overlaps"
    for start, (low, high) in zip(axis.starts, axis.cores):
        assert start <= low < high <= start + axis.size and low % multiple == 0
    for left, right in zip(axis.starts, axis.starts[1:]):  # every neighbour overlaps enough
        assert left + axis.size - right >= min(overlap, axis.size - multiple)
    total = torch.zeros(length, dtype=torch.float64)
    for index, start in enumerate(axis.starts):
        total[start : start + axis.size] += axis.window(index)
    if all(b - a >= axis.size // 2 for a, b in zip(axis.starts, axis.starts[1:])):  # at most two deep
        torch.testing.assert_close(total, torch.ones(length, dtype=torch.float64))


# ------------------------------------------------------------------------------------------------ norms
class PointwiseNet(nn.Module):
    """1x1 convs between instance, group and layer norms: no receptive field, so no tile edge effects:
    tiles must give the untiled result exactly when every norm uses whole-image statistics."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.Sequential(
            nn.Conv2d(3, 8, 1),
            nn.InstanceNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 1),
            nn.InstanceNorm2d(8, affine=True),
            nn.ReLU(),
            nn.Conv2d(8, 8, 1),
            nn.GroupNorm(2, 8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 1),
            nn.GroupNorm(1, 8),  # the "layer" norm of UNIT's decoder
            nn.Conv2d(8, 3, 1),
            nn.Tanh(),
        )
        for norm in self.layers:
            if getattr(norm, "weight", None) is not None and not isinstance(norm, nn.Conv2d):
                nn.init.normal_(norm.weight, 1.0, 0.3)
                nn.init.normal_(norm.bias, 0.0, 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_whole_image_statistics_are_exact_layer_after_layer(monkeypatch):
    network, image = PointwiseNet().eval(), photo_like(96, 160)
    with torch.no_grad():
        whole = network(image)
        tiled = translate_tiled(network, image, tile=32, overlap=8)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)

    monkeypatch.setattr(tiles, "WholeImageNorms", OwnStatistics)
    with torch.no_grad():
        naive = translate_tiled(network, image, tile=32, overlap=8)
    assert (naive - whole).abs().mean() > 0.02, "the tone shifts from tile to tile"


def test_tiled_resnet_matches_the_whole_image_without_seams():
    """A random ResNet generator with instance norm (as training starts) on a 256 px photo-like image, in
    128 px tiles: within 2/255 of the untiled image on average, and also within 2/255 in every band where
    tiles overlap and blend (a seam would show there first)."""
    network, image = resnet(), photo_like(256, 256)
    with torch.no_grad():
        whole = network(image)
        tiled = translate_tiled(network, image, tile=128, overlap=32, multiple=4)
    difference = (as_uint8(tiled) - as_uint8(whole)).abs()[0].mean(0)
    assert difference.mean() <= 2, f"mean absolute difference {difference.mean():.2f}/255"
    axis = Axis.plan(256, 128, 32, 4)
    for left, right in zip(axis.starts, axis.starts[1:]):
        band = slice(right, left + axis.size)
        for where in (difference[:, band], difference[band, :]):
            assert where.mean() <= 2, f"a seam in the band {band}: {where.mean():.2f}/255"


def test_tiled_munit_gives_its_adain_and_layer_norms_whole_image_statistics(monkeypatch):
    """MUNIT's decoder normalises by its input twice over: AdaIN (an instance norm, then the style's scale
    and shift) in the residual blocks, layer norm in the up-sampling head. In tiles both take the whole
    image's statistics: within 2/255 of the untiled translation, where each tile on its own statistics is
    several times further off."""
    torch.manual_seed(0)
    generator = MunitGenerator(base_channels=16, num_res=2)
    network = MunitTranslator(generator.content_encoder, generator.style_encoder, generator.decoder).eval()
    image, style = photo_like(128, 128), torch.randn(1, generator.style_dim, 1, 1)

    def tiled() -> torch.Tensor:
        return translate_tiled(network, image, lambda x: network(x, style), tile=64, overlap=16, multiple=4)

    with torch.no_grad():
        whole, statistics_of_the_image = as_uint8(network(image, style)), as_uint8(tiled())
        monkeypatch.setattr(tiles, "WholeImageNorms", OwnStatistics)
        statistics_of_each_tile = as_uint8(tiled())
    mean_difference = (statistics_of_the_image - whole).abs().mean()
    assert mean_difference <= 2, f"{mean_difference:.2f}/255"
    assert (statistics_of_each_tile - whole).abs().mean() > 3 * mean_difference


def test_passes_resume_from_the_trunk_and_give_what_running_from_the_input_gives(monkeypatch):
    """A ResNet's body is a chain: each statistics pass resumes from the newest final output of its low-
    resolution middle (kept on disk) instead of the input. Same result, far fewer convolutions."""
    network, image = resnet(num_blocks=4), photo_like(128, 160)
    computed = []
    convolve = nn.Conv2d.forward
    monkeypatch.setattr(nn.Conv2d, "forward", lambda self, x: computed.append(1) or convolve(self, x))
    with torch.no_grad():
        resumed = translate_tiled(network, image, tile=64, overlap=16, multiple=4)
        convolutions_resumed = len(computed)
        monkeypatch.setattr(tiles, "CACHE_VALUES_PER_PIXEL", 0)  # keep nothing: every pass from the input
        computed.clear()
        from_input = translate_tiled(network, image, tile=64, overlap=16, multiple=4)
    torch.testing.assert_close(resumed, from_input, atol=1e-6, rtol=0)
    assert convolutions_resumed < 0.5 * len(computed), (convolutions_resumed, len(computed))


def test_no_layer_ever_sees_more_than_a_tile():
    """Peak memory is bounded by the tile: every activation of every layer is at most tile-sized."""
    network, image = resnet(), photo_like(256, 192)
    largest = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: largest.append(o.shape[-2] * o.shape[-1]))
        for m in network.modules()
    ]
    with torch.no_grad():
        translate_tiled(network, image, tile=64, overlap=16, multiple=4)
    for hook in hooks:
        hook.remove()
    assert max(largest) <= (64 + 2 * 3) ** 2  # a tile and the 7x7 conv's reflection padding


def test_batch_norm_on_batch_statistics_is_an_instance_norm_per_image():
    """pix2pix's test mode (batch norm on the statistics of the one image at hand) is the instance norm
    ``per_image_norms`` makes: equal outputs, dropout included (the same seed), the original untouched."""
    network = resnet(norm="batch")
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.2)
            nn.init.normal_(module.bias, 0.0, 0.2)
    image = photo_like(64, 48)
    converted = per_image_norms(network)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in converted.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in network.modules())
    with torch.no_grad(), batch_statistics(network):
        expected = network(image)
    with torch.no_grad():
        torch.testing.assert_close(converted(image), expected, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------ Translator
@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    return tiny_cyclegan_run(tmp_path_factory, steps=1)


def test_translator_tiles_on_request_and_above_the_pixel_budget(cyclegan_run, monkeypatch, caplog):
    image = photo_like(150, 202)  # padded to 152 x 204 inside, cropped back
    whole = Translator.from_run(cyclegan_run, tile=0)(image)
    tiled = Translator.from_run(cyclegan_run, tile=96, overlap=32)(image)
    assert tiled.shape == whole.shape
    assert (as_uint8(tiled) - as_uint8(whole)).abs().mean() <= 2

    monkeypatch.setattr("translate.inference.translator.TILE_ABOVE_PIXELS", 100 * 100)
    monkeypatch.setattr("translate.inference.translator.DEFAULT_TILE", 96)
    caplog.set_level(logging.INFO, logger="translate")
    auto = Translator.from_run(cyclegan_run, overlap=32)
    torch.testing.assert_close(auto(image), tiled)
    assert "tiles with whole-image statistics" in caplog.text
    assert caplog.text.count("tiles with whole-image statistics") == 1
    torch.testing.assert_close(
        auto(photo_like(64, 64)), Translator.from_run(cyclegan_run, tile=0)(photo_like(64, 64))
    )

    with pytest.raises(ConfigError, match="at most half a tile"):
        Translator.from_run(cyclegan_run, tile=64, overlap=40)
