"""The WGAN-GP gradient penalty (Gulrajani et al., 2017): the one definition every task uses."""

from __future__ import annotations

import contextlib

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
    if reduction not in GP_REDUCTIONS:
        raise ConfigError(
            f"the gradient penalty's reduction must be one of {', '.join(GP_REDUCTIONS)}; got {reduction!r}"
        )
    device_type = real.device.type
    with torch.autocast(device_type, enabled=False), eager():
        real, fake = real.detach().float(), fake.detach().float()
        eps = torch.rand(real.size(0), *([1] * (real.dim() - 1)), device=real.device)
        # Differentiate with respect to a non-leaf copy: torch's module trackers (FlopCounterMode) cannot
        # hook a leaf that autograd.grad is asked about.
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True).clone()
        output = discriminator(x_hat)
        if isinstance(output, tuple):
            output = output[0]
        scales = output if isinstance(output, list) else [output]
        penalties = []
        for scale in scales:
            per_sample = scale.float().flatten(1)
            critic = per_sample.sum(1) if reduction == "sum" else per_sample.mean(1)
            (grad,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
            penalties.append(((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean())
        return torch.stack(penalties).mean()
