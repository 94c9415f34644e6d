"""Every registered generator and discriminator gets the same checks at a tiny width and small size."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import nn

import translate.discriminators  # noqa: F401  (registers the discriminators)
import translate.generators  # noqa: F401  (registers the generators)
from translate.errors import ConfigError
from translate.layers import INIT_TYPES, get_norm_layer, init_weights, norm_uses_bias
from translate.registry import DISCRIMINATORS, GENERATORS, Registry, accepted_kwargs

# Smallest convenient input side per network; networks not listed use DEFAULT_SIZE.
INPUT_SIZE = {"unet": 256, "unet_128": 128, "unet_256": 256, "multiscale": 128}
DEFAULT_SIZE = 32
# Options that make a network tiny; networks not listed get base_channels=4 where they accept it.
TINY: dict[str, dict[str, Any]] = {
    "multiscale": {"discriminator": {"name": "patchgan", "base_channels": 4}},
    "stargan": {"base_channels": 4, "num_layers": 3, "image_size": DEFAULT_SIZE, "num_classes": 3},
    "mlp": {"hidden": [8], "image_size": DEFAULT_SIZE},
    "dcgan": {"base_channels": 4, "image_size": DEFAULT_SIZE},
}
BATCH = 2


def build_tiny(registry: Registry, name: str, **options: Any) -> nn.Module:
    accepted = accepted_kwargs(registry.get(name))
    tiny = TINY.get(name, {"base_channels": 4})
    tiny = {k: v for k, v in tiny.items() if accepted is None or k in accepted}
    torch.manual_seed(0)
    return registry.build({"name": name, **tiny, **options})


def names_accepting(registry: Registry, option: str) -> list[str]:
    return [n for n in registry.names() if option in (accepted_kwargs(registry.get(n)) or [option])]


def image(size: int, channels: int = 3, width: int | None = None) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(BATCH, channels, size, width or size) * 2 - 1


def image_to_image(module: nn.Module) -> bool:
    """Whether ``module`` maps one image tensor to one (others, e.g. noise- or label-conditioned, are not)."""
    return len(inspect.signature(module.forward).parameters) == 1


def assert_every_parameter_gets_a_gradient(module: nn.Module) -> None:
    for name, param in module.named_parameters():
        assert param.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        # Biases in front of a mean-subtracting norm (junyanz's conv-bias rule with instance norm) get a
        # gradient of ~0 by construction, so only weights must receive a non-zero one.
        if param.ndim > 1:
            assert param.grad.abs().sum() > 0, f"{name} received a zero gradient"


def check_generator(name: str, in_channels: int = 3, out_channels: int = 2, **options: Any) -> nn.Module:
    g = build_tiny(GENERATORS, name, in_channels=in_channels, out_channels=out_channels, **options)
    if not image_to_image(g):
        pytest.skip(f"{name} does not map one image to one image; tested in its own file")
    size = INPUT_SIZE.get(name, DEFAULT_SIZE)
    x = image(size, in_channels, width=size + g.size_multiple)  # non-square: H and W are independent
    y = g(x)
    assert y.shape == (BATCH, out_channels, size, size + g.size_multiple)
    assert torch.isfinite(y).all()
    assert y.min() >= -1 and y.max() <= 1
    y.square().mean().backward()
    assert_every_parameter_gets_a_gradient(g)
    return g


def logit_maps(output: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return output if isinstance(output, list) else [output]


def check_discriminator(name: str, in_channels: int = 3, **options: Any) -> list[torch.Tensor]:
    d = build_tiny(DISCRIMINATORS, name, in_channels=in_channels, **options)
    output = d(image(INPUT_SIZE.get(name, DEFAULT_SIZE), in_channels))
    class_loss = 0.0
    if isinstance(output, tuple):  # a discriminator with a class head: (realness, (N, num_classes) logits)
        output, logits = output
        assert logits.ndim == 2 and logits.shape[0] == BATCH
        class_loss = logits.square().mean()
    outputs = logit_maps(output)
    for out in outputs:
        assert out.ndim == 4 and out.shape[:2] == (BATCH, 1) and out.shape[2] > 0 and out.shape[3] > 0
        assert torch.isfinite(out).all()
    (sum(out.square().mean() for out in outputs) + class_loss).backward()
    assert_every_parameter_gets_a_gradient(d)
    return outputs


def spectral_norms(module: nn.Module) -> list[float]:
    """Largest singular value of every conv weight, as the forward pass sees it."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() for m in convs]


# ---------------------------------------------------------------- registries


