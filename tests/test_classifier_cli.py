"""translate classifier train: a small CNN on the user's own labelled images (class folders, attribute file,
IDX files), its held-out accuracy, and the saved weights with their metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from translate.cli import main
from translate.metrics.domain_classifier import load_classifier

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def colour_folders(root: Path, train: int = 10, test: int = 4, size: int = 20) -> Path:
    """Three class folders of noisy flat colours, each with train/ and test/."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        for split, count in (("train", train), ("test", test)):
            folder = root / name / split
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.array(colour)[None, None] + rng.integers(-40, 40, (size, size, 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_tiny_labelled_folder_set_trains_to_high_accuracy_in_seconds(tmp_path):
    data = colour_folders(tmp_path / "colours")
    result = invoke("classifier", "train", data, "--out", tmp_path / "clf.pt", "--steps", 40, "--size", 16)
    assert result.exit_code == 0, result.output
    assert "held-out accuracy 1.0000 on 12 images (the held-out split)" in result.output
    model, meta = load_classifier(tmp_path / "clf.pt")
    assert meta["classes"] == ["blue", "green", "red"] and meta["kind"] == "domains"
    assert meta["image_size"] == [16, 16] and meta["in_channels"] == 3 and meta["num_classes"] == 3
    assert meta["held_out_accuracy"] == 1.0 and meta["train_images"] == 30
    assert model.head.out_features == 3


def test_domains_pick_and_order_the_class_folders(tmp_path):
    data = colour_folders(tmp_path / "colours")
    args = ("--out", tmp_path / "clf.pt", "--steps", 5, "--size", 16)
    result = invoke("classifier", "train", data, "--domains", "red", "blue", *args)
    assert result.exit_code == 0, result.output
    assert load_classifier(tmp_path / "clf.pt")[1]["classes"] == ["red", "blue"]


def test_an_attribute_file_trains_one_binary_output_per_attribute(tmp_path):
    from test_stargan import write_attribute_data

    data = write_attribute_data(tmp_path / "celeba", rows=20)
    result = invoke(
        "classifier", "train", data, "--out", tmp_path / "attr.pt", "--steps", 5, "--size", 16,
        "--attributes", "Blond_Hair,Male",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 attributes (Blond_Hair, Male)" in result.output
    _, meta = load_classifier(tmp_path / "attr.pt")
    assert meta["kind"] == "attributes" and meta["classes"] == ["Blond_Hair", "Male"]
    assert set(meta["held_out_accuracy_per_class"]) == {"Blond_Hair", "Male"}
    assert meta["held_out_images"] == 2  # the last tenth of the attribute file


def test_idx_files_train_on_one_channel_at_their_own_size(tmp_path):
    from test_images_dataset import mnist_like

    mnist_like(tmp_path / "mnist", train=20, test=5, size=16)
    result = invoke("classifier", "train", tmp_path / "mnist", "--out", tmp_path / "m.pt", "--steps", 3)
    assert result.exit_code == 0, result.output
    _, meta = load_classifier(tmp_path / "m.pt")
    assert meta["layout"] == "idx" and meta["in_channels"] == 1 and meta["image_size"] == [16, 16]
    assert meta["classes"] == [str(c) for c in range(10)] and meta["held_out_images"] == 5


def test_no_held_out_split_holds_out_a_tenth_of_the_training_images(tmp_path):
    for name, colour in COLOURS.items():
        (tmp_path / "flat" / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (16, 16), colour).save(tmp_path / "flat" / name / f"{i}.png")
    result = invoke("classifier", "train", tmp_path / "flat", "--out", tmp_path / "c.pt", "--steps", 3)
    assert result.exit_code == 0, result.output
    _, meta = load_classifier(tmp_path / "c.pt")
    assert meta["train_images"] == 27 and meta["held_out_images"] == 3 and "a tenth" in meta["held_out"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: [Image.new("RGB", (8, 8)).save(root / f"{i}.png") for i in range(3)], "unlabelled"),
        (lambda root: None, "no such folder"),
    ],
)
def test_data_without_labels_is_a_one_line_error(tmp_path, make, message):
    root = tmp_path / "data"
    if message != "no such folder":
        root.mkdir()
        make(root)
    result = invoke("classifier", "train", root, "--out", tmp_path / "c.pt")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert not (tmp_path / "c.pt").exists()


def test_a_file_that_is_not_a_classifier_is_a_one_line_error(tmp_path):
    from translate.errors import CheckpointError

    (tmp_path / "x.pt").write_bytes(b"not a classifier")
    with pytest.raises(CheckpointError, match="is not a classifier saved by translate classifier train"):
        load_classifier(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="translate classifier train DATA --out"):
        load_classifier(tmp_path / "missing.pt")
