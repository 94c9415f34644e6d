import math

import pytest
import torch
from torch import nn

import translate.losses  # noqa: F401  (registers the losses)
from translate.errors import ConfigError
from translate.losses import (
    AdversarialLoss,
    gradient_penalty,
    hinge_loss,
    lsgan_loss,
    r1_penalty,
    vanilla_gan_loss,
    wgan_loss,
)
from translate.registry import LOSSES

FUNCTIONS = {"vanilla": vanilla_gan_loss, "lsgan": lsgan_loss, "wgangp": wgan_loss, "hinge": hinge_loss}


def logits(*values: float) -> torch.Tensor:
    """A ``(1, 1, 1, n)`` patch map holding ``values``."""
    return torch.tensor(values).view(1, 1, 1, -1)


# ------------------------------------------------------------------------------------------ registry
def test_names_are_registered_and_build_without_arguments():
    for name in FUNCTIONS:
        assert isinstance(LOSSES.build(name), AdversarialLoss)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ConfigError) as info:
        LOSSES.build("nope")
    assert all(name in str(info.value) for name in FUNCTIONS)


def test_only_wgangp_asks_for_a_gradient_penalty():
    assert {name: LOSSES.build(name).uses_gradient_penalty for name in FUNCTIONS} == {
        "vanilla": False,
        "lsgan": False,
        "wgangp": True,
        "hinge": False,
    }


# -------------------------------------------------------------------------------------- known values
@pytest.mark.parametrize(
    ("name", "prediction", "target_is_real", "for_discriminator", "expected"),
    [
        ("vanilla", logits(0.0, 0.0), True, True, math.log(2)),
        ("vanilla", logits(0.0, 0.0), False, True, math.log(2)),
        ("vanilla", logits(2.0), True, True, math.log(1 + math.exp(-2))),
        ("vanilla", logits(2.0), False, True, math.log(1 + math.exp(2))),
        ("vanilla", logits(2.0), True, False, math.log(1 + math.exp(-2))),
        ("lsgan", logits(0.5, 0.5), True, True, 0.25),
        ("lsgan", logits(0.5, 0.5), False, True, 0.25),
        ("lsgan", logits(2.0, 0.0), True, True, (1 + 1) / 2),
        ("lsgan", logits(2.0, 0.0), False, True, (4 + 0) / 2),
        ("wgangp", logits(1.0, 3.0), True, True, -2.0),
        ("wgangp", logits(1.0, 3.0), False, True, 2.0),
        ("wgangp", logits(1.0, 3.0), True, False, -2.0),
        ("hinge", logits(-1.0, 0.5, 2.0), True, True, (2 + 0.5 + 0) / 3),
        ("hinge", logits(-1.0, 0.5, 2.0), False, True, (0 + 1.5 + 3) / 3),
        ("hinge", logits(-1.0, 0.5, 2.0), True, False, -0.5),
    ],
)
def test_known_values(name, prediction, target_is_real, for_discriminator, expected):
    loss = LOSSES.build(name)(prediction, target_is_real, for_discriminator=for_discriminator)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_vanilla_is_stable_for_large_logits():
    loss = vanilla_gan_loss(logits(200.0, -200.0), True)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(100.0)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_list_of_scales_is_averaged(name):
    torch.manual_seed(0)
    scales = [torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4)]
    for target_is_real in (True, False):
        for for_discriminator in (True, False):
            loss = LOSSES.build(name)
            expected = sum(loss(s, target_is_real, for_discriminator) for s in scales) / 2
            assert loss(scales, target_is_real, for_discriminator).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_equals_module(name):
    torch.manual_seed(0)
    prediction = torch.randn(3, 1, 5, 5)
    for target_is_real in (True, False):
        for for_discriminator in (True, False):
            module_value = LOSSES.build(name)(prediction, target_is_real, for_discriminator)
            function_value = FUNCTIONS[name](prediction, target_is_real, for_discriminator)
            assert torch.equal(module_value, function_value)


def test_empty_list_is_an_error():
    with pytest.raises(ValueError):
        lsgan_loss([], True)