def test_importing_the_packages_registers_the_networks() -> None:
    assert {"resnet_6blocks", "resnet_9blocks", "unet_128", "unet_256"} <= set(GENERATORS.names())
    assert {"patchgan", "pixel", "multiscale"} <= set(DISCRIMINATORS.names())


# ---------------------------------------------------------------- generators


@pytest.mark.parametrize("name", names_accepting(GENERATORS, "in_channels"))
def test_generator(name: str) -> None:
    g = check_generator(name)
    assert isinstance(g.size_multiple, int) and g.size_multiple > 0


@pytest.mark.parametrize("classes", [0, 3])
@pytest.mark.parametrize("name", names_accepting(GENERATORS, "latent_dim"))
def test_noise_generator(name: str, classes: int) -> None:
    g = build_tiny(GENERATORS, name, latent_dim=5, out_channels=1, num_classes=classes)
    labels = torch.tensor([0, 2]) if classes else None
    y = g(torch.randn(BATCH, 5), labels)
    assert y.shape == (BATCH, 1, DEFAULT_SIZE, DEFAULT_SIZE) and y.min() >= -1 and y.max() <= 1
    y.square().mean().backward()
    assert_every_parameter_gets_a_gradient(g)
    with pytest.raises(ConfigError, match="labels" if classes else "unconditional"):
        g(torch.randn(BATCH, 5), None if classes else torch.tensor([0, 1]))


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize(
    "name",
    sorted(set(names_accepting(GENERATORS, "upsample")) & set(names_accepting(GENERATORS, "in_channels"))),
)
def test_generator_options(name: str, norm: str, upsample: str) -> None:
    check_generator(name, in_channels=1, out_channels=3, norm=norm, upsample=upsample)


@pytest.mark.parametrize("name", names_accepting(GENERATORS, "dropout"))
def test_generator_dropout_is_random_in_training_only(name: str) -> None:
    g = check_generator(name, dropout=True)
    x = image(INPUT_SIZE.get(name, DEFAULT_SIZE))
    with torch.no_grad():
        assert not torch.equal(g(x), g(x))
        g.eval()
        assert torch.equal(g(x), g(x))


@pytest.mark.parametrize("name", names_accepting(GENERATORS, "padding"))
@pytest.mark.parametrize("padding", ["reflect", "replicate", "zero"])
def test_generator_padding(name: str, padding: str) -> None:
    check_generator(name, padding=padding)


@pytest.mark.parametrize(
    "option", [{"upsample": "bilinear"}, {"padding": "circular"}, {"norm": "group"}], ids=lambda o: str(o)
)
def test_generator_unknown_option_value_is_a_config_error(option: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        GENERATORS.build({"name": "resnet_6blocks", "base_channels": 4, **option})


# ---------------------------------------------------------------- discriminators


@pytest.mark.parametrize("name", DISCRIMINATORS.names())
def test_discriminator(name: str) -> None:
    check_discriminator(name)


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("name", names_accepting(DISCRIMINATORS, "norm"))
def test_discriminator_options(name: str, norm: str, spectral_norm: bool) -> None:
    check_discriminator(name, in_channels=6, norm=norm, spectral_norm=spectral_norm)


def test_patchgan_with_3_layers_classifies_70x70_patches() -> None:
    d = build_tiny(DISCRIMINATORS, "patchgan", num_layers=3, norm="none")
    x = image(256).requires_grad_()
    out = d(x)
    assert out.shape == (BATCH, 1, 30, 30)
    out[0, 0, 15, 15].backward()
    rows, cols = x.grad[0].abs().sum(0).nonzero().unbind(1)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


def test_pixel_discriminator_keeps_the_resolution() -> None:
    assert check_discriminator("pixel")[0].shape == (BATCH, 1, DEFAULT_SIZE, DEFAULT_SIZE)


@pytest.mark.parametrize("num_scales", [1, 2, 3])
def test_multiscale_returns_one_logit_map_per_scale(num_scales: int) -> None:
    outputs = check_discriminator("multiscale", num_scales=num_scales)
    assert isinstance(outputs, list) and len(outputs) == num_scales
    sizes = [out.shape[-1] for out in outputs]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == num_scales


def test_multiscale_accepts_an_inner_discriminator_by_name() -> None:
    outputs = check_discriminator("multiscale", num_scales=2, discriminator="pixel")
    assert [out.shape[-1] for out in outputs] == [128, 64]


@pytest.mark.parametrize("name", names_accepting(DISCRIMINATORS, "spectral_norm"))
@pytest.mark.parametrize("init_type", INIT_TYPES)
def test_spectral_norm_bounds_every_conv_also_after_init(name: str, init_type: str) -> None:
    d = build_tiny(DISCRIMINATORS, name, base_channels=8, spectral_norm=True)
    init_weights(d, init_type)
    d.train()
    # Power iteration slightly underestimates sigma, hence the small margin above 1.
    assert all(0.99 < s < 1.1 for s in spectral_norms(d))


# ---------------------------------------------------------------- full-size parameter counts

# junyanz's pix2pix/CycleGAN networks at their default width (64), counted by construction. The CycleGAN
# discriminator is patchgan with instance norm on 3 channels; pix2pix's sees 6 (input + output).
FULL_SIZE = [
    (GENERATORS, "resnet_9blocks", {}, 11_378_179),
    (GENERATORS, "resnet_6blocks", {}, 7_837_699),
    (GENERATORS, "unet_256", {}, 54_413_955),
    (GENERATORS, "unet_128", {}, 41_828_995),
    (DISCRIMINATORS, "patchgan", {"norm": "batch"}, 2_765_633),
    (DISCRIMINATORS, "patchgan", {"norm": "instance"}, 2_764_737),
    (DISCRIMINATORS, "patchgan", {"norm": "batch", "in_channels": 6}, 2_768_705),
    (DISCRIMINATORS, "pixel", {"norm": "batch"}, 8_832),
]


@pytest.mark.parametrize(
    "registry, name, options, expected", FULL_SIZE, ids=[f"{n}-{o}" for _, n, o, _ in FULL_SIZE]
)
def test_full_size_parameter_count(registry: Registry, name: str, options: dict, expected: int) -> None:
    net = registry.build({"name": name, **options})
    assert sum(p.numel() for p in net.parameters()) == expected


def test_spectral_norm_adds_no_parameters() -> None:
    plain, spectral = (DISCRIMINATORS.build("patchgan", spectral_norm=s) for s in (False, True))
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in spectral.parameters())


