"""MUNIT's networks (Huang, Liu, Belongie & Kautz, ECCV 2018), as the authors' ``AdaINGen`` (NVlabs/MUNIT,
``networks.py``).

Each domain has an auto-encoder (:class:`MunitGenerator`, registered as ``munit``) of three parts:

- a **content encoder** (:class:`ContentEncoder`): 7x7 conv, ``num_downsample`` 4x4 stride-2 convs (each
  doubling the width), ``num_res`` residual blocks; instance norm and ReLU after every conv, reflection
  padding: ``(N, C, H, W) -> (N, 4 * base_channels, H / 4, W / 4)``;
- a **style encoder** (:class:`StyleEncoder`): 7x7 conv, two 4x4 stride-2 convs doubling the width, two
  more at that width, ReLU and no norm, global average pooling, a 1x1 conv to the code:
  ``(N, C, H, W) -> (N, style_dim, 1, 1)``;
- a **decoder** (:class:`MunitDecoder`): ``num_res`` residual blocks with adaptive instance norm (AdaIN)
  whose scales and shifts an MLP (3 linear layers, ``mlp_dim`` wide, ReLU) makes from the style code, then
  ``num_downsample`` times [nearest x2 up-sampling, 5x5 conv, layer norm, ReLU] halving the width, and a
  7x7 conv with tanh.

Translating A -> B is ``decoder_b(content_encoder_a(x), style)`` with a style code of B: drawn from
``N(0, I)`` or taken from a reference image of B by ``style_encoder_b`` (:class:`MunitTranslator`).

The authors' config (``configs/edges2handbags_folder.yaml``: ``dim`` 64, ``mlp_dim`` 256, ``style_dim`` 8,
``n_downsample`` 2, ``n_res`` 4) gives one ``AdaINGen`` of **15,026,187** parameters: content encoder
5,385,856; style encoder 2,764,936; decoder 6,875,395, of which the AdaIN residual blocks 4,720,640, the
up-sampling head 1,033,987 and the MLP 1,120,768 (it makes 4,096 AdaIN parameters: a shift and a scale for
each of the 8 AdaIN layers' 256 channels; the AdaIN layers hold none). Counted in ``tests/test_munit.py``
against a sum over the authors' layer list.

Differences from the authors' code, none of which changes a parameter count:

- Instance norm (content encoder) keeps no running statistics: theirs is ``InstanceNorm2d(...,
  track_running_stats=True)``, which in eval mode normalises by averages gathered during training; here every
  image is normalised by its own statistics at test time too, as the paper's instance norm is.
- Layer norm is ``GroupNorm(1, C)`` (``(x - mean) / sqrt(var + eps)``), the toolkit's ``layer`` norm (tiles
  of huge images know it); theirs divides by ``std + eps`` with the unbiased std. Its scale is drawn from
  U(0, 1) and its shift zeroed, as theirs.
- AdaIN's scales and shifts are passed to the residual blocks with the content (``decoder(content, style)``)
  instead of being assigned to the layers' attributes before each call; they are sliced from the MLP's
  output in the authors' order (for each AdaIN layer in turn: its shifts, then its scales).
"""

from __future__ import annotations

import torch
from torch import nn

from translate.errors import ConfigError
from translate.generators.resnet import ResnetBlock
from translate.layers import get_norm_layer
from translate.registry import GENERATORS


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """A conv with bias after the authors' reflection padding (``kernel // 2``; 1 for the 4x4 convs)."""
    padding = 1 if kernel == 4 else kernel // 2
    return [nn.ReflectionPad2d(padding), nn.Conv2d(in_channels, out_channels, kernel, stride=stride)]


