"""The training input pipeline: image reading, layout detection, albumentations preprocessing, the
resumable sampler and the dataset kinds (``aligned``, ``unaligned``, ``labelled``, ``images``; registered
in ``DATASETS`` when this package is imported).

Dataset management (catalog, download, inspect, demo data) lives in ``translate.catalog``.
"""

from translate.data.aligned import AlignedDataset, aligned
from translate.data.images import ImagesDataset, images
from translate.data.io import IMAGE_EXTENSIONS, UnreadableImageError, list_images, read_image
from translate.data.labelled import LabelledDataset, labelled
from translate.data.sampler import ResumableSampler
from translate.data.transforms import build_transform, seed_transform, to_image, to_tensor
from translate.data.unaligned import UnalignedDataset, unaligned

__all__ = [
    "IMAGE_EXTENSIONS",
    "AlignedDataset",
    "ImagesDataset",
    "LabelledDataset",
    "ResumableSampler",
    "UnalignedDataset",
    "UnreadableImageError",
    "aligned",
    "build_transform",
    "images",
    "labelled",
    "list_images",
    "read_image",
    "seed_transform",
    "to_image",
    "to_tensor",
    "unaligned",
]