# ---------------------------------------------------------------- layers


def test_norm_layers() -> None:
    x = image(8, channels=4)
    batch, instance, none = (get_norm_layer(n)(4) for n in ("batch", "instance", "none"))
    assert len(list(batch.parameters())) == 2 and batch.running_mean is not None
    assert list(instance.parameters()) == [] and instance.running_mean is None
    assert torch.equal(none(x), x)
    # Batch norm has a learned shift, so a conv in front of it needs no bias; the others do.
    assert [norm_uses_bias(n) for n in ("batch", "instance", "none")] == [False, True, True]


@pytest.mark.parametrize("call", [get_norm_layer, norm_uses_bias])
def test_unknown_norm_is_a_config_error_listing_the_known_ones(call: Any) -> None:
    with pytest.raises(ConfigError, match="batch, instance, instance_affine, layer, none"):
        call("group")


def test_unknown_norm_in_a_network_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        DISCRIMINATORS.build({"name": "patchgan", "norm": "group"})


@pytest.mark.parametrize("init_type", INIT_TYPES)
def test_init_weights(init_type: str) -> None:
    net = build_tiny(DISCRIMINATORS, "patchgan", base_channels=32, norm="batch")
    linear = nn.Linear(256, 128)
    model = nn.Sequential(net, linear)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert init_weights(model, init_type, gain=0.02) is model
    if init_type == "default":  # PyTorch's own initialisation is kept
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        return
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert all(m.bias is None or not m.bias.any() for m in convs)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_weights = torch.cat([m.weight.detach() for m in bns])
    assert abs(bn_weights.mean().item() - 1) < 0.01 and 0.01 < bn_weights.std().item() < 0.03
    assert not torch.cat([m.bias.detach() for m in bns]).any()
    if init_type == "normal":
        assert all(abs(m.weight.std().item() - 0.02) < 0.002 for m in convs)
    if init_type == "orthogonal":
        w = linear.weight.detach()
        torch.testing.assert_close(w @ w.T, 0.02**2 * torch.eye(128), atol=1e-6, rtol=0)


def test_unknown_init_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="normal, xavier, kaiming, orthogonal"):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")


def test_batch_statistics_runs_as_training_without_changing_the_module():
    from translate.layers import batch_statistics

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)).eval()
    net[1].running_mean.fill_(5.0)
    x = torch.randn(2, 3, 8, 8)
    with batch_statistics(net):
        assert all(m.training for m in net.modules())
        normalised = net[1](net[0](x))
        dropped = net(x)
    # the batch's own statistics, not the running mean of 5; dropout on
    assert normalised.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (dropped == 0).float().mean() > 0.3
    # nothing changed: modes restored, running statistics untouched
    assert not any(m.training for m in net.modules()) and net[1].track_running_stats
    assert torch.equal(net[1].running_mean, torch.full((4,), 5.0))
