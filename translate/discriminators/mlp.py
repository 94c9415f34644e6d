"""The fully connected discriminator of the classic GAN recipes (Goodfellow et al., 2014, as the tutorials
run it on 28x28 MNIST), class-conditional as in Mirza and Osindero (2014)."""

from __future__ import annotations

import torch
from torch import nn

from translate.errors import ConfigError
from translate.layers import join_labels, mlp_layers
from translate.registry import DISCRIMINATORS


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
    """``(N, in_channels, image_size, image_size)`` [+ ``labels (N,)``] -> ``(N, 1, 1, 1)`` logits
    (one "patch", the shape every discriminator returns).

    The image is flattened, then Linear layers ``in_channels * image_size**2 (+ condition_classes) ->
    hidden... -> 1`` with LeakyReLU(0.2) and ``dropout`` between them. The sigmoid of the published D is
    part of the vanilla loss (numerically stable); other losses read the raw value. The default
    ``hidden=(1024, 512, 256)`` on 28x28 gray has 1,460,225 parameters. ``condition_classes > 0``: the
    one-hot class label is joined to the flattened image (cGAN).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        hidden: tuple[int, ...] | list[int] = (1024, 512, 256),
        dropout: float = 0.3,
        condition_classes: int = 0,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ConfigError(
                "an MLP discriminator needs at least one hidden layer (model.discriminator.hidden)"
            )
        if not 0 <= dropout < 1:
            raise ConfigError(f"model.discriminator.dropout must be in [0, 1); got {dropout}")
        self.condition_classes, self.image_size = condition_classes, image_size
        widths = [in_channels * image_size**2 + condition_classes, *hidden]
        self.net = nn.Sequential(*mlp_layers(widths, dropout), nn.Linear(widths[-1], 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ConfigError(
                f"this MLP discriminator takes {self.image_size}x{self.image_size} images; got "
                f"{x.shape[-2]}x{x.shape[-1]}"
            )
        return self.net(join_labels(x.flatten(1), labels, self.condition_classes))[:, :, None, None]
