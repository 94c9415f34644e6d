"""The export contract: what a trained model can be asked, stored in its checkpoint's metadata.

Every layer may import this module (it imports nothing of translate's), so no layer copies a kind's
name. What each kind means at run time (how to call it, score it, serve it) lives in ``translate.kinds``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

IMAGE_TO_IMAGE = "image_to_image"
"""``(N, C_in, H, W) -> (N, C_out, H, W)``; options: ``direction``, ``source``, ``target`` domains."""
IMAGE_AND_TARGET_TO_IMAGE = "image_and_target_to_image"
"""``(image, target labels (N, num_labels)) -> image``; options: ``labels`` (domain/attribute names)."""
NOISE_TO_IMAGE = "noise_to_image"
"""``(noise (N, latent_dim)[, class labels (N,)]) -> image``; options: ``latent_dim``, ``num_classes``,
``latent_distribution``."""
IMAGE_AND_STYLE_TO_IMAGE = "image_and_style_to_image"
"""``(image (N, C_in, H, W), style code (N or 1, style_dim, 1, 1)) -> image`` (MUNIT); options: ``direction``,
``source``, ``target`` domains, ``style_dim``, ``style_encoder`` (the trained task's module that reads the
style code of a target-domain image)."""
EXPORT_KINDS = (IMAGE_TO_IMAGE, IMAGE_AND_TARGET_TO_IMAGE, NOISE_TO_IMAGE, IMAGE_AND_STYLE_TO_IMAGE)


@dataclass(frozen=True)
class Export:
    """What a trained model can be asked: one entry point, stored in the checkpoint's metadata.

    ``module`` is the path of the network inside the task (``"g_ab"``), ``kind`` one of
    ``EXPORT_KINDS``. ``batch_statistics``: run the network in training mode at inference (batch norm
    on the statistics of each image, dropout on), as pix2pix does by default; images then go one at a time.
    """

    kind: str
    module: str
    in_channels: int | None
    out_channels: int
    batch_statistics: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Export:
        return cls(**values)
