"""`datasets inspect`: counts, sizes, modes, attributes, IDX shapes and every problem file with its reason."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_layout import SHARED, image, images, write_attributes, write_idx

from translate.catalog.inspect import check_image, inspect_dataset, render_report
from translate.cli.datasets import datasets


def encoded(ext: str, pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, pixels)
    assert ok
    return data.tobytes()


def rgb(height: int = 40, width: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def corrupt_png_crc(data: bytes) -> bytes:
    """Flip one byte of the first IDAT chunk's data, leaving its CRC stale."""
    at = data.index(b"IDAT") + 6
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.fixture
def messy(tmp_path) -> Path:
    """A flat folder with one file of each problem kind, and good grayscale / RGBA / palette images."""
    root = tmp_path / "messy"
    root.mkdir()
    (root / "good.png").write_bytes(encoded(".png", rgb()))
    (root / "gray.png").write_bytes(encoded(".png", rgb()[:, :, 0]))
    (root / "rgba.png").write_bytes(encoded(".png", np.dstack([rgb(), np.full((40, 40), 128, np.uint8)])))
    Image.fromarray(rgb()).convert("P").save(root / "palette.png")
    (root / "zero.png").write_bytes(b"")
    (root / "text.png").write_bytes(b"this is not an image\n")
    jpeg = encoded(".jpg", rgb(64, 64))
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    png = encoded(".png", rgb(64, 64))
    (root / "truncated.png").write_bytes(png[: len(png) * 2 // 3])
    (root / "crc.png").write_bytes(corrupt_png_crc(png))
    (root / "sixteen.png").write_bytes(encoded(".png", (rgb().astype(np.uint16) * 257)))
    Image.fromarray(rgb()).convert("CMYK").save(root / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb(40, 60)).save(root / "rotated.jpg", exif=exif.tobytes())
    (root / "tiny.png").write_bytes(encoded(".png", rgb(8, 8)))
    (root / "mismatch.jpg").write_bytes(encoded(".png", rgb()))
    (root / "notes.txt").write_text("not an image")
    (root / "name with spaces é.png").write_bytes(encoded(".png", rgb()))
    os.symlink(root / "good.png", root / "link.png")
    os.symlink(root / "gone.png", root / "broken.png")
    return root


EXPECTED = {
    "zero.png": ("error", "zero-byte file"),
    "text.png": ("error", "not an image"),
    "truncated.jpg": ("error", "truncated JPEG"),
    "truncated.png": ("error", "corrupt PNG"),
    "crc.png": ("error", "corrupt PNG"),
    "broken.png": ("error", "broken symbolic link"),
    "sixteen.png": ("warning", "16-bit PNG"),
    "cmyk.jpg": ("warning", "CMYK"),
    "rotated.jpg": ("warning", "EXIF orientation 6"),
    "tiny.png": ("warning", "tiny: 8x8"),
    "mismatch.jpg": ("warning", "PNG data in a .jpg file"),
    "notes.txt": ("warning", "not an image file"),
    "link.png": ("warning", "symbolic link"),
}


def test_every_problem_file_is_reported_with_its_reason(messy):
    report = inspect_dataset(messy)
    assert report.layout.kind == "flat"
    found = {p.path.name: (p.severity, p.reason) for p in report.problems}
    for name, (severity, reason) in EXPECTED.items():
        assert name in found, f"{name} not reported"
        assert found[name][0] == severity and reason in found[name][1], (name, found[name])
    assert set(found) == set(EXPECTED)  # grayscale, RGBA, palette and odd names are not problems
    assert report.images == 17 and report.usable == 11  # notes.txt is not counted as an image
    modes = report.groups[0].modes
    assert modes["L"] == 1 and modes["RGBA"] == 1 and modes["P"] == 1 and modes["CMYK"] == 1
    assert modes["RGB 16-bit"] == 1
    assert any("spaces" in n for n in report.notes) and any("non-ASCII" in n for n in report.notes)
    text = render_report(report)
    for name in EXPECTED:
        assert name in text
    assert "6 errors" in text and "channels 1/3/4" in text


def test_deep_check_decodes_pixels(tmp_path):
    path = image(tmp_path / "a.png", 32, 32)
    assert check_image(path, deep=True).usable
    data = path.read_bytes()
    at = data.index(b"IDAT") + 8  # damage the compressed data but keep the CRC right: only decoding notices
    length = int.from_bytes(data[at - 8 : at - 4], "big")
    body = bytearray(data[at : at + length])
    body[2:10] = b"\xff" * 8
    crc = zlib.crc32(b"IDAT" + bytes(body)).to_bytes(4, "big")
    path.write_bytes(data[:at] + bytes(body) + crc + data[at + length + 4 :])
    assert not check_image(path, deep=True).usable


def test_aligned_pairs_and_empty_split(tmp_path):
    image(tmp_path / "train" / "1.png", 64, 32)
    image(tmp_path / "train" / "2.png", 60, 20)  # not twice as wide as high
    (tmp_path / "val").mkdir()
    report = inspect_dataset(tmp_path)
    assert report.layout.kind == "aligned" and report.layout.splits == ["train", "val"]
    reasons = {(p.path.name, p.reason) for p in report.problems}
    assert reasons == {
        ("2.png", "not an A|B pair: 60x20 (width should be 2 x height)"),
        ("2.png", "tiny: 60x20 (under 32 px)"),
        ("val", "empty folder (no images)"),
    }


def test_cyclegan_report(tmp_path):
    for folder in ("trainA", "trainB", "testA"):
        images(tmp_path / folder, count=2)
    (tmp_path / "testB").mkdir()
    report = inspect_dataset(tmp_path)
    assert [g.label for g in report.groups] == ["A/train", "B/train", "A/test", "B/test"]
    assert [g.images for g in report.groups] == [2, 2, 2, 0]
    assert [p.path.name for p in report.errors] == ["testB"]


def test_attributes_report(tmp_path):
    images(tmp_path / "images", count=3, ext=".jpg")
    attrs = tmp_path / "list_attr_celeba.txt"
    write_attributes(attrs, ["Blond_Hair", "Male"], {"0.jpg": [1, -1], "1.jpg": [1, 1], "9.jpg": [-1, 1]})
    with open(attrs, "a") as f:
        f.write("5.jpg 1\n")
    report = inspect_dataset(tmp_path)
    assert report.layout.kind == "attributes" and report.attribute_rows == 3
    assert report.attributes == {"Blond_Hair": 2, "Male": 2}
    found = {p.path.name: (p.severity, p.reason) for p in report.problems if p.path.name != attrs.name}
    assert found["9.jpg"] == ("error", "listed in list_attr_celeba.txt but missing")
    assert found["2.jpg"] == ("warning", "not in list_attr_celeba.txt (no attribute labels)")
    file_issues = [p.reason for p in report.problems if p.path == attrs]
    assert file_issues == ["line 6: 5.jpg: 1 values for 2 attributes", "line 1: declares 3 images, lists 4"]
    assert "Blond_Hair 2, Male 2" in render_report(report)


def test_idx_report(tmp_path):
    labels = np.array([0, 1, 1, 2, 2, 2], dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((6, 4, 4), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 4, 4), dtype=np.uint8))
    truncated = tmp_path / "t10k-images-idx3-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:-5])
    report = inspect_dataset(tmp_path)
    by_name = {r.name: r for r in report.idx}
    assert by_name["train-labels-idx1-ubyte.gz"].classes == {0: 1, 1: 2, 2: 3}
    assert by_name["train-images-idx3-ubyte.gz"].shape == (6, 4, 4)
    assert [(p.path.name, p.reason.split(":")[0]) for p in report.errors] == [
        ("t10k-images-idx3-ubyte", "truncated")
    ]
    assert report.usable == 6
    write_idx(truncated, np.zeros((2, 4, 4), dtype=np.uint8))
    mismatch = inspect_dataset(tmp_path).errors
    assert len(mismatch) == 1 and "partner has" in mismatch[0].reason
    assert "3 classes: 0:1 1:2 2:3" in render_report(inspect_dataset(tmp_path))


def test_cli_inspect_prints_problems_and_fails_when_nothing_is_usable(messy, tmp_path):
    result = CliRunner().invoke(datasets, ["inspect", str(messy), "--min-size", "16"])
    assert result.exit_code == 0, result.output
    assert "zero.png: zero-byte file" in result.output and "layout:    flat" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"")
    (bad / "b.jpg").write_bytes(b"nope")
    result = CliRunner().invoke(datasets, ["inspect", str(bad)])
    assert result.exit_code == 1
    assert "nothing usable" in result.output and "Error: no usable images" in result.output
    result = CliRunner().invoke(datasets, ["inspect", str(tmp_path / "empty-dir-missing")])
    assert result.exit_code == 2  # click: the path does not exist
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(datasets, ["inspect", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "Error: no dataset found" in result.output


# --- the shared real datasets -------------------------------------------------------------------------

SHARED_COUNTS = {"facades": 506, "faces2anime": 100, "emoji": 4484, "celeba": 10000, "anime-faces-64": 10000}


@pytest.mark.parametrize("name", [*SHARED_COUNTS, "fashion-mnist"])
def test_shared_datasets_inspect_cleanly(name):
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(
            f"{folder} is absent (the shared datasets sit beside the project on the dev machines only)"
        )
    report = inspect_dataset(folder)
    assert report.errors == [], render_report(report, max_problems=10)
    assert report.seconds < 30  # 10,000 headers in well under a minute
    if name == "fashion-mnist":
        assert report.usable == 70000
    else:
        assert report.images == report.usable == SHARED_COUNTS[name]
    if name == "celeba":
        assert report.attribute_rows == 10000 and len(report.attributes) == 40
