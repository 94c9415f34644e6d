"""Faces in ordinary photos for face models (StarGAN on CelebA): find each face, crop it the way the
training faces were cropped, translate the crop and paste it back with a feathered edge.

"It works on CelebA test faces but not on my photo" is mostly alignment: CelebA's faces are aligned (eyes
level, at fixed positions) and StarGAN trains on their centred square. ``FACE_TEMPLATE`` holds where the
five landmarks (eyes, nose tip, mouth corners) sit in that square, as fractions of its side (the mean of
the MTCNN landmarks of 40 held-out CelebA faces). A face is aligned by the similarity transform (rotation,
uniform scale, shift) that best maps its landmarks onto the template.

The detector is MTCNN (Zhang et al., 2016) from the ``facenet-pytorch`` package, whose weights ship inside
the package (nothing is downloaded). That package pins old torch versions in its metadata although its
MTCNN runs on current ones, so it is installed without its dependencies:
``pip install -e ".[faces]"`` (the ``faces`` extra: facenet-pytorch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from translate.errors import TranslateError

FACE_TEMPLATE = np.array(
    [[0.395, 0.518], [0.613, 0.517], [0.496, 0.655], [0.405, 0.751], [0.599, 0.749]], dtype=np.float32
)
"""Left eye, right eye, nose tip, left and right mouth corner in a training face crop, ``(x, y) / side``."""
INSTALL = 'pip install -e ".[faces]"  (or: pip install "translate-gan[faces]")'
FEATHER = 0.12
"""Width of the blended border of a pasted face, as a fraction of the crop side."""


@dataclass
class Face:
    box: np.ndarray  # (4,) x0, y0, x1, y1
    landmarks: np.ndarray  # (5, 2) x, y: eyes, nose, mouth corners
    score: float


Detector = Callable[[np.ndarray], list[Face]]
"""``RGB uint8 (H, W, 3) -> faces``."""


def mtcnn_detector(device: str | torch.device = "cpu", min_score: float = 0.9) -> Detector:
    """MTCNN from ``facenet-pytorch``; a one-line TranslateError saying how to install it when missing."""
    try:
        from facenet_pytorch import MTCNN
    except ImportError:
        raise TranslateError(f"--faces needs the MTCNN face detector: {INSTALL}") from None
    mtcnn = MTCNN(keep_all=True, device=torch.device(device))

    def detect(image: np.ndarray) -> list[Face]:
        boxes, scores, landmarks = mtcnn.detect(image, landmarks=True)
        if boxes is None:
            return []
        return [
            Face(np.asarray(b, dtype=np.float32), np.asarray(p, dtype=np.float32), float(s))
            for b, s, p in zip(boxes, scores, landmarks)
            if s is not None and float(s) >= min_score
        ]

    return detect


def alignment(landmarks: np.ndarray, side: int) -> np.ndarray:
    """The 2 x 3 similarity transform from photo coordinates to a ``side`` x ``side`` aligned crop."""
    matrix, _ = cv2.estimateAffinePartial2D(
        landmarks.astype(np.float32), FACE_TEMPLATE * side, method=cv2.LMEDS
    )
    if matrix is None:
        raise TranslateError("could not align a face from its landmarks")
    return matrix


def feather_mask(side: int) -> np.ndarray:
    """``(side, side)`` float mask: 1 inside, falling smoothly to 0 over the outer ``FEATHER`` of the crop."""
    ramp = np.clip(np.minimum(np.arange(side), np.arange(side)[::-1]) / max(FEATHER * side, 1.0), 0, 1)
    ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return np.outer(ramp, ramp).astype(np.float32)


def paste_faces(
    image: np.ndarray, faces: list[Face], side: int, translate: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``image`` (RGB uint8 ``(H, W, 3)``) with every face replaced by ``translate(aligned crop)``.

    Each face is cut out as an aligned ``side`` x ``side`` crop, translated (``uint8 (side, side, 3) ->
    the same``), warped back and blended in through a feathered mask."""
    height, width = image.shape[:2]
    result = image.astype(np.float32)
    mask = feather_mask(side)
    for face in faces:
        matrix = alignment(face.landmarks, side)
        crop = cv2.warpAffine(
            image, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101
        )
        translated = translate(crop).astype(np.float32)
        inverse = cv2.invertAffineTransform(matrix)
        back = cv2.warpAffine(translated, inverse, (width, height), flags=cv2.INTER_CUBIC)
        weight = cv2.warpAffine(mask, inverse, (width, height), flags=cv2.INTER_LINEAR)[:, :, None]
        result = weight * back + (1 - weight) * result
    return np.clip(result.round(), 0, 255).astype(np.uint8)