# -------------------------------------------------------------------------------------- conventions
@pytest.mark.parametrize("name", FUNCTIONS)
def test_discriminator_and_generator_push_the_right_way(name):
    """D lowers its loss by raising D(real) and lowering D(fake); G's loss falls as D(fake) rises."""
    loss = LOSSES.build(name)

    def slope(target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        prediction = torch.full((2, 1, 3, 3), 0.5, requires_grad=True)
        loss(prediction, target_is_real, for_discriminator).backward()
        return prediction.grad

    assert (slope(True, True) < 0).all()
    assert (slope(False, True) > 0).all()
    assert (slope(True, False) < 0).all()


def test_hinge_generator_loss_is_not_the_discriminator_real_loss():
    prediction = logits(3.0)
    assert hinge_loss(prediction, True, for_discriminator=True).item() == 0.0  # saturated hinge
    assert hinge_loss(prediction, True, for_discriminator=False).item() == -3.0  # -E[D(G(z))]


# -------------------------------------------------------------------------------- gradient penalty
def linear_critic(weight: torch.Tensor) -> nn.Module:
    """D(x) = <w, x> + b on flattened images, output ``(N, 1)``."""
    linear = nn.Linear(weight.numel(), 1)
    with torch.no_grad():
        linear.weight.copy_(weight.view(1, -1))
    return nn.Sequential(nn.Flatten(), linear)


def pixel_critic(scale: float) -> nn.Conv2d:
    """D(x) = scale * x per pixel: a patch map whose mean has gradient scale / (H W) per pixel."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(scale)
    return conv


def images(n: int = 4, shape: tuple[int, ...] = (3, 4, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, *shape), torch.randn(n, *shape)


def test_penalty_is_zero_for_a_unit_norm_linear_critic():
    torch.manual_seed(0)
    unit = torch.randn(3 * 4 * 4)
    unit /= unit.norm()
    real, fake = images()
    assert gradient_penalty(linear_critic(unit), real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_penalty_and_its_weight_gradient_for_a_norm_three_linear_critic():
    torch.manual_seed(0)
    unit = torch.randn(3 * 4 * 4)
    unit /= unit.norm()
    critic = linear_critic(3 * unit)
    penalty = gradient_penalty(critic, *images())
    assert penalty.item() == pytest.approx((3 - 1) ** 2, rel=1e-5)
    penalty.backward()  # needs create_graph: the penalty depends on the weights through the gradient
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 4 u
    torch.testing.assert_close(critic[1].weight.grad.view(-1), 4 * unit)


def test_patch_critic_uses_the_mean_over_patches():
    real, fake = images(shape=(1, 2, 2))
    # grad of mean(a x) is a / 4 per pixel, norm a / 4 * sqrt(4) = a / 2
    assert gradient_penalty(pixel_critic(2.0), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    assert gradient_penalty(pixel_critic(4.0), real, fake).item() == pytest.approx(1.0, rel=1e-5)
    assert gradient_penalty(pixel_critic(4.0), real, fake, reduction="mean").item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("scale", "shape", "mean", "total"),
    [
        # D(x) = a x on an h x w map. mean: grad a / (h w) per pixel, norm a / sqrt(h w);
        # sum (yunjey's grad_outputs=ones): grad a per pixel, norm a sqrt(h w)
        (1.0, (1, 2, 2), (1 / 2 - 1) ** 2, (2 - 1) ** 2),  # the 2x2 map: norms 1/2 and 2
        (0.5, (1, 2, 2), (0.25 - 1) ** 2, (1 - 1) ** 2),  # sum: unit norm, no penalty
        (2.0, (1, 2, 2), (1 - 1) ** 2, (4 - 1) ** 2),  # mean: unit norm, no penalty
        (3.0, (1, 3, 3), (1 - 1) ** 2, (9 - 1) ** 2),  # 3x3: norms 3 / 3 and 3 * 3
        (2.0, (1, 1, 1), (2 - 1) ** 2, (2 - 1) ** 2),  # one output per sample: the reductions agree
    ],
)
def test_patch_map_reduction_mean_and_sum_against_hand_computed_values(scale, shape, mean, total):
    torch.manual_seed(0)
    real, fake = images(shape=shape)
    critic = pixel_critic(scale)
    assert gradient_penalty(critic, real, fake, reduction="mean").item() == pytest.approx(mean, abs=1e-6)
    assert gradient_penalty(critic, real, fake, reduction="sum").item() == pytest.approx(total, abs=1e-5)


def test_sum_reduction_is_yunjeys_penalty():
    """yunjey/stargan solver.py: D(x_hat) differentiated with grad_outputs=ones, per-sample L2 norm."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.LeakyReLU(0.01), nn.Conv2d(4, 1, 3, 1, 1))
    real, fake = images(n=3, shape=(3, 8, 8))
    torch.manual_seed(1)
    ours = gradient_penalty(critic, real, fake, reduction="sum")
    torch.manual_seed(1)
    alpha = torch.rand(real.size(0), 1, 1, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out_src = critic(x_hat)
    (dydx,) = torch.autograd.grad(out_src, x_hat, grad_outputs=torch.ones(out_src.size()), create_graph=True)
    dydx = dydx.view(dydx.size(0), -1)
    reference = torch.mean((torch.sqrt(torch.sum(dydx**2, dim=1)) - 1) ** 2)
    torch.testing.assert_close(ours, reference)
    assert out_src.shape[-2:] == (4, 4)  # a patch map, where the two reductions differ


def test_r1_is_half_the_squared_gradient_norm_on_the_real_images_only():
    torch.manual_seed(0)
    unit = torch.randn(3 * 4 * 4)
    unit /= unit.norm()
    critic = linear_critic(3 * unit)
    real, _ = images()
    penalty = r1_penalty(critic, real)
    assert penalty.item() == pytest.approx(0.5 * 3**2, rel=1e-5)
    penalty.backward()  # d/dw ||w||^2 / 2 = w
    torch.testing.assert_close(critic[1].weight.grad.view(-1), 3 * unit)
    # D(x) = a x on a 2 x 2 map: grad a / 4 (mean) or a (sum) per pixel over 4 pixels
    assert r1_penalty(pixel_critic(2.0), real[:, :1, :2, :2]).item() == pytest.approx(0.5 * 4 * (2 / 4) ** 2)
    assert r1_penalty(pixel_critic(2.0), real[:, :1, :2, :2], "sum").item() == pytest.approx(0.5 * 4 * 2**2)


def test_stargan_adds_r1_only_when_weighted():
    from translate.tasks.stargan import StarGAN

    labels = {"names": ["a", "b"], "kind": "attributes"}
    task = StarGAN(
        generator={"name": "stargan", "base_channels": 4, "num_blocks": 1},
        discriminator={"name": "stargan", "base_channels": 4, "num_layers": 2},
        adversarial_loss="vanilla",
        labels=labels,
        image_size=8,
    )
    batch = {"image": torch.randn(2, 3, 8, 8), "label": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    assert set(task.discriminator_losses(batch, task(batch))) == {"adv", "cls"}
    task.set_loss_weights({"r1": 1.0})
    losses = task.discriminator_losses(batch, task(batch))
    assert set(losses) == {"adv", "cls", "r1"} and losses["r1"].item() > 0


def test_unknown_reduction_is_a_config_error():
    with pytest.raises(ConfigError, match="reduction must be one of mean, sum; got 'max'"):
        gradient_penalty(pixel_critic(1.0), *images(shape=(1, 2, 2)), reduction="max")


class MultiScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scales = nn.ModuleList([pixel_critic(2.0), pixel_critic(4.0)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [d(x) for d in self.scales]


class SourceAndClass(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.src = pixel_critic(4.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.src(x), 1000 * x.flatten(1)


def test_list_output_averages_the_per_scale_penalties_as_the_losses_average_scales():
    penalty = gradient_penalty(MultiScale(), *images(shape=(1, 2, 2)))
    assert penalty.item() == pytest.approx((0.0 + 1.0) / 2, rel=1e-5)


def test_penalty_is_computed_in_float32_under_autocast():
    real, fake = images(shape=(1, 2, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = gradient_penalty(pixel_critic(4.0 + 1e-3), real, fake)
    assert penalty.dtype == torch.float32
    # exact in float32: (4.001 / 2 - 1)^2; bfloat16 would round 4.001 to 4.0 and give exactly 1.0
    assert penalty.item() == pytest.approx((4.001 / 2 - 1) ** 2, rel=1e-6)


def test_halved_discriminator_objective_keeps_lambda_relative_to_the_wasserstein_term():
    from translate.losses import WGANGPLoss
    from translate.tasks.common import discriminator_objective

    torch.manual_seed(0)
    real, fake = images(shape=(1, 2, 2))
    critic = pixel_critic(4.0)
    losses = discriminator_objective(WGANGPLoss(), critic, real, fake)
    torch.manual_seed(0)
    penalty = gradient_penalty(critic, real, fake)
    wasserstein = -critic(real).mean() + critic(fake).mean()
    # 0.5 * (W + 10 GP) == adv + 10 * gp: lambda = 10 on the same footing as the Wasserstein term
    torch.testing.assert_close(losses["adv"] + 10 * losses["gp"], 0.5 * (wasserstein + 10 * penalty))


def test_tuple_output_penalises_only_the_first_element():
    assert gradient_penalty(SourceAndClass(), *images(shape=(1, 2, 2))).item() == pytest.approx(1.0, rel=1e-5)


def test_penalty_reaches_the_critic_weights_but_not_the_images():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 2))
    real = torch.randn(2, 3, 4, 4)
    fake = torch.randn(2, 3, 4, 4, requires_grad=True)
    gradient_penalty(critic, real, fake).backward()
    weights = [p for p in critic.parameters() if p.dim() > 1]  # the last bias does not move the gradient
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)
    assert fake.grad is None


def test_penalty_is_reproducible_from_the_global_seed():
    critic = nn.Sequential(nn.Conv2d(3, 1, 3), nn.Tanh())
    real, fake = images()
    torch.manual_seed(1)
    first = gradient_penalty(critic, real, fake)
    torch.manual_seed(1)
    assert torch.equal(first, gradient_penalty(critic, real, fake))
