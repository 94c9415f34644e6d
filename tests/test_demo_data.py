"""The synthetic photo/cartoon demo data: deterministic, in the documented layouts, two distinct styles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from translate.catalog.demo import MARKER, make_demo_dataset, render_scene
from translate.config import DataConfig
from translate.data import aligned, read_image, unaligned
from translate.errors import DataError

SMALL = {"num_train": 4, "num_test": 3, "size": 32}


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout", ["unaligned", "aligned"])
def test_two_generations_are_byte_identical(tmp_path, layout):
    first = files(make_demo_dataset(tmp_path / "one", layout=layout, **SMALL))
    second = files(make_demo_dataset(tmp_path / "two", layout=layout, **SMALL))
    assert first == second and MARKER in first
    other_seed = files(make_demo_dataset(tmp_path / "three", layout=layout, seed=1, **SMALL))
    assert other_seed.keys() == first.keys() and other_seed != first


def test_unaligned_layout_with_paired_test_scenes(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", layout="unaligned", domains=("day", "toon"), **SMALL)
    names = {
        d: sorted(p.name for p in (root / d).iterdir()) for d in ("day", "toon", "test/day", "test/toon")
    }
    assert len(names["day"]) == len(names["toon"]) == 4
    assert names["test/day"] == names["test/toon"] and len(names["test/day"]) == 3
    assert read_image(root / "day" / names["day"][0]).shape == (32, 32, 3)
    # the paired test files are the same scene in the two styles
    photo, cartoon = render_scene(0, 1, 0, 32)
    assert np.array_equal(read_image(root / "test/day" / names["test/day"][0]), photo)
    assert np.array_equal(read_image(root / "test/toon" / names["test/toon"][0]), cartoon)
    # training scenes are unpaired: no cartoon file is the cartoon of the same-named photo's scene
    for i in range(4):
        _, same_scene_cartoon = render_scene(0, 0, i, 32)
        assert not np.array_equal(read_image(root / "toon" / f"{i:04d}.png"), same_scene_cartoon)
    train = DataConfig(root=str(root), domains=["day", "toon"], image_size=32, load_size=36)
    assert len(unaligned(train)) == 4
    test = unaligned(train, train=False)
    item = test[1]
    assert len(test) == 3 and Path(item["path_A"]).name == Path(item["path_B"]).name


def test_aligned_layout_is_photo_beside_cartoon(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", layout="aligned", **SMALL)
    assert len(list((root / "train").glob("*.png"))) == 4 and len(list((root / "test").glob("*.png"))) == 3
    pair = read_image(root / "train" / "0000.png")
    assert pair.shape == (32, 64, 3)
    photo, cartoon = render_scene(0, 0, 0, 32)
    assert np.array_equal(pair, np.concatenate([photo, cartoon], axis=1))
    dataset = aligned(DataConfig(root=str(root), image_size=32, load_size=36))
    assert len(dataset) == 4 and dataset[0]["input"].shape == (3, 32, 32)


def test_the_styles_differ_cartoons_are_flat_photos_are_not():
    def flat_fraction(image: np.ndarray) -> float:
        """Share of pixels in the 8 most common colours."""
        _, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
        return np.sort(counts)[::-1][:8].sum() / counts.sum()

    for index in range(5):
        photo, cartoon = render_scene(0, 1, index, 64)
        assert flat_fraction(cartoon) > 0.7
        assert flat_fraction(photo) < 0.2
        # dark outlines in the cartoon, none in the photo
        assert (cartoon.max(axis=2) < 40).mean() > 0.03


def test_an_existing_dataset_is_reused_and_other_parameters_regenerate(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", layout="aligned", **SMALL)
    stamp = (root / "train" / "0000.png").stat().st_mtime_ns
    (root / "extra.txt").write_text("kept while the parameters match")
    assert make_demo_dataset(root, layout="aligned", **SMALL) == root
    assert (root / "extra.txt").exists() and (root / "train" / "0000.png").stat().st_mtime_ns == stamp
    make_demo_dataset(root, layout="aligned", **{**SMALL, "num_train": 2})
    assert not (root / "extra.txt").exists() and len(list((root / "train").iterdir())) == 2
    assert not [p for p in tmp_path.iterdir() if p.name != "demo"]  # no temporary folders left


def test_a_foreign_folder_is_never_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"precious")
    with pytest.raises(DataError, match="not a translate demo dataset"):
        make_demo_dataset(tmp_path / "mine", layout="aligned", **SMALL)
    assert (tmp_path / "mine" / "photo.jpg").read_bytes() == b"precious"
    with pytest.raises(DataError, match="test"):
        make_demo_dataset(tmp_path / "x", layout="unaligned", domains=("test", "b"), **SMALL)
