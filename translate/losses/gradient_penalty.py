"""The WGAN-GP gradient penalty (Gulrajani et al., 2017) and R1 (Mescheder et al., 2018): the one definition
of each that every task uses."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from translate.errors import ConfigError

GP_REDUCTIONS = ("mean", "sum")
"""How a patch critic's output map becomes the one critic value whose gradient is penalised."""


def eager() -> contextlib.AbstractContextManager:
    """Compiled modules run eagerly inside (torch >= 2.6; older releases have no way to ask)."""
    if hasattr(torch.compiler, "set_stance"):
        return torch.compiler.set_stance("force_eager")
    return contextlib.nullcontext()


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, reduction: str = "mean") -> Tensor:
    """``E[(||grad_x_hat D(x_hat)||_2 - 1)^2]`` on ``x_hat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]``
    per sample; scalar, differentiable in D's weights.

    ``reduction`` says which critic value of one sample is differentiated when D's output is a patch map
    ``(N, 1, h, w)``:

    - ``mean`` (default): the mean over its patches, the value the adversarial losses average. pix2pix,
      CycleGAN, UNIT, MUNIT and the GAN family use it (for a critic with one output per sample, as the
      WGAN-GP paper's, both reductions are the same).
    - ``sum``: the sum over its patches, as yunjey/stargan's ``solver.py`` (``autograd.grad`` of the map with
      ``grad_outputs=ones``) while its adversarial term takes the mean. The gradient norm is ``h * w`` times
      the ``mean`` one (a 2x2 map: 4x), so the critic is held to a slope ``h * w`` times smaller. StarGAN
      uses it (``model.gp_reduction``).

    Either way the gradient norm is taken per sample and the squared errors are averaged over the batch.
    A multi-scale D (list output) is penalised per scale and the scales are averaged, as its losses are.
    Of a tuple output (a D with a class head) the first element is used. Computed in float32 with autocast
    off, and eagerly where D is compiled (``train.compile``): compiled graphs have no double backward.
    ``eps`` comes from the global torch RNG.
    """
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand(real.size(0), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = eps * real + (1 - eps) * fake
    return _over_scales(discriminator, x_hat, reduction, lambda grad: (grad.norm(2, dim=1) - 1) ** 2)


def r1_penalty(discriminator: nn.Module, real: Tensor, reduction: str = "mean") -> Tensor:
    """R1 (Mescheder et al., 2018): ``E[||grad_x D(x)||^2] / 2`` on real images only, as StarGAN v2 and
    StyleGAN regularise a non-saturating discriminator (the weight is their gamma). ``reduction``, the
    scales, a tuple output, float32 and eager mode as in :func:`gradient_penalty`."""
    return _over_scales(
        discriminator, real.detach().float(), reduction, lambda grad: 0.5 * grad.pow(2).sum(1)
    )


def _over_scales(
    discriminator: nn.Module, x: Tensor, reduction: str, per_sample: Callable[[Tensor], Tensor]
) -> Tensor:
    """``per_sample`` of D's flattened input gradient at ``x``, averaged over the batch and D's scales."""
    if reduction not in GP_REDUCTIONS:
        raise ConfigError(
            f"the gradient penalty's reduction must be one of {', '.join(GP_REDUCTIONS)}; got {reduction!r}"
        )
    with torch.autocast(x.device.type, enabled=False), eager():
        # Differentiate with respect to a non-leaf copy: torch's module trackers (FlopCounterMode) cannot
        # hook a leaf that autograd.grad is asked about.
        x = x.requires_grad_(True).clone()
        output = discriminator(x)
        if isinstance(output, tuple):
            output = output[0]
        scales = output if isinstance(output, list) else [output]
        penalties = []
        for scale in scales:
            flat = scale.float().flatten(1)
            critic = flat.sum(1) if reduction == "sum" else flat.mean(1)
            (grad,) = torch.autograd.grad(critic.sum(), x, create_graph=True)
            penalties.append(per_sample(grad.flatten(1)).mean())
        return torch.stack(penalties).mean()
