"""The ``images`` dataset of the GANs: IDX files, flat folders and class folders; labels, channels, sizes,
clear errors for broken IDX files, DataLoader workers, and the real Fashion-MNIST when present."""

from __future__ import annotations

import gzip
import logging
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from translate.catalog.commands import suggested_command
from translate.config import DataConfig
from translate.data import ImagesDataset, images
from translate.data.layout import detect_layout
from translate.data.sampler import ResumableSampler
from translate.errors import DataError
from translate.registry import DATASETS

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RNG = np.random.default_rng(0)


def write_idx(path: Path, array: np.ndarray, type_code: int = 0x08) -> Path:
    """An IDX file: two zero bytes, the type code, the number of dimensions, big-endian sizes, data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = head + array.tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def mnist_like(root: Path, train: int = 6, test: int = 3, suffix: str = ".gz", size: int = 28) -> dict:
    """Random gray images and labels 0..9 in the four standard IDX files (9 first); returns the arrays."""
    arrays = {}
    for prefix, count in (("train", train), ("t10k", test)):
        pixels = RNG.integers(0, 256, (count, size, size), dtype=np.uint8)
        labels = ((np.arange(count) * 7 + 9) % 10).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", pixels)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = pixels, labels
    return arrays


def config(root: Path, **data) -> DataConfig:
    options = {"image_size": 28, "preprocess": "none", "flip": False, "out_channels": 1}
    return DataConfig(root=str(root), **{**options, **data})


def pixels(tensor: torch.Tensor) -> np.ndarray:
    """A [-1, 1] item tensor back to uint8 ``(C, H, W)``."""
    return ((tensor + 1) * 127.5).round().to(torch.uint8).numpy()


def write_image(path: Path, size: int = 20, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(array).save(path)
    return path


def folder_of_images(folder: Path, count: int, size: int = 20) -> None:
    for i in range(count):
        write_image(folder / f"{i:03d}.png", size, seed=i)


# ----------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_images_and_labels_round_trip_exactly(tmp_path, suffix):
    arrays = mnist_like(tmp_path, suffix=suffix)
    for train, prefix in ((True, "train"), (False, "t10k")):  # both splits: the same ten classes
        dataset = DATASETS.get("images")(config(tmp_path), train=train)
        expected, labels = arrays[prefix]
        assert isinstance(dataset, ImagesDataset) and len(dataset) == len(expected)
        for i in range(len(dataset)):
            item = dataset[i]
            assert item["image"].dtype == torch.float32 and item["image"].shape == (1, 28, 28)
            assert np.array_equal(pixels(item["image"])[0], expected[i])
            assert item["label"].dtype == torch.long and item["label"].shape == ()
            assert item["label"].item() == labels[i]
            assert item["path"] == f"{tmp_path / f'{prefix}-images-idx3-ubyte{suffix}'}#{i}"
    assert dataset.task_kwargs() == {
        "in_channels": 1,
        "out_channels": 1,
        "image_size": 28,
        "classes": [str(c) for c in range(10)],
    }


def test_training_items_are_seeded_and_gray_idx_images_can_be_read_as_rgb(tmp_path):
    arrays = mnist_like(tmp_path)
    dataset = images(config(tmp_path, out_channels=3, flip=True))
    item = dataset[(2, 1234)]
    assert item["image"].shape == (3, 28, 28)
    assert torch.equal(item["image"][0], item["image"][1]) and torch.equal(item["image"][0], item["image"][2])
    flipped_or_not = [arrays["train"][0][2], arrays["train"][0][2][:, ::-1]]
    assert any(np.array_equal(pixels(item["image"])[0], a) for a in flipped_or_not)
    assert torch.equal(dataset[(2, 1234)]["image"], item["image"])  # the same seed, the same tensor
    assert dataset.task_kwargs()["in_channels"] == dataset.task_kwargs()["out_channels"] == 3


def test_idx_without_labels_is_unlabelled_and_eval_falls_back_to_train(tmp_path, caplog):
    write_idx(tmp_path / "train-images-idx3-ubyte", RNG.integers(0, 256, (4, 28, 28), dtype=np.uint8))
    with caplog.at_level(logging.WARNING, logger="translate"):
        dataset = images(config(tmp_path), train=False)
    assert "evaluating on the training images" in caplog.text
    assert len(dataset) == 4 and "label" not in dataset[0]
    assert dataset.task_kwargs()["classes"] == []


def test_both_idx_splits_have_the_classes_of_every_labels_file(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(10, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1], dtype=np.uint8))
    for train in (True, False):
        assert images(config(tmp_path), train=train).task_kwargs()["classes"] == [str(c) for c in range(10)]


def test_max_images_caps_idx_images_and_their_labels(tmp_path):
    arrays = mnist_like(tmp_path, train=8)
    dataset = images(config(tmp_path, max_images=5))
    assert len(dataset) == 5
    assert [dataset[i]["label"].item() for i in range(5)] == list(arrays["train"][1][:5])
    with pytest.raises(IndexError):
        dataset[5]


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_a_broken_idx_file_is_one_clear_error_naming_it(tmp_path, suffix):
    images_file = tmp_path / f"train-images-idx3-ubyte{suffix}"
    labels_file = tmp_path / f"train-labels-idx1-ubyte{suffix}"
    write_idx(labels_file, np.zeros(5, dtype=np.uint8))

    def error() -> str:
        with pytest.raises(DataError) as caught:
            images(config(tmp_path))
        message = str(caught.value)
        assert "\n" not in message
        return message

    write_idx(images_file, np.zeros((5, 28, 28), dtype=np.uint8))
    raw = images_file.read_bytes() if not suffix else gzip.decompress(images_file.read_bytes())
    bad_magic = b"\x00\x00\x07\x03" + raw[4:]
    images_file.write_bytes(gzip.compress(bad_magic) if suffix else bad_magic)
    assert str(images_file) in error() and "not an IDX file (magic number 00000703)" in error()

    truncated = raw[:1016]  # the 16-byte header and 1000 bytes of pixels
    images_file.write_bytes(gzip.compress(truncated) if suffix else truncated)
    message = error()
    assert str(images_file) in message and "expected 3920 bytes of image data" in message
    assert "found 1000" in message

    write_idx(images_file, np.zeros((6, 28, 28), dtype=np.uint8))
    message = error()
    assert str(labels_file) in message and "5 labels for the 6 images" in message

    write_idx(images_file, np.zeros((5, 28, 28), dtype=np.int32), type_code=0x0C)  # not 8-bit images
    assert "expected uint8 images" in error()


def test_a_cut_off_gzip_file_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.ones((50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: corrupt or truncated"):
        images(config(tmp_path))


def test_idx_sizes_resize_and_crop_resizes_and_none_keeps_them(tmp_path):
    array = np.zeros((1, 28, 28), dtype=np.uint8)
    array[:, :, 14:] = 255  # left half black, right half white
    write_idx(tmp_path / "train-images-idx3-ubyte", array)
    resized = images(config(tmp_path, image_size=32, load_size=32, preprocess="resize_and_crop"))
    for item in (resized[0], resized[(0, 99)]):  # eval and training: the whole image, not a crop of it
        image = item["image"]
        assert image.shape == (1, 32, 32)
        assert torch.allclose(image[:, :, :14], torch.tensor(-1.0), atol=0.02)
        assert torch.allclose(image[:, :, 18:], torch.tensor(1.0), atol=0.02)
    assert images(config(tmp_path, preprocess="none"))[0]["image"].shape == (1, 28, 28)
    with pytest.raises(
        DataError,
        match="holds 28x28 images, and data.preprocess none keeps that size, but data.image_size is 32",
    ):
        images(config(tmp_path, image_size=32, preprocess="none"))


def test_a_dataloader_with_two_workers_reads_the_idx_dataset(tmp_path):
    mnist_like(tmp_path, train=40)
    dataset = images(config(tmp_path))
    loader = DataLoader(dataset, batch_size=8, sampler=ResumableSampler(len(dataset), seed=3), num_workers=2)
    batches = [batch for batch, _ in zip(loader, range(6))]  # 48 samples: past the first epoch
    assert all(b["image"].shape == (8, 1, 28, 28) and b["label"].shape == (8,) for b in batches)
    sampler = iter(ResumableSampler(len(dataset), seed=3))
    for batch in batches:  # the same tensors as in this process
        for image, label in zip(batch["image"], batch["label"]):
            item = dataset[next(sampler)]
            assert torch.equal(image, item["image"]) and label == item["label"]


def test_pickling_an_idx_dataset_leaves_the_images_out(tmp_path):
    """Workers started with spawn get a small copy that reads the file once itself."""
    arrays = mnist_like(tmp_path, train=2000)
    dataset = images(config(tmp_path))
    copy = pickle.loads(pickle.dumps(dataset))
    assert len(pickle.dumps(dataset)) < arrays["train"][0].nbytes / 20
    assert (
        torch.equal(copy[1999]["image"], dataset[1999]["image"]) and copy[7]["label"] == dataset[7]["label"]
    )


# ------------------------------------------------------------------------------------ folders of images
def test_class_folders_are_labelled_by_folder(tmp_path):
    for name, count in (("cat", 3), ("dog", 2), ("owl", 4)):
        folder_of_images(tmp_path / name / "train", count)
        folder_of_images(tmp_path / name / "test", 1)
    dataset = images(config(tmp_path, image_size=20))
    assert dataset.task_kwargs()["classes"] == ["cat", "dog", "owl"]
    found = {(Path(dataset[i]["path"]).parts[-3], dataset[i]["label"].item()) for i in range(len(dataset))}
    assert len(dataset) == 9 and found == {("cat", 0), ("dog", 1), ("owl", 2)}
    assert len(images(config(tmp_path, image_size=20), train=False)) == 3
    assert len(images(config(tmp_path, image_size=20, max_images=2))) == 6  # two per class
    given = images(config(tmp_path, image_size=20, domains=["owl", "cat"]))  # the order given
    assert given.task_kwargs()["classes"] == ["owl", "cat"]
    assert {given[i]["label"].item() for i in range(len(given)) if "owl" in given[i]["path"]} == {0}
    with pytest.raises(DataError, match="two or more class folders"):
        images(config(tmp_path, domains=["owl"]))


def test_grayscale_stays_one_channel_and_rgb_gets_three(tmp_path):
    for name in ("a", "b"):
        folder_of_images(tmp_path / name, 2)
    gray = images(config(tmp_path, image_size=20, out_channels=1))
    assert gray[0]["image"].shape == (1, 20, 20) and gray.task_kwargs()["in_channels"] == 1
    rgb = images(config(tmp_path, image_size=20, out_channels=3))
    assert rgb[0]["image"].shape == (3, 20, 20) and rgb.task_kwargs()["out_channels"] == 3


def test_a_flat_folder_is_unlabelled_with_its_test_folder_held_out(tmp_path, caplog):
    folder_of_images(tmp_path, 5)
    folder_of_images(tmp_path / "test", 2)
    dataset = images(config(tmp_path, image_size=16, preprocess="resize_and_crop", load_size=18))
    assert len(dataset) == 5 and set(dataset[(0, 1)]) == {"image", "path"}
    assert dataset[(0, 1)]["image"].shape == (1, 16, 16)
    assert dataset.task_kwargs()["classes"] == []
    assert all("test" not in Path(dataset[i]["path"]).parts for i in range(5))
    assert len(images(config(tmp_path, image_size=16), train=False)) == 2
    assert len(images(config(tmp_path, image_size=16, max_images=3))) == 3
    (tmp_path / "test" / "000.png").unlink()
    (tmp_path / "test" / "001.png").unlink()
    (tmp_path / "test").rmdir()
    with caplog.at_level(logging.WARNING, logger="translate"):
        assert len(images(config(tmp_path, image_size=16), train=False)) == 5
    assert "evaluating on the training images" in caplog.text


def test_a_folder_for_another_method_says_what_gans_read(tmp_path):
    folder_of_images(tmp_path / "trainA", 2)
    folder_of_images(tmp_path / "trainB", 2)
    with pytest.raises(DataError, match="GANs read IDX files"):
        images(config(tmp_path))


def test_suggested_commands_for_gan_data(tmp_path):
    folder_of_images(tmp_path / "faces", 2)
    mnist_like(tmp_path / "digits", train=2, test=1)
    assert suggested_command(detect_layout(tmp_path / "faces")) == (
        f"translate train dcgan --data-root {tmp_path / 'faces'}"
    )
    assert suggested_command(detect_layout(tmp_path / "digits")) == (
        f"translate train gan --data-root {tmp_path / 'digits'}"
    )


# ------------------------------------------------------------------------------------------ real data
def test_the_real_fashion_mnist():
    root = SHARED_DATASETS / "fashion-mnist"
    if not root.is_dir():
        pytest.skip(f"real data set {root} is absent (it lives beside the project in ../shared/datasets)")
    train, test = images(config(root)), images(config(root), train=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.task_kwargs()["classes"] == [str(c) for c in range(10)]
    for dataset in (train, test):
        for index in (0, len(dataset) - 1):
            item = dataset[index]
            assert item["image"].shape == (1, 28, 28) and 0 <= item["label"].item() <= 9
    assert set(train.labels.tolist()) == set(range(10))
