"""Training augmentation: colour jitter in the loader pipeline, and crop/flip/jitter on the device
(``data.augment_on: device``) with the same keys, the same pairing rules and exact resuming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_SIZE, assert_resuming_changes_nothing, tiny_overrides
from PIL import Image
from torch.utils.data import DataLoader

from translate.api import resolve_config
from translate.catalog.demo import make_demo_dataset
from translate.config import DataConfig, build_config
from translate.data import aligned, unaligned
from translate.data.device_augment import DeviceAugment
from translate.data.sampler import ResumableSampler
from translate.data.transforms import build_transform, seed_transform, to_tensor
from translate.errors import ConfigError

SIZE, LOAD = 16, 24
RNG = np.random.default_rng(0)


def make_twins(folder: Path, count: int, height: int = 20, width: int = 22) -> None:
    """A|B files whose halves are the same random picture: input == target pixelwise."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        half = RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([half, half], axis=1)).save(folder / f"{i:03d}.png")


def make_domain(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(RNG.integers(0, 256, (20, 22, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


def data(root: Path, **kwargs) -> DataConfig:
    return DataConfig(
        **{"root": str(root), "image_size": SIZE, "load_size": LOAD, "num_workers": 0, **kwargs}
    )


def first_batch(dataset, batch_size: int = 4, seed: int = 0) -> dict:
    sampler = ResumableSampler(len(dataset), seed=seed)
    return next(iter(DataLoader(dataset, batch_size=batch_size, sampler=sampler)))


@pytest.fixture
def twins(tmp_path):
    make_twins(tmp_path / "train", 4)
    return tmp_path


# ------------------------------------------------------------------------------------------ both modes
@pytest.mark.parametrize("augment_on", ["loader", "device"])
@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width_and_crop"])
def test_both_modes_give_image_size_in_range(twins, tmp_path, augment_on, preprocess):
    config = data(twins, augment_on=augment_on, preprocess=preprocess, color_jitter=0.5)
    batch = first_batch(aligned(config))
    if augment_on == "device":
        loaded = batch["input"].shape[-1]
        assert loaded > SIZE  # the loader only resized: load_size (or the file's size, padded)
        batch = DeviceAugment(config, seed=0)(batch, samples_seen=0)
    for key in ("input", "target"):
        assert batch[key].shape == (4, 3, SIZE, SIZE)
        assert batch[key].min() >= -1 and batch[key].max() <= 1
    make_domain(tmp_path / "a", 3)
    make_domain(tmp_path / "b", 5)
    config = data(
        tmp_path, domains=["a", "b"], augment_on=augment_on, preprocess=preprocess, color_jitter=0.5
    )
    batch = first_batch(unaligned(config))
    if augment_on == "device":
        batch = DeviceAugment(config, seed=0)(batch, samples_seen=0)
    for key in ("A", "B"):
        assert batch[key].shape == (4, 3, SIZE, SIZE)
        assert batch[key].min() >= -1 and batch[key].max() <= 1


def test_eval_items_stay_center_crops_in_device_mode(twins):
    loader_set = aligned(data(twins))
    device_set = aligned(data(twins, augment_on="device", color_jitter=0.5))
    assert device_set[(0, 7)]["input"].shape == (3, LOAD, LOAD)  # training: resized only
    assert device_set[1]["input"].shape == (3, SIZE, SIZE)
    assert torch.equal(device_set[1]["input"], loader_set[1]["input"])


# ------------------------------------------------------------------------------------------ pairing
def test_device_mode_crops_and_flips_input_and_target_alike(twins):
    config = data(twins, augment_on="device")
    batch = first_batch(aligned(config))
    assert torch.equal(batch["input"], batch["target"])
    augment = DeviceAugment(config, seed=0)
    crops = set()
    for seen in range(0, 40, 4):
        out = augment(batch, samples_seen=seen)
        assert torch.equal(out["input"], out["target"])
        crops.add(out["input"][0].sum().item())
    assert len(crops) > 5  # the crops and flips do vary


def test_unaligned_domains_are_augmented_independently():
    config = DataConfig(image_size=SIZE, load_size=LOAD)
    image = torch.rand(4, 3, LOAD, LOAD) * 2 - 1
    out = DeviceAugment(config, seed=0)({"A": image, "B": image.clone()}, samples_seen=0)
    assert not torch.equal(out["A"], out["B"])


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_jitter_changes_the_input_but_never_the_target(twins, augment_on):
    def batch(jitter: float) -> dict:
        config = data(twins, augment_on=augment_on, color_jitter=jitter)
        out = first_batch(aligned(config))
        return DeviceAugment(config, seed=0)(out, samples_seen=8) if augment_on == "device" else out

    plain, jittered = batch(0.0), batch(0.5)
    assert torch.equal(plain["input"], plain["target"])  # same crop and flip
    assert torch.equal(jittered["target"], plain["target"])  # the target keeps crop, flip and colours
    changed = (jittered["input"] - plain["input"]).abs().flatten(1).amax(1)
    assert (changed > 0.05).all()  # every input is jittered


def test_unaligned_jitter_applies_to_both_domains(tmp_path):
    make_domain(tmp_path / "a", 3)
    make_domain(tmp_path / "b", 3)
    plain = first_batch(unaligned(data(tmp_path, domains=["a", "b"])))
    jittered = first_batch(unaligned(data(tmp_path, domains=["a", "b"], color_jitter=0.5)))
    for key in ("A", "B"):
        assert not torch.equal(plain[key], jittered[key])


def test_zero_jitter_leaves_colours_alone():
    picture = RNG.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    transform = build_transform("resize_and_crop", SIZE, SIZE, flip=False, color_jitter=0.0)
    seed_transform(transform, 3)
    assert torch.allclose(transform(image=picture)["image"], to_tensor(picture), atol=1e-6)
    image = to_tensor(picture)[None]
    config = DataConfig(image_size=SIZE, load_size=SIZE, flip=False, color_jitter=0.0)
    assert torch.equal(DeviceAugment(config, seed=0)({"A": image}, samples_seen=0)["A"], image)
    gray = image[:, :1]
    jittered = DeviceAugment(DataConfig(image_size=SIZE, flip=False, color_jitter=0.3), seed=0)
    assert not torch.equal(
        jittered({"A": gray}, samples_seen=0)["A"], gray
    )  # one channel: brightness/contrast


# ------------------------------------------------------------------------------------------ randomness
def test_device_augmentation_is_a_function_of_seed_and_samples_seen():
    config = DataConfig(image_size=SIZE, load_size=LOAD, color_jitter=0.4)
    image = torch.rand(4, 3, LOAD, LOAD) * 2 - 1
    batch = {"input": image, "target": image.clone(), "path": ["x"] * 4}
    state = torch.get_rng_state()
    first = DeviceAugment(config, seed=0)(batch, samples_seen=4)
    assert torch.equal(torch.get_rng_state(), state), "the global RNG must be left as it was"
    again = DeviceAugment(config, seed=0)(batch, samples_seen=4)
    assert all(torch.equal(first[k], again[k]) for k in ("input", "target"))
    assert first["path"] == batch["path"]
    torch.manual_seed(123)  # the global RNG does not matter
    assert torch.equal(DeviceAugment(config, seed=0)(batch, samples_seen=4)["input"], first["input"])
    assert not torch.equal(DeviceAugment(config, seed=1)(batch, samples_seen=4)["input"], first["input"])
    assert not torch.equal(DeviceAugment(config, seed=0)(batch, samples_seen=8)["input"], first["input"])


def test_config_checks_augment_on_and_color_jitter():
    assert build_config({"data": {"augment_on": "device", "color_jitter": 0.3}}).data.augment_on == "device"
    with pytest.raises(ConfigError, match="data.augment_on must be one of loader, device; got 'gpu'"):
        build_config({"data": {"augment_on": "gpu"}})
    with pytest.raises(ConfigError, match="data.color_jitter must be between 0 and 1"):
        build_config({"data": {"color_jitter": 1.5}})
    with pytest.raises(ConfigError, match="data.color_jitter must be float"):
        build_config({"data": {"color_jitter": "strong"}})


# ------------------------------------------------------------------------------------------ resuming
def test_device_augmented_pix2pix_resumes_exactly(tmp_path):
    root = make_demo_dataset(tmp_path / "data", layout="aligned", num_train=6, num_test=2, size=TINY_SIZE)
    layers = [
        {"data": {"root": str(root), "augment_on": "device", "color_jitter": 0.4}},
        tiny_overrides("pix2pix", steps=4, checkpoint_every=100),
    ]
    config = resolve_config("pix2pix", overrides=layers)
    assert config.data.augment_on == "device"

    assert_resuming_changes_nothing(config, tmp_path)
