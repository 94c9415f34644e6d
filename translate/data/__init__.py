"""Data: image reading, albumentations preprocessing, the resumable sampler, datasets and demo data.

Importing this package registers the datasets (``aligned``, ``unaligned``) in ``DATASETS``.
"""

from translate.data.aligned import AlignedDataset, aligned
from translate.data.demo import make_demo_dataset
from translate.data.io import IMAGE_EXTENSIONS, UnreadableImageError, list_images, read_image
from translate.data.sampler import ResumableSampler
from translate.data.transforms import build_transform, seed_transform, to_image, to_tensor
from translate.data.unaligned import UnalignedDataset, unaligned

__all__ = [
    "IMAGE_EXTENSIONS",
    "AlignedDataset",
    "ResumableSampler",
    "UnalignedDataset",
    "UnreadableImageError",
    "aligned",
    "build_transform",
    "list_images",
    "make_demo_dataset",
    "read_image",
    "seed_transform",
    "to_image",
    "to_tensor",
    "unaligned",
]
