"""Data: image reading edge cases, preprocess modes, the resumable sampler, and both datasets."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader

from translate.config import DataConfig
from translate.data import AlignedDataset, UnalignedDataset, aligned, unaligned
from translate.data.io import UnreadableImageError, list_images, read_image
from translate.data.sampler import ResumableSampler, mix_seed, split_item
from translate.data.transforms import build_transform, seed_transform, to_image, to_tensor
from translate.errors import ConfigError, DataError
from translate.registry import DATASETS

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

RNG = np.random.default_rng(0)
PICTURE = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)  # H=12, W=20: orientation is visible


def save(path: Path, image: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


# ------------------------------------------------------------------------------------------ list_images
def test_list_images_is_sorted_recursive_and_skips_hidden_and_non_images(tmp_path):
    for name in [
        "b.png",
        "a.JPG",
        "sub/c d.jpeg",
        "sub/ünï cödé.webp",
        ".hidden.png",
        ".cache/x.png",
        "notes.txt",
        "sub/deeper/e.bmp",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a.JPG", "b.png", "sub/c d.jpeg", "sub/deeper/e.bmp", "sub/ünï cödé.webp"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.JPG", "b.png"]
    assert list_images(tmp_path / "missing") == []


# ------------------------------------------------------------------------------------------ read_image
def test_rgb_png_and_jpeg_with_spaces_and_non_ascii_names(tmp_path):
    png = save(tmp_path / "ünï cödé 1.png", Image.fromarray(PICTURE))
    assert np.array_equal(read_image(png), PICTURE)
    jpeg = save(tmp_path / "x y.jpg", Image.fromarray(PICTURE), quality=95)
    out = read_image(jpeg)
    assert out.shape == (12, 20, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.asarray(Image.open(jpeg)).astype(int)).max() <= 2


def test_grayscale_becomes_rgb_and_rgb_becomes_one_channel(tmp_path):
    gray = PICTURE[..., 0]
    path = save(tmp_path / "g.png", Image.fromarray(gray))
    rgb = read_image(path)
    assert rgb.shape == (12, 20, 3) and all(np.array_equal(rgb[..., c], gray) for c in range(3))
    one = read_image(path, channels=1)
    assert one.shape == (12, 20, 1) and np.array_equal(one[..., 0], gray)
    color = read_image(save(tmp_path / "c.png", Image.fromarray(PICTURE)), channels=1)
    expected = np.asarray(Image.fromarray(PICTURE).convert("L")).astype(int)
    assert color.shape == (12, 20, 1) and np.abs(color[..., 0].astype(int) - expected).max() <= 1
    with pytest.raises(ValueError):
        read_image(path, channels=2)


def test_alpha_is_composited_onto_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish everywhere
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[0, 2, 3] = 0, 255, 128
    out = read_image(save(tmp_path / "rgba.png", Image.fromarray(rgba, "RGBA")))
    assert out.shape == (4, 4, 3)
    assert out[0, 0].tolist() == [255, 255, 255]  # fully transparent -> white
    assert out[0, 1].tolist() == [200, 0, 0]  # opaque -> its colour
    assert out[0, 2].tolist() == [227, 127, 127]  # half: (200 * 128 + 255 * 127) / 255 = 227.4
    la = np.stack([np.full((4, 4), 50, np.uint8), np.full((4, 4), 0, np.uint8)], axis=-1)
    la[1, 1, 1] = 255
    out = read_image(save(tmp_path / "la.png", Image.fromarray(la, "LA")), channels=1)
    assert out.shape == (4, 4, 1) and out[0, 0, 0] == 255 and out[1, 1, 0] == 50


def test_palette_transparency_is_composited_onto_white(tmp_path):
    indices = np.array([[0, 1], [1, 2]], np.uint8)
    palette = Image.fromarray(indices, "P")
    palette.putpalette([10, 20, 30, 200, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 9))
    path = save(tmp_path / "p.png", palette, transparency=0)
    out = read_image(path)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [200, 0, 0] and out[1, 0].tolist() == [200, 0, 0]
    assert out[1, 1].tolist() == [0, 200, 0]
    gif = save(tmp_path / "p.gif", palette, transparency=0)
    assert read_image(gif)[0, 0].tolist() == [255, 255, 255] and read_image(gif)[1, 1].tolist() == [0, 200, 0]


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    gray16 = np.array([[0, 32896, 65535]], np.uint16)
    path = tmp_path / "g16.png"
    assert cv2.imwrite(str(path), gray16)
    assert read_image(path)[0, :, 0].tolist() == [0, 128, 255]
    rgb16 = (PICTURE.astype(np.uint16) * 257)[..., ::-1]  # OpenCV writes BGR
    path = tmp_path / "c16.png"
    assert cv2.imwrite(str(path), rgb16)
    assert np.array_equal(read_image(path), PICTURE)
    rgba16 = np.dstack([rgb16, np.zeros((12, 20), np.uint16)])  # fully transparent -> white
    assert cv2.imwrite(str(tmp_path / "c16a.png"), rgba16)
    assert (read_image(tmp_path / "c16a.png") == 255).all()


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    path = save(tmp_path / "cmyk.jpg", Image.fromarray(PICTURE).convert("CMYK"), quality=95)
    out = read_image(path)
    expected = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert out.shape == (12, 20, 3) and np.abs(out.astype(int) - expected).mean() < 3


def test_exif_orientation_6_rotates_a_jpeg(tmp_path):
    image = Image.fromarray(PICTURE)
    exif = image.getexif()
    exif[0x0112] = 6
    path = save(tmp_path / "rotated.jpg", image, exif=exif.tobytes(), quality=95)
    out = read_image(path)
    assert out.shape == (20, 12, 3)  # 90 degrees clockwise
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path))).astype(int)
    assert np.abs(out.astype(int) - upright).max() <= 2


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tiff"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path, suffix, orientation):
    image = Image.fromarray(PICTURE)
    exif = image.getexif()
    exif[0x0112] = orientation
    options = {"lossless": True} if suffix == ".webp" else {}
    path = save(tmp_path / f"o{orientation}{suffix}", image, exif=exif.tobytes(), **options)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert np.array_equal(read_image(path), expected)


@pytest.mark.parametrize(
    "case", ["zero-byte", "random bytes", "text", "truncated jpeg", "truncated png", "missing"]
)
def test_unreadable_files_raise_with_the_path_in_one_line(tmp_path, case):
    path = tmp_path / f"bad {case}.png"
    good_jpeg = tmp_path / "good.jpg"
    Image.fromarray(np.repeat(np.repeat(PICTURE, 8, 0), 8, 1)).save(good_jpeg, quality=90)
    good_png = save(tmp_path / "good.png", Image.fromarray(PICTURE))
    content = {
        "zero-byte": b"",
        "random bytes": RNG.integers(0, 256, 500, dtype=np.uint8).tobytes(),
        "text": b"hello, I am not an image\n",
        "truncated jpeg": good_jpeg.read_bytes()[: good_jpeg.stat().st_size // 2],
        "truncated png": good_png.read_bytes()[:-40],
    }
    if case in content:
        path.write_bytes(content[case])
    with pytest.raises(UnreadableImageError) as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, DataError) and info.value.path == path


# ------------------------------------------------------------------------------------------ transforms
SOURCE = RNG.integers(0, 256, (50, 70, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("preprocess", "shape", "expected"),
    [
        ("resize_and_crop", (50, 70), (32, 32)),
        ("crop", (50, 70), (32, 32)),
        ("crop", (20, 24), (32, 32)),  # padded first
        ("scale_width", (50, 70), (24, 32)),  # width 32, height 22.9 -> 23 -> padded to 24
        ("scale_width_and_crop", (50, 70), (32, 32)),
        ("scale_width_and_crop", (10, 70), (32, 32)),  # too flat: padded to 32 high
        ("none", (50, 70), (52, 72)),  # padded to multiples of 4
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_preprocess_modes_give_the_documented_shape_and_range(preprocess, shape, expected, train):
    transform = build_transform(preprocess, image_size=32, load_size=None, flip=True, train=train)
    seed_transform(transform, 1)
    out = transform(image=np.ascontiguousarray(SOURCE[: shape[0], : shape[1]]))["image"]
    assert out.dtype == torch.float32 and tuple(out.shape) == (3, *expected)
    assert out.min() >= -1 and out.max() <= 1 and out.max() > out.min()


def test_one_channel_images_keep_one_channel():
    transform = build_transform("resize_and_crop", 16, None, flip=True)
    out = transform(image=SOURCE[..., :1].copy(), target=SOURCE.copy())
    assert out["image"].shape == (1, 16, 16) and out["target"].shape == (3, 16, 16)


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width_and_crop"])
def test_paired_targets_get_the_same_crop_and_flip(preprocess):
    transform = build_transform(preprocess, 32, 40, flip=True)
    for seed in range(6):
        seed_transform(transform, seed)
        out = transform(image=SOURCE, target=SOURCE.copy())
        assert torch.equal(out["image"], out["target"])


def test_a_seed_fixes_the_augmentation_and_seeds_differ():
    transform = build_transform("resize_and_crop", 32, 48, flip=True)

    def sample(seed):
        seed_transform(transform, seed)
        return transform(image=SOURCE)["image"]

    assert torch.equal(sample(7), sample(7))
    other = build_transform("resize_and_crop", 32, 48, flip=True)  # a fresh pipeline (another worker)
    seed_transform(other, 7)
    assert torch.equal(other(image=SOURCE)["image"], sample(7))
    outputs = [sample(seed) for seed in range(8)]
    assert len({tuple(o.flatten()[:64].tolist()) for o in outputs}) >= 6


def test_flip_and_crop_are_not_correlated():
    # Compose.set_random_seed would give each step its own generator with the same seed: the flip's
    # draw would then equal the crop's first draw, and the flip would follow the vertical offset.
    transform = build_transform("crop", 8, None, flip=True)
    image = RNG.integers(0, 256, (10, 40, 3), dtype=np.uint8)
    flips_by_offset: dict[tuple[str, int], list[bool]] = {}
    for seed in range(80):
        seed_transform(transform, seed)
        out = to_image(transform(image=image)["image"])
        candidates = {(y, x): image[y : y + 8, x : x + 8] for y in range(3) for x in range(33)}
        match = [(y, x, False) for (y, x), c in candidates.items() if np.array_equal(c, out)]
        match += [(y, x, True) for (y, x), c in candidates.items() if np.array_equal(c[:, ::-1], out)]
        assert len(match) == 1
        y, x, flipped = match[0]
        flips_by_offset.setdefault(("y", y), []).append(flipped)
        flips_by_offset.setdefault(("x", x // 11), []).append(flipped)
    for offset, flips in flips_by_offset.items():
        assert len(flips) < 8 or 0 < sum(flips) < len(flips), offset


def test_eval_is_a_deterministic_center_crop_without_flip():
    transform = build_transform("crop", 32, None, flip=True, train=False)
    out = to_image(transform(image=SOURCE)["image"])
    assert np.array_equal(out, SOURCE[9:41, 19:51])


def test_default_load_size_is_286_over_256():
    transform = build_transform("resize_and_crop", 256, None, flip=False)
    assert (transform.transforms[0].height, transform.transforms[0].width) == (286, 286)


def test_to_tensor_and_to_image_round_trip():
    tensor = to_tensor(SOURCE)
    assert tensor.shape == (3, 50, 70) and tensor.min() >= -1 and tensor.max() <= 1
    assert np.array_equal(to_image(tensor), SOURCE)
    transform = build_transform("none", 4, None, flip=False, train=False)
    assert torch.allclose(transform(image=SOURCE[:48, :68])["image"], to_tensor(SOURCE[:48, :68]), atol=1e-6)


# ------------------------------------------------------------------------------------------ sampler
def test_resuming_continues_the_uninterrupted_stream():
    full = list(itertools.islice(ResumableSampler(7, seed=3), 40))
    for start in (0, 5, 7, 13):
        resumed = list(itertools.islice(ResumableSampler(7, seed=3, start=start), 40 - start))
        assert resumed == full[start:]


def test_each_epoch_is_a_new_permutation_with_fresh_seeds():
    stream = list(itertools.islice(ResumableSampler(10, seed=0), 50))
    epochs = [[index for index, _ in stream[e * 10 : (e + 1) * 10]] for e in range(5)]
    assert all(sorted(epoch) == list(range(10)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 5
    seeds = [seed for _, seed in stream]
    assert len(set(seeds)) == 50 and all(0 <= s < 2**63 for s in seeds)
    other = list(itertools.islice(ResumableSampler(10, seed=1), 10))
    assert other != stream[:10]
    in_order = [index for index, _ in itertools.islice(ResumableSampler(4, seed=0, shuffle=False), 8)]
    assert in_order == [0, 1, 2, 3, 0, 1, 2, 3]


def test_sampler_items_and_helpers():
    assert split_item(5) == (5, None) and split_item((5, 9)) == (5, 9)
    assert mix_seed(1, 2) == mix_seed(1, 2) != mix_seed(2, 1) and mix_seed(-1) >= 0
    with pytest.raises(ValueError):
        ResumableSampler(0, seed=0)


# ------------------------------------------------------------------------------------------ datasets
def make_pairs(folder: Path, count: int, size: int = 24, start: int = 0) -> list[Path]:
    """A|B files: A half red-dominant, B half blue-dominant, with a per-file brightness."""
    paths = []
    for i in range(start, start + count):
        a = np.zeros((size, size, 3), np.uint8)
        a[..., 0] = 150 + i
        b = np.zeros((size, size, 3), np.uint8)
        b[..., 2] = 150 + i
        paths.append(save(folder / f"{i:03d}.png", Image.fromarray(np.concatenate([a, b], axis=1))))
    return paths


def make_domain(folder: Path, count: int, value: int, size: int = 20) -> list[Path]:
    return [
        save(folder / f"{i:03d} img.png", Image.fromarray(np.full((size, size + 4, 3), value + i, np.uint8)))
        for i in range(count)
    ]


def config(root: Path, **kwargs) -> DataConfig:
    return DataConfig(**{"root": str(root), "image_size": 16, "load_size": 20, "num_workers": 0, **kwargs})


def test_aligned_direction_picks_the_input_half(tmp_path):
    make_pairs(tmp_path / "train", 3)
    a2b = aligned(config(tmp_path, direction="a2b"))
    item = a2b[(0, 123)]
    assert set(item) == {"input", "target", "path"} and item["input"].shape == (3, 16, 16)
    assert item["input"][0].mean() > 0 > item["input"][2].mean()  # red input
    assert item["target"][2].mean() > 0 > item["target"][0].mean()  # blue target
    b2a = aligned(config(tmp_path, direction="b2a"))[(0, 123)]
    assert torch.equal(b2a["input"], item["target"]) and torch.equal(b2a["target"], item["input"])
    assert a2b.task_kwargs() == {"in_channels": 3, "out_channels": 3, "direction": "a2b"}


def test_aligned_channels_and_grayscale(tmp_path):
    make_pairs(tmp_path / "train", 2)
    dataset = aligned(config(tmp_path, in_channels=1, out_channels=3))
    item = dataset[0]
    assert item["input"].shape == (1, 16, 16) and item["target"].shape == (3, 16, 16)
    assert dataset.task_kwargs()["in_channels"] == 1
    with pytest.raises(ConfigError, match="in_channels"):
        aligned(config(tmp_path, in_channels=2))


def test_aligned_folders_train_test_and_fallbacks(tmp_path, caplog):
    make_pairs(tmp_path / "train", 3)
    make_pairs(tmp_path / "test", 2, start=50)
    assert len(aligned(config(tmp_path))) == 3
    eval_set = aligned(config(tmp_path), train=False)
    assert len(eval_set) == 2 and "test" in eval_set[0]["path"]
    flat = tmp_path / "flat"
    make_pairs(flat, 4)
    make_pairs(flat / "val", 1, start=60)  # held out: not part of the training images
    assert len(aligned(config(flat))) == 4
    assert len(aligned(config(flat), train=False)) == 1
    only_train = tmp_path / "only_train"
    make_pairs(only_train / "train", 2)
    with caplog.at_level(logging.WARNING, logger="translate"):
        assert len(aligned(config(only_train), train=False)) == 2
    assert "evaluating on the training images" in caplog.text


def test_aligned_batches_through_a_dataloader_are_reproducible(tmp_path):
    make_pairs(tmp_path / "train", 5)
    dataset = DATASETS.build("aligned", data=config(tmp_path, max_images=4), train=True)
    assert isinstance(dataset, AlignedDataset)
    assert len(dataset) == 4

    def batches(workers, start=0):
        loader = DataLoader(
            dataset,
            batch_size=3,
            sampler=ResumableSampler(len(dataset), seed=1, start=start),
            num_workers=workers,
        )
        return list(itertools.islice(iter(loader), 3))

    first, again, resumed = batches(0), batches(2), batches(0, start=3)
    assert first[0]["input"].shape == (3, 3, 16, 16) and len(first[0]["path"]) == 3
    for x, y in zip(first, again):
        assert torch.equal(x["input"], y["input"]) and x["path"] == y["path"]
    assert torch.equal(first[1]["target"], resumed[0]["target"])


def test_eval_items_are_deterministic_and_unaugmented(tmp_path):
    make_pairs(tmp_path / "train", 2)
    dataset = aligned(config(tmp_path, preprocess="crop", image_size=24))
    item = dataset[1]
    assert torch.equal(item["input"], dataset[1]["input"])
    assert torch.allclose(item["input"][0], torch.full((24, 24), (151 / 127.5) - 1))


def test_unaligned_keys_determinism_and_random_b(tmp_path):
    make_domain(tmp_path / "photo", 3, 10)
    make_domain(tmp_path / "anime", 5, 100)
    dataset = DATASETS.build("unaligned", data=config(tmp_path, domains=["photo", "anime"]), train=True)
    assert isinstance(dataset, UnalignedDataset) and len(dataset) == 5
    assert dataset.task_kwargs() == {"in_channels": 3, "out_channels": 3, "domains": ["photo", "anime"]}
    item = dataset[(4, 99)]
    assert set(item) == {"A", "B", "path_A", "path_B"}
    assert item["A"].shape == item["B"].shape == (3, 16, 16)
    assert Path(item["path_A"]).name == "001 img.png"  # 4 % 3
    again = dataset[(4, 99)]
    assert torch.equal(item["A"], again["A"]) and torch.equal(item["B"], again["B"])
    drawn = {dataset[(0, seed)]["path_B"] for seed in range(30)}
    assert len(drawn) >= 4  # B is drawn at random, not tied to the index
    paired = dataset[2]  # evaluation: B = index % len(B)
    assert Path(paired["path_B"]).name == "002 img.png"


def test_unaligned_trainA_trainB_and_test_folders(tmp_path, caplog):
    make_domain(tmp_path / "trainA", 2, 10)
    make_domain(tmp_path / "trainB", 3, 20)
    make_domain(tmp_path / "testA", 1, 30)
    make_domain(tmp_path / "testB", 1, 40)
    assert len(unaligned(config(tmp_path))) == 3
    eval_set = unaligned(config(tmp_path), train=False)
    assert len(eval_set) == 1 and "testA" in eval_set[0]["path_A"] and "testB" in eval_set[0]["path_B"]


def test_unaligned_domain_subpaths_and_per_domain_train_test(tmp_path):
    for domain in ("apple", "windows"):
        make_domain(tmp_path / domain / "train", 4, 10)
        make_domain(tmp_path / domain / "test", 2, 90)
    by_subpath = unaligned(config(tmp_path, domains=["apple/train", "windows/train"]))
    assert len(by_subpath) == 4 and "apple/train" in by_subpath[0]["path_A"]
    by_name = unaligned(config(tmp_path, domains=["apple", "windows"]))
    assert len(by_name) == 4 and "apple/train" in by_name[0]["path_A"]
    held_out = unaligned(config(tmp_path, domains=["apple", "windows"]), train=False)
    assert len(held_out) == 2 and "windows/test" in held_out[0]["path_B"]


def test_a_corrupt_file_is_skipped_once_with_a_warning(tmp_path, caplog):
    make_domain(tmp_path / "a", 3, 10)
    make_domain(tmp_path / "b", 3, 50)
    bad = tmp_path / "a" / "001 img.png"
    bad.write_bytes(b"not a png")
    dataset = unaligned(config(tmp_path, domains=["a", "b"]))
    with caplog.at_level(logging.WARNING, logger="translate"):
        item = dataset[(1, 5)]
        assert Path(item["path_A"]).name == "002 img.png"  # the next file, deterministically
        dataset[(1, 6)]
        dataset[1]
    assert dataset.skipped == 1
    assert caplog.text.count(str(bad)) == 1


def test_only_unreadable_files_is_a_data_error(tmp_path):
    for i in range(3):
        (tmp_path / "train").mkdir(exist_ok=True)
        (tmp_path / "train" / f"{i}.png").write_bytes(b"")
    dataset = aligned(config(tmp_path))
    with pytest.raises(DataError, match="unreadable images in a row"):
        dataset[(0, 0)]


def test_missing_and_empty_folders_are_clear_data_errors(tmp_path):
    make_domain(tmp_path / "photo", 2, 10)
    (tmp_path / "anime").mkdir()
    (tmp_path / "anime" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError) as info:
        unaligned(config(tmp_path, domains=["photo", "anime"]))
    message = str(info.value)
    assert f"no images in {tmp_path / 'anime'}" in message and "--domains photo anime" in message
    with pytest.raises(DataError, match="not found") as info:
        unaligned(config(tmp_path, domains=["photo", "cartoon"]))
    assert str(tmp_path / "cartoon") in str(info.value)
    with pytest.raises(DataError, match="trainA"):
        unaligned(config(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        aligned(config(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=re.escape("expected A|B side-by-side images")):
        aligned(config(tmp_path / "anime"))


# ------------------------------------------------------------------------------------------ real data
def shared(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real data set {path} is absent (it lives beside the project in ../shared/datasets)")
    return path


def test_one_batch_of_facades(tmp_path):
    root = shared("facades")
    dataset = aligned(DataConfig(root=str(root), direction="b2a", image_size=64, load_size=72, max_images=8))
    batch = next(iter(DataLoader(dataset, batch_size=4, sampler=ResumableSampler(len(dataset), seed=0))))
    assert batch["input"].shape == batch["target"].shape == (4, 3, 64, 64)
    assert len(batch["path"]) == 4 and all(p.endswith(".jpg") for p in batch["path"])
    assert batch["input"].min() >= -1 and batch["input"].max() <= 1
    assert len(aligned(DataConfig(root=str(root)), train=False)) == 106


def test_one_batch_of_emoji_with_domain_subpaths():
    root = shared("emoji")
    data = DataConfig(
        root=str(root), domains=["apple/train", "windows/train"], image_size=64, load_size=72, max_images=16
    )
    dataset = unaligned(data)
    batch = next(iter(DataLoader(dataset, batch_size=4, sampler=ResumableSampler(len(dataset), seed=0))))
    assert batch["A"].shape == batch["B"].shape == (4, 3, 64, 64)
    assert all("apple/train" in p for p in batch["path_A"])
    assert all("windows/train" in p for p in batch["path_B"])
    assert dataset.skipped == 0
    # transparent emoji backgrounds come out white
    white = (batch["A"] > 0.99).all(dim=1).float().mean()
    assert white > 0.2


def test_a_domain_named_by_its_training_split_is_evaluated_on_the_sibling_test_split(tmp_path):
    from translate.data.folders import domain_folder

    for split in ("train", "test"):
        (tmp_path / "apple" / split).mkdir(parents=True)
    assert domain_folder(tmp_path, "apple/train", train=True)[0] == tmp_path / "apple" / "train"
    assert domain_folder(tmp_path, "apple/train", train=False)[0] == tmp_path / "apple" / "test"
