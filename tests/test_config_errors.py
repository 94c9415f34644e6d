"""Config files that are wrong give one line naming the file and the key, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from translate.api import resolve_config
from translate.cli import main
from translate.config import build_config, check_arguments
from translate.config_files import load_yaml
from translate.errors import ConfigError
from translate.registry import GENERATORS

BROKEN = {
    "self.yaml": (
        b"_base_: self.yaml\ntask: pix2pix\n",
        r"self.yaml: _base_ cycle: .*self.yaml -> .*self",
    ),
    "ring.yaml": (b"_base_: ring_b.yaml\n", r"_base_ cycle: .*ring_b.yaml -> .*ring_c.yaml -> .*ring_b.yaml"),
    "five.yaml": (b"_base_: 5\n", r"five.yaml: _base_ must be a file name or a list of file names.*got 5"),
    "nulls.yaml": (b"_base_: [null]\n", r"nulls.yaml: _base_ must be a file name.*got \[None\]"),
    "latin1.yaml": (b"task: pix2pix\n# caf\xe9\n", r"latin1.yaml is not UTF-8 text \(byte 0xe9 on line 2\)"),
    "section.yaml": (
        b"task: pix2pix\ntrain: 5\n",
        r"section.yaml: config key 'train' must be a mapping",
    ),
    "syntax.yaml": (
        b"train:\n  steps: 4\n\n\tlr: 1\n",
        r"syntax.yaml is not valid YAML: line 4,",
    ),
}
"""Each broken file and the message it gets."""
HELPERS = {"ring_b.yaml": b"_base_: ring_c.yaml\n", "ring_c.yaml": b"_base_: ring_b.yaml\n"}


@pytest.fixture
def folder(tmp_path, monkeypatch):
    for name, (content, _) in BROKEN.items():
        (tmp_path / name).write_bytes(content)
    for name, content in HELPERS.items():
        (tmp_path / name).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_config_file_is_one_config_error_naming_it(folder, name):
    with pytest.raises(ConfigError, match=BROKEN[name][1]) as info:
        load_yaml(folder / name)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", BROKEN)
def test_train_says_it_in_one_line(folder, name):
    result = CliRunner().invoke(main, ["train", "pix2pix", "--config", name, "--steps", "1"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert name.split(".")[0] in result.output


def test_a_section_that_is_not_a_mapping_is_not_dropped_by_a_later_flag(folder):
    """``train: 5`` under ``--steps 1`` (a later ``train: {steps: 1}``) was silently ignored."""
    with pytest.raises(ConfigError, match="section.yaml: config key 'train' must be a mapping"):
        resolve_config("pix2pix", "section.yaml", [{"train": {"steps": 1}}])
    with pytest.raises(ConfigError, match="config key 'train' must be a mapping.*got 5"):
        build_config({"train": 5}, {"train": {"steps": 1}})


def test_shared_bases_are_not_a_cycle(tmp_path):
    (tmp_path / "common.yaml").write_text("train: {steps: 7, lr: 0.1}\n")
    (tmp_path / "left.yaml").write_text("_base_: common.yaml\ndata: {image_size: 32}\n")
    (tmp_path / "right.yaml").write_text("_base_: common.yaml\ntrain: {lr: 0.2}\n")
    (tmp_path / "top.yaml").write_text("_base_: [left.yaml, right.yaml]\n")
    assert load_yaml(tmp_path / "top.yaml") == {"train": {"steps": 7, "lr": 0.2}, "data": {"image_size": 32}}


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "_base_:\ntrain:\n"])
def test_an_empty_file_or_empty_sections_are_no_settings(tmp_path, content):
    (tmp_path / "empty.yaml").write_text(content)
    assert load_yaml(tmp_path / "empty.yaml") == {}
    assert build_config(load_yaml(tmp_path / "empty.yaml")) == build_config()


def test_a_utf8_file_with_a_byte_order_mark_reads(tmp_path):
    (tmp_path / "bom.yaml").write_bytes("\ufefftask: pix2pix # café\n".encode())
    assert load_yaml(tmp_path / "bom.yaml") == {"task": "pix2pix"}


def test_a_yaml_error_names_the_line_and_where_the_unclosed_part_began(tmp_path):
    (tmp_path / "open.yaml").write_text("task: pix2pix\nmodel: {generator: [unet\n\ntrain: {}\n")
    with pytest.raises(ConfigError, match=r"open.yaml is not valid YAML: line \d+, .*from line 2\)"):
        load_yaml(tmp_path / "open.yaml")


def test_a_wrongly_typed_component_option_is_named_before_torch_sees_it():
    constructor = GENERATORS.get("unet_128")
    with pytest.raises(ConfigError, match=r"generator 'unet_128': base_channels must be int; got 'many'"):
        check_arguments(constructor, {"base_channels": "many"}, "generator 'unet_128'")
    with pytest.raises(ConfigError, match=r"dropout must be bool; got 'yes'"):
        check_arguments(constructor, {"dropout": "yes"}, "generator 'unet_128'")
    check_arguments(constructor, {"base_channels": 8, "norm": "instance", "dropout": True}, "generator")


def test_a_wrongly_typed_option_in_a_config_is_one_line_from_the_registry():
    with pytest.raises(ConfigError, match="base_channels must be int; got 'many'"):
        GENERATORS.build({"name": "unet_128", "base_channels": "many"})
