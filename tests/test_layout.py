"""Layout detection on generated folders of every kind, and on ../shared/datasets when present."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from translate.catalog.commands import suggested_command
from translate.data.layout import detect_layout, read_attribute_file, read_idx_header
from translate.errors import DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def image(path: Path, width: int = 16, height: int = 16, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(path.suffix or ".png", pixels)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def images(folder: Path, count: int = 3, width: int = 16, height: int = 16, ext: str = ".png") -> None:
    for i in range(count):
        image(folder / f"{i}{ext}", width, height, seed=i)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file: two zero bytes, type 0x08 (ubyte), the number of dimensions, big-endian sizes, data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_attributes(path: Path, names: list[str], rows: dict[str, list[int]]) -> Path:
    lines = [str(len(rows)), " ".join(names)]
    lines += [f"{file} " + " ".join(f"{v:2d}" for v in values) for file, values in rows.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- generated layouts --------------------------------------------------------------------------------


def test_aligned_splits(tmp_path):
    for split in ("train", "val", "test"):
        images(tmp_path / split, width=32, height=16)
    layout = detect_layout(tmp_path)
    assert layout.kind == "aligned" and layout.splits == ["train", "val", "test"]
    assert layout.paths["train"] == tmp_path / "train" and [g.split for g in layout.groups] == layout.splits
    assert suggested_command(layout) == f"translate train pix2pix --data-root {tmp_path}"


def test_aligned_pairs_directly_in_the_folder(tmp_path):
    images(tmp_path, width=64, height=32, ext=".jpg")
    layout = detect_layout(tmp_path)
    assert layout.kind == "aligned" and layout.splits == [] and "flat" in layout.alternatives


def test_split_folders_of_square_images_are_not_pairs(tmp_path):
    for split in ("train", "test"):
        images(tmp_path / split)
    layout = detect_layout(tmp_path)
    assert layout.kind == "flat" and layout.splits == ["train", "test"]


def test_cyclegan(tmp_path):
    for folder in ("trainA", "trainB", "testA", "testB"):
        images(tmp_path / folder)
    layout = detect_layout(tmp_path)
    assert layout.kind == "cyclegan" and layout.domains == ["A", "B"] and layout.splits == ["train", "test"]
    assert {g.label for g in layout.groups} == {"A/train", "B/train", "A/test", "B/test"}
    assert layout.alternatives == []


def test_prepared_cityscapes_fits_two_layouts(tmp_path):
    for folder in ("trainA", "trainB"):
        images(tmp_path / folder)
    images(tmp_path / "train", width=32, height=16)
    assert detect_layout(tmp_path).kind == "cyclegan"
    assert "aligned" in detect_layout(tmp_path).alternatives
    assert detect_layout(tmp_path, prefer="aligned").kind == "aligned"


def test_named_domains(tmp_path):
    images(tmp_path / "photo")
    images(tmp_path / "anime", width=24, height=24)
    layout = detect_layout(tmp_path)
    assert layout.kind == "domains" and layout.domains == ["anime", "photo"] and layout.splits == []
    assert suggested_command(layout).endswith("--domains anime photo")


def test_domains_with_split_subfolders_and_spaces(tmp_path):
    for domain in ("apple", "windows"):
        for split in ("train", "test"):
            image(tmp_path / domain / split / "U+1F600 U+FE0F.png")
    layout = detect_layout(tmp_path)
    assert layout.kind == "domains" and layout.splits == ["train", "test"]
    assert set(layout.paths) == {"apple/train", "apple/test", "windows/train", "windows/test"}


def test_split_first_domains_like_the_demo_data(tmp_path):
    for domain in ("photo", "anime"):
        images(tmp_path / domain)
        images(tmp_path / "test" / domain, count=1)
    layout = detect_layout(tmp_path)
    assert layout.kind == "domains" and layout.domains == ["anime", "photo"]
    assert {(g.domain, g.split) for g in layout.groups} == {
        ("photo", "train"),
        ("anime", "train"),
        ("photo", "test"),
        ("anime", "test"),
    }


def test_attribute_file_next_to_images(tmp_path):
    images(tmp_path / "images", count=3, ext=".jpg")
    write_attributes(
        tmp_path / "list_attr_celeba.txt",
        ["Black_Hair", "Male", "Young"],
        {"0.jpg": [1, -1, 1], "1.jpg": [-1, -1, 1], "2.jpg": [1, 1, -1]},
    )
    layout = detect_layout(tmp_path)
    assert layout.kind == "attributes" and layout.attributes == ["Black_Hair", "Male", "Young"]
    assert layout.paths["images"] == tmp_path / "images"
    table = read_attribute_file(tmp_path / "list_attr_celeba.txt")
    assert table.positives() == {"Black_Hair": 2, "Male": 1, "Young": 2} and table.issues == []


def test_attribute_file_problems_are_listed(tmp_path):
    path = tmp_path / "attrs.txt"
    path.write_text("4\nA B\na.jpg 1 -1\nb.jpg 1\nc.jpg 1 2\na.jpg -1 -1\n")
    table = read_attribute_file(path)
    assert table.files == ["a.jpg"]
    reasons = " | ".join(r for _, r in table.issues)
    assert "1 values for 2 attributes" in reasons and "1 or -1" in reasons and "listed twice" in reasons
    path.write_text("not an attribute file\n")
    with pytest.raises(DataError, match="line 1 = image count"):
        read_attribute_file(path)


def test_flat_folder_and_single_subfolder(tmp_path):
    images(tmp_path / "a", ext=".jpg")
    assert detect_layout(tmp_path / "a").kind == "flat"
    layout = detect_layout(tmp_path)  # one sub-folder of images
    assert layout.kind == "flat" and layout.paths == {"a": tmp_path / "a"}


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_files(tmp_path, suffix):
    rng = np.random.default_rng(0)
    write_idx(
        tmp_path / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 255, (5, 28, 28), dtype=np.uint8)
    )
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(5, dtype=np.uint8))
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", np.zeros((2, 28, 28), dtype=np.uint8))
    layout = detect_layout(tmp_path)
    assert layout.kind == "idx" and layout.splits == ["train", "test"] and len(layout.paths) == 3
    assert read_idx_header(tmp_path / f"train-images-idx3-ubyte{suffix}") == ("uint8", (5, 28, 28))
    assert "5x28x28" in layout.description


def test_idx_in_torchvision_raw_folder_and_bad_magic(tmp_path):
    write_idx(tmp_path / "raw" / "train-images-idx3-ubyte", np.zeros((1, 4, 4), dtype=np.uint8))
    assert detect_layout(tmp_path).kind == "idx"
    bad = tmp_path / "x-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78" + b"\0" * 12)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx_header(bad)


def test_empty_unknown_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match=r"empty folder.*looked for: IDX files.*trainA/ trainB/"):
        detect_layout(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "docs").mkdir()
    with pytest.raises(DataError, match=r"found folders docs/; 1 other files \(notes.txt\)"):
        detect_layout(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        detect_layout(tmp_path / "missing")
    with pytest.raises(DataError, match="is a file"):
        detect_layout(tmp_path / "notes.txt")


# --- the shared real datasets -------------------------------------------------------------------------

SHARED_KINDS = {
    "facades": "aligned",
    "faces2anime": "domains",
    "emoji": "domains",
    "celeba": "attributes",
    "anime-faces-64": "flat",
    "fashion-mnist": "idx",
}


@pytest.mark.parametrize("name", list(SHARED_KINDS))
def test_shared_datasets(name):
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(
            f"{folder} is absent (the shared datasets sit beside the project on the dev machines only)"
        )
    layout = detect_layout(folder)
    assert layout.kind == SHARED_KINDS[name], layout.description
    if name == "facades":
        assert layout.splits == ["train", "test"]
    if name in ("emoji", "faces2anime"):
        assert layout.domains == (["apple", "windows"] if name == "emoji" else ["anime", "photo"])
    if name == "celeba":
        assert len(layout.attributes) == 40 and "Blond_Hair" in layout.attributes
    if name == "fashion-mnist":
        assert "60000x28x28" in layout.description and layout.splits == ["train", "test"]


def test_names_moved_out_of_layout_are_still_importable_from_it():
    from translate.data import attributes, idx, layout

    assert layout.read_idx is idx.read_idx and layout.read_idx_header is idx.read_idx_header
    assert layout.IDX_PATTERN is idx.IDX_PATTERN and layout.idx_split is idx.idx_split
    assert layout.read_attribute_file is attributes.read_attribute_file
    assert layout.AttributeTable is attributes.AttributeTable
