"""Inception-v3 pool3 features (2048-d) and logits, as FID, KID and IS report them.

Two variants of torchvision's ``inception_v3`` architecture, told apart by the weights file:

- ``fid`` (the reference): the TensorFlow Inception of the original FID / IS code ported to PyTorch by
  pytorch-fid, ``pt_inception-2015-12-05-6726825d.pth`` (1008 classes). Its Mixed_5*, Mixed_6b-e and
  Mixed_7b pools average without the zero padding, and Mixed_7c max-pools, as TensorFlow's graph does;
  the IS logits are ``pool3 @ fc.weight.T`` without the bias, as in the original IS code.
- ``torchvision``: torchvision's ImageNet weights ``inception_v3_google-0cc3c7bd.pth`` (1000 classes,
  the plain blocks): a fallback whose numbers are *not* comparable with published FIDs.

Preprocessing as the reference: images in ``[-1, 1]`` resized to 299 x 299 (bilinear, no antialiasing,
``align_corners=False``), grayscale repeated to RGB; both weight files expect ``[-1, 1]`` input.

Nothing is downloaded: the file comes from ``--inception-weights FILE`` or the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from translate.metrics.weights import MissingWeights, hub_checkpoints

FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS}"
TORCHVISION_WEIGHTS = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_WEIGHTS_URL = f"https://download.pytorch.org/models/{TORCHVISION_WEIGHTS}"
INPUT_SIZE = 299
FEATURES = 2048
NUM_CLASSES = {"fid": 1008, "torchvision": 1000}
LAYERS = [
    *("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3"),
    *("maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d"),
    *("Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"),
]
"""torchvision's Inception3 modules from the input to pool3 (before ``avgpool``)."""


def missing_inception_note() -> str:
    return (
        f"no Inception weights: put {FID_WEIGHTS} (from {FID_WEIGHTS_URL}) in {hub_checkpoints()}/ "
        "or give --inception-weights FILE"
    )


def find_inception_weights(path: str | Path | None = None) -> Path:
    """``path``, else the FID weights in the torch hub cache, else torchvision's ImageNet weights there;
    MissingWeights (one line naming the file, its URL and where to put it) when there is none."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingWeights(
                f"--inception-weights {path}: no such file (the FID weights: {FID_WEIGHTS_URL})"
            )
        return path
    for name in (FID_WEIGHTS, TORCHVISION_WEIGHTS):
        if (hub_checkpoints() / name).is_file():
            return hub_checkpoints() / name
    raise MissingWeights(missing_inception_note())


# ----------------------------------------------------------------------------------- the FID variant
def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3 average pool: the mean over the pixels inside the image only."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _blocks():
    from torchvision.models import inception as tv

    class PoolA(tv.InceptionA):
        def _forward(self, x):
            return [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_tf_avg_pool(x)),
            ]

    class PoolC(tv.InceptionC):
        def _forward(self, x):
            seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            double = x
            for index in range(1, 6):
                double = getattr(self, f"branch7x7dbl_{index}")(double)
            return [self.branch1x1(x), seven, double, self.branch_pool(_tf_avg_pool(x))]

    class PoolE(tv.InceptionE):
        pool = staticmethod(_tf_avg_pool)

        def _forward(self, x):
            three = self.branch3x3_1(x)
            double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            return [
                self.branch1x1(x),
                torch.cat([self.branch3x3_2a(three), self.branch3x3_2b(three)], 1),
                torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], 1),
                self.branch_pool(self.pool(x)),
            ]

    class MaxPoolE(PoolE):
        pool = staticmethod(lambda x: F.max_pool2d(x, kernel_size=3, stride=1, padding=1))

    return PoolA, PoolC, PoolE, MaxPoolE


class InceptionFeatures(nn.Module):
    """``(N, 1 or 3, H, W)`` in ``[-1, 1]``, any size -> ``(pool3 (N, 2048), logits (N, classes))``.

    ``variant``: ``fid`` (the reference architecture, 1008 classes) or ``torchvision`` (1000 classes).
    Built with random weights (``load_state_dict`` or ``load_inception`` fills them).
    """

    def __init__(self, variant: str = "fid") -> None:
        super().__init__()
        from torchvision.models import inception_v3

        if variant not in NUM_CLASSES:
            raise ValueError(f"unknown Inception variant {variant!r}; known: {', '.join(NUM_CLASSES)}")
        self.variant = variant
        net = inception_v3(
            weights=None, aux_logits=False, init_weights=False, num_classes=NUM_CLASSES[variant]
        )
        if variant == "fid":
            pool_a, pool_c, pool_e, max_pool_e = _blocks()
            for name, channels, pool in (("5b", 192, 32), ("5c", 256, 64), ("5d", 288, 64)):
                setattr(net, f"Mixed_{name}", pool_a(channels, pool_features=pool))
            for name, width in (("6b", 128), ("6c", 160), ("6d", 160), ("6e", 192)):
                setattr(net, f"Mixed_{name}", pool_c(768, channels_7x7=width))
            net.Mixed_7b, net.Mixed_7c = pool_e(1280), max_pool_e(2048)
        self.net = net.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        net = self.net
        for name in LAYERS:
            x = getattr(net, name)(x)
        pool = torch.flatten(net.avgpool(x), 1)
        logits = pool @ net.fc.weight.T if self.variant == "fid" else net.fc(pool)
        return pool, logits

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """Takes the weight files' keys (torchvision's names, without the ``net.`` prefix) too."""
        if not any(k.startswith("net.") for k in state_dict):
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith("AuxLogits.")}
            return self.net.load_state_dict(state_dict, strict=strict, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def load_inception(
    path: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[InceptionFeatures, Path]:
    """The Inception of the weights file ``path`` (else found in the torch hub cache: see
    ``find_inception_weights``), its variant told by the number of classes, in eval mode on ``device``."""
    path = find_inception_weights(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MissingWeights(f"{path} is not a readable weights file: {exc}") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    classes = state.get("fc.weight", state.get("net.fc.weight", torch.empty(0))).shape[:1]
    variant = {(1008,): "fid", (1000,): "torchvision"}.get(tuple(classes))
    if variant is None:
        raise MissingWeights(
            f"{path} does not hold Inception-v3 weights (expected fc.weight of 1008 or 1000 rows)"
        )
    model = InceptionFeatures(variant)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MissingWeights(f"{path} does not fit Inception-v3 ({variant} variant): {first}") from None
    return model.to(device).eval(), path
