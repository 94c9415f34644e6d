"""The fully connected generator of the classic GAN recipes (Goodfellow et al., 2014, as the tutorials run it
on 28x28 MNIST), class-conditional as in Mirza and Osindero (2014)."""

from __future__ import annotations

import torch
from torch import nn

from translate.errors import ConfigError
from translate.layers import join_labels, mlp_layers
from translate.registry import GENERATORS


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
    """``z (N, latent_dim)`` [+ ``labels (N,)``] -> ``(N, out_channels, image_size, image_size)`` in [-1, 1].

    Linear layers ``latent_dim (+ num_classes) -> hidden... -> out_channels * image_size**2`` with
    LeakyReLU(0.2) between them and tanh at the end. The default ``hidden=(256, 512, 1024)`` on 28x28 gray
    has 1,486,352 parameters. ``num_classes > 0``: the one-hot label is joined to ``z`` (cGAN).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        out_channels: int = 1,
        image_size: int = 28,
        hidden: tuple[int, ...] | list[int] = (256, 512, 1024),
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ConfigError("an MLP generator needs at least one hidden layer (model.generator.hidden)")
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.in_channels, self.out_channels, self.image_size = None, out_channels, image_size
        widths = [latent_dim + num_classes, *hidden]
        self.net = nn.Sequential(
            *mlp_layers(widths), nn.Linear(widths[-1], out_channels * image_size**2), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        image = self.net(join_labels(z, labels, self.num_classes))
        return image.view(len(z), self.out_channels, self.image_size, self.image_size)
