"""What CUT's PatchNCE reads of a generator: the outputs of chosen layers of its flat ``model`` Sequential
(the authors' ``netG(x, nce_layers, encode_only=True)``), and the patch sampler with its MLP heads that
embeds them (their ``PatchSampleF``, ``--netF mlp_sample``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from translate.errors import ConfigError


def feature_layers(generator: nn.Module, layers: list[int]) -> nn.Sequential:
    """The generator's ``model`` Sequential, checked to have every index of ``layers`` (strictly increasing).

    Raises:
        ConfigError: no flat ``model`` Sequential (a U-Net), or an index out of order or past its end.
    """
    model = getattr(generator, "model", None)
    if not isinstance(model, nn.Sequential):
        raise ConfigError(
            "PatchNCE reads the layers of a generator's flat `model` Sequential (resnet, "
            f"antialiased_resnet); {type(generator).__name__} has none"
        )
    if not layers or any(b <= a for a, b in zip(layers, layers[1:])) or layers[0] < 0:
        raise ConfigError(f"model.nce_layers must be increasing layer indices from 0; got {layers}")
    if layers[-1] >= len(model):
        raise ConfigError(
            f"model.nce_layers {layers} goes past the generator's {len(model)} layers (0 to {len(model) - 1})"
        )
    return model


def encoder_features(model: nn.Sequential, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
    """Run ``model`` layer by layer on ``x`` and keep the outputs at ``layers``, stopping after the last.

    Args:
        model: a generator's Sequential (``feature_layers``).
        x: images ``(N, C, H, W)``.
        layers: increasing indices into ``model``.
    Returns:
        One ``(N, C_l, H_l, W_l)`` tensor per index, in order.
    """
    wanted, features = set(layers), []
    for index, layer in enumerate(model):
        x = layer(x)
        if index in wanted:
            features.append(x)
        if index == layers[-1]:
            break
    return features


def feature_channels(model: nn.Sequential, layers: list[int], in_channels: int) -> list[int]:
    """The channels of ``encoder_features`` at ``layers``, read off the convs (no forward pass): a layer
    without a conv keeps the channels it is given."""
    channels, found = in_channels, []
    for index, layer in enumerate(model):
        convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        channels = convs[-1].out_channels if convs else channels
        if index in layers:
            found.append(channels)
    return found


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """The authors' ``Normalize(2)``: each row divided by its L2 norm + 1e-7, ``(M, C) -> (M, C)``."""
    return x.div(x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)


class PatchSampler(nn.Module):
    """CUT's ``PatchSampleF`` with MLP heads: per layer, the same random positions for every image, each
    position's feature through ``Linear(C_l, width), ReLU, Linear(width, width)``, L2-normalised.

    The authors build the heads on the first forward from the features' channels; here they are built at
    construction from ``channels`` (``feature_channels``), so the optimizer and checkpoints see them from
    the start. Positions come from NumPy's global generator, as theirs (``np.random.permutation``), which
    checkpoints store.
    """

    def __init__(self, channels: list[int], width: int = 256) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)) for c in channels
        )

    def forward(
        self, features: list[torch.Tensor], num_patches: int, positions: list[torch.Tensor] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Embed ``num_patches`` positions of each feature map (all of them where a map has fewer).

        Args:
            features: ``(N, C_l, H_l, W_l)`` per layer.
            num_patches: positions per layer and image.
            positions: the positions of another call (the source's, for its translation); None draws them.
        Returns:
            ``(N * P_l, width)`` unit rows per layer, image by image, and the ``(P_l,)`` positions used.
        """
        embedded, used = [], []
        for index, (feature, head) in enumerate(zip(features, self.heads, strict=True)):
            flat = feature.permute(0, 2, 3, 1).flatten(1, 2)
            if positions is None:
                drawn = np.random.permutation(flat.shape[1])[: min(num_patches, flat.shape[1])]
                ids = torch.tensor(drawn, dtype=torch.long, device=feature.device)
            else:
                ids = positions[index]
            embedded.append(l2_normalise(head(flat[:, ids, :].flatten(0, 1))))
            used.append(ids)
        return embedded, used