class ContentEncoder(nn.Module):
    """Image -> content code: ``(N, in_channels, H, W) -> (N, base_channels * 2**num_downsample, h, w)``,
    ``h = H / 2**num_downsample``; H and W multiples of ``size_multiple``.

    7x7 conv, ``num_downsample`` 4x4 stride-2 convs doubling the width, each conv followed by instance norm
    and ReLU, then ``num_res`` residual blocks ``x + conv-IN-ReLU-conv-IN(x)`` (3x3 convs); reflection
    padding.
    """

    def __init__(
        self, in_channels: int = 3, base_channels: int = 64, num_downsample: int = 2, num_res: int = 4
    ) -> None:
        super().__init__()
        instance_norm = get_norm_layer("instance")
        self.in_channels = in_channels
        self.size_multiple = 2**num_downsample
        layers: list[nn.Module] = [
            *_conv(in_channels, base_channels, 7),
            instance_norm(base_channels),
            nn.ReLU(),
        ]
        channels = base_channels
        for _ in range(num_downsample):
            layers += [*_conv(channels, channels * 2, 4, 2), instance_norm(channels * 2), nn.ReLU()]
            channels *= 2
        self.stem = nn.Sequential(*layers)
        self.blocks = nn.Sequential(
            *(
                ResnetBlock(channels, "instance", dropout=False, padding="reflect", bias=True)
                for _ in range(num_res)
            )
        )
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class StyleEncoder(nn.Module):
    """Image -> style code: ``(N, in_channels, H, W) -> (N, style_dim, 1, 1)``, any H and W of at least
    ``2**num_downsample`` px.

    7x7 conv, two 4x4 stride-2 convs doubling the width, ``num_downsample - 2`` more at that width (the
    authors' ``StyleEncoder(4, ...)``: four in all), each followed by ReLU, no norm; global average pooling;
    a 1x1 conv to ``style_dim`` channels. Reflection padding.
    """

    def __init__(
        self, in_channels: int = 3, base_channels: int = 64, style_dim: int = 8, num_downsample: int = 4
    ) -> None:
        super().__init__()
        if num_downsample < 2:
            raise ConfigError(f"the style encoder has at least 2 down-sampling convs; got {num_downsample}")
        self.in_channels = in_channels
        self.style_dim = style_dim
        layers: list[nn.Module] = [*_conv(in_channels, base_channels, 7), nn.ReLU()]
        channels = base_channels
        for _ in range(2):
            layers += [*_conv(channels, channels * 2, 4, 2), nn.ReLU()]
            channels *= 2
        for _ in range(num_downsample - 2):
            layers += [*_conv(channels, channels, 4, 2), nn.ReLU()]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, style_dim, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class AdaptiveInstanceNorm(nn.Module):
    """``IN(x) * scale + shift`` with per-sample ``scale``, ``shift`` ``(N or 1, C)`` given at each call.

    The normalisation is a parameter-free ``InstanceNorm2d`` module (eps 1e-5, biased variance, as the
    authors' ``F.batch_norm`` over one sample's channels), so the tiled translation of huge images can give
    it whole-image statistics as it does every instance norm.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.norm = nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)

    def forward(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * scale[:, :, None, None] + shift[:, :, None, None]


class AdaINResBlock(nn.Module):
    """``x + conv-AdaIN-ReLU-conv-AdaIN(x)``: 3x3 convs with reflection padding and bias; the two AdaIN
    layers take ``4 * channels`` parameters per sample (``num_adain_params``): shifts and scales of the first,
    then of the second."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.num_adain_params = 4 * channels
        self.conv1 = nn.Sequential(*_conv(channels, channels, 3))
        self.norm1 = AdaptiveInstanceNorm(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Sequential(*_conv(channels, channels, 3))
        self.norm2 = AdaptiveInstanceNorm(channels)

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        shift1, scale1, shift2, scale2 = params.split(self.channels, dim=1)
        out = self.relu(self.norm1(self.conv1(x), shift1, scale1))
        return x + self.norm2(self.conv2(out), shift2, scale2)


class MunitDecoder(nn.Module):
    """Content + style -> image: ``(N, in_channels, h, w)``, ``(N or 1, style_dim[, 1, 1])`` ->
    ``(N, out_channels, h * 2**num_upsample, w * 2**num_upsample)`` in [-1, 1].

    ``mlp``: ``style_dim -> mlp_dim -> ... -> num_adain_params`` (``mlp_layers`` linear layers, ReLU between
    them, none after the last); ``blocks``: ``num_res`` AdaIN residual blocks; ``head``: ``num_upsample``
    times [nearest x2 up-sampling, 5x5 conv halving the width, layer norm, ReLU], then a 7x7 conv and tanh.
    Reflection padding everywhere.
    """

    def __init__(
        self,
        in_channels: int = 256,
        out_channels: int = 3,
        num_upsample: int = 2,
        num_res: int = 4,
        style_dim: int = 8,
        mlp_dim: int = 256,
        mlp_layers: int = 3,
    ) -> None:
        super().__init__()
        if mlp_layers < 2:
            raise ConfigError(f"the AdaIN MLP needs at least 2 layers; got {mlp_layers}")
        self.in_channels, self.out_channels, self.style_dim = in_channels, out_channels, style_dim
        self.blocks = nn.ModuleList(AdaINResBlock(in_channels) for _ in range(num_res))
        self.num_adain_params = sum(block.num_adain_params for block in self.blocks)
        layers: list[nn.Module] = [nn.Linear(style_dim, mlp_dim), nn.ReLU()]
        for _ in range(mlp_layers - 2):
            layers += [nn.Linear(mlp_dim, mlp_dim), nn.ReLU()]
        layers.append(nn.Linear(mlp_dim, self.num_adain_params))
        self.mlp = nn.Sequential(*layers)
        layer_norm = get_norm_layer("layer")
        head: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_upsample):
            norm = layer_norm(channels // 2)
            nn.init.uniform_(norm.weight)  # the authors' LayerNorm: gamma ~ U(0, 1), beta = 0
            head += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                *_conv(channels, channels // 2, 5),
                norm,
                nn.ReLU(),
            ]
            channels //= 2
        head += [*_conv(channels, out_channels, 7), nn.Tanh()]
        self.head = nn.Sequential(*head)

    def adain_params(self, style: torch.Tensor) -> torch.Tensor:
        """The AdaIN parameters ``(N, num_adain_params)`` of codes ``(N, style_dim[, 1, 1])``."""
        return self.mlp(style.flatten(1))

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        params = self.adain_params(style)
        x = content
        for block, block_params in zip(self.blocks, params.split(self.blocks[0].num_adain_params, dim=1)):
            x = block(x, block_params)
        return self.head(x)


@GENERATORS.register("munit")
class MunitGenerator(nn.Module):
    """MUNIT's auto-encoder of one domain (the authors' ``AdaINGen``): content and style encoders and an AdaIN
    decoder; 15,026,187 parameters at the authors' settings (the defaults).

    ``forward(x)`` reconstructs ``x`` from its own content and style: ``(N, in_channels, H, W) ->
    (N, out_channels, H, W)``, H and W multiples of ``size_multiple`` (4) and at least 16 (the style encoder's
    four halvings). ``out_channels`` (default ``in_channels``) is the decoder's; the encoders read
    ``in_channels``. ``style_downsample``: the style encoder's stride-2 convs (4).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int | None = None,
        base_channels: int = 64,
        style_dim: int = 8,
        mlp_dim: int = 256,
        mlp_layers: int = 3,
        num_downsample: int = 2,
        num_res: int = 4,
        style_downsample: int = 4,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels, self.style_dim = in_channels, out_channels, style_dim
        self.content_encoder = ContentEncoder(in_channels, base_channels, num_downsample, num_res)
        self.style_encoder = StyleEncoder(in_channels, base_channels, style_dim, style_downsample)
        self.decoder = MunitDecoder(
            self.content_encoder.out_channels,
            out_channels,
            num_downsample,
            num_res,
            style_dim,
            mlp_dim,
            mlp_layers,
        )
        self.size_multiple = self.content_encoder.size_multiple

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(content code, style code)`` of images ``x``."""
        return self.content_encoder(x), self.style_encoder(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.decoder(content, style)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.encode(x))


class MunitTranslator(nn.Module):
    """One direction of a trained MUNIT: the source domain's content encoder, the target domain's decoder
    and (for example-guided translation) the target domain's style encoder.

    ``forward(image, style)``: ``(N, in_channels, H, W)``, ``(N or 1, style_dim, 1, 1)`` (or
    ``(N, style_dim)``) -> ``(N, out_channels, H, W)`` in [-1, 1]; H and W multiples of ``size_multiple``.
    A style of batch 1 is used for every image; without a style the zero code (the mean of the style prior
    N(0, I)) is used, so a caller that knows nothing of styles gets one deterministic translation.
    ``encode_style(reference)``: the style code ``(N, style_dim, 1, 1)`` of images of the target domain.
    """

    def __init__(
        self, content_encoder: ContentEncoder, style_encoder: StyleEncoder, decoder: MunitDecoder
    ) -> None:
        super().__init__()
        if decoder.style_dim != style_encoder.style_dim:
            raise ConfigError(
                f"the style encoder makes {style_encoder.style_dim}-dim codes; "
                f"the decoder takes {decoder.style_dim}"
            )
        self.content_encoder = content_encoder
        self.style_encoder = style_encoder
        self.decoder = decoder
        self.in_channels = content_encoder.in_channels
        self.out_channels = decoder.out_channels
        self.style_dim = decoder.style_dim
        self.size_multiple = content_encoder.size_multiple

    def encode_style(self, reference: torch.Tensor) -> torch.Tensor:
        return self.style_encoder(reference)

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if style is None:
            style = image.new_zeros(1, self.style_dim, 1, 1)
        return self.decoder(self.content_encoder(image), style)
