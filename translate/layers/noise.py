"""Latent codes of the unconditional family: the one rule for drawing them."""

from __future__ import annotations

import torch

LATENT_DISTRIBUTIONS = ("normal", "uniform")


def latent_noise(
    count: int,
    latent_dim: int,
    distribution: str = "normal",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Codes of a noise -> image generator.

    Args:
        count: how many codes.
        latent_dim: the length of a code.
        distribution: ``normal`` (N(0, 1)) or ``uniform`` (U(-1, 1)).
        generator: the random generator to draw from; None: the global one (training, so that resuming
            restores the draws).
        device: where the codes are drawn.

    Returns:
        ``(count, latent_dim)`` codes.
    """
    if distribution == "uniform":
        return torch.rand(count, latent_dim, generator=generator, device=device) * 2 - 1
    return torch.randn(count, latent_dim, generator=generator, device=device)
