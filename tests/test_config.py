from pathlib import Path

import pytest

from translate.config import Config, build_config, deep_merge
from translate.config_files import load_yaml, parse_override
from translate.errors import ConfigError

CONFIGS = sorted(
    p for p in (Path(__file__).parents[1] / "configs").rglob("*.yaml") if "_base_" not in p.parts
)


def test_defaults_are_the_papers():
    config = build_config()
    assert config.train.lr == 2e-4
    assert config.train.betas == [0.5, 0.999]
    assert config.train.schedule == "linear"
    assert config.data.image_size == 256


def test_later_layers_win_and_nested_dicts_merge():
    config = build_config(
        {"model": {"generator": {"name": "unet_256", "norm": "batch"}}, "train": {"lr": 1.0}},
        {"model": {"generator": {"norm": "instance"}}, "train": {"steps": 7}},
    )
    assert config.model["generator"] == {"name": "unet_256", "norm": "instance"}
    assert config.train.lr == 1.0 and config.train.steps == 7


def test_delete_replaces_instead_of_merging():
    merged = deep_merge({"g": {"name": "a", "x": 1}}, {"g": {"_delete_": True, "name": "b"}})
    assert merged == {"g": {"name": "b"}}


def test_switching_a_component_by_name_drops_the_old_components_options():
    base = {
        "model": {
            "generator": {"name": "unet", "num_downs": 6, "dropout": True},
            "adversarial_loss": "vanilla",
        }
    }
    config = build_config(base, parse_override("model.generator.name=unet_128"))
    assert config.model["generator"] == {"name": "unet_128"}
    config = build_config(
        base, parse_override("model.generator=resnet_6blocks"), {"model": {"generator": {"norm": "instance"}}}
    )
    assert config.model["generator"] == {"name": "resnet_6blocks", "norm": "instance"}
    # the same name merges as before
    config = build_config(base, {"model": {"generator": {"name": "unet", "num_downs": 7}}})
    assert config.model["generator"] == {"name": "unet", "num_downs": 7, "dropout": True}


def test_override_parses_yaml_values_into_nested_keys():
    assert parse_override("train.lr=1e-4") == {"train": {"lr": 1e-4}}
    assert parse_override("data.domains=[photo, anime]") == {"data": {"domains": ["photo", "anime"]}}
    assert parse_override("model.generator.name=unet_128") == {"model": {"generator": {"name": "unet_128"}}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.lr")


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"trian": {}}, "unknown config key 'trian'.*Did you mean 'train'"),
        ({"train": {"lrr": 1}}, "unknown config key train.'lrr'"),
        ({"data": {"direction": "up"}}, "data.direction must be one of"),
        ({"train": {"schedule": "exp"}}, "train.schedule must be one of"),
        ({"train": {"steps": 0}}, "train.steps must be a positive integer"),
        ({"train": 3}, "must be a mapping"),
    ],
)
def test_bad_values_get_one_clear_error(bad, message):
    with pytest.raises(ConfigError, match=message):
        build_config(bad)


def test_base_files_are_merged_underneath(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {steps: 5, lr: 0.1}\ndata: {image_size: 32}\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\ntrain: {steps: 9}\n")
    config = build_config(load_yaml(tmp_path / "child.yaml"))
    assert (config.train.steps, config.train.lr, config.data.image_size) == (9, 0.1, 32)


def test_missing_or_broken_yaml_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_resolves_and_builds_its_task(path, tmp_path):
    import torch
    from PIL import Image

    from translate.api import resolve_config
    from translate.registry import TASKS

    (tmp_path / "train").mkdir()
    Image.new("RGB", (64, 32)).save(tmp_path / "train" / "pair.png")
    raw = load_yaml(path)
    config = resolve_config(raw["task"], path, [{"data": {"root": str(tmp_path), "domains": ["a", "b"]}}])
    assert isinstance(config, Config)
    # Build the task at the configured architecture (weights on the meta device: no memory, no time).
    from_data = {}
    if TASKS.get(config.task).dataset == "labelled":  # what the attribute file would give
        names = config.data.attributes
        from_data = {"labels": {"names": names}, "image_size": config.data.image_size}
    if TASKS.get(config.task).dataset == "images":  # what a folder of ten classes would give
        from_data = {"image_size": config.data.image_size, "classes": [str(i) for i in range(10)]}
    with torch.device("meta"):
        channels = {"in_channels": 3, "out_channels": config.data.out_channels}
        task = TASKS.build({"name": config.task, **channels, **from_data, **config.model})
    assert task.exports()


def test_paths_are_accepted_where_strings_are_expected(tmp_path):
    assert build_config({"data": {"root": tmp_path}}).data.root == str(tmp_path)
