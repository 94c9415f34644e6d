"""Packaged recipes: ``--config NAME`` from any folder, ``translate recipes list | show``, and the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from translate.cli import main
from translate.config_files import RECIPES, load_yaml, recipe_names

CHECKOUT = Path(__file__).resolve().parents[1]
NO_CACHE = shutil.ignore_patterns("__pycache__")


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The current folder is an empty one, outside the checkout."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_a_recipe_is_found_by_name_from_any_folder(elsewhere):
    by_path = load_yaml(CHECKOUT / "configs" / "pix2pix_facades_cpu.yaml")
    assert load_yaml("pix2pix_facades_cpu") == by_path
    assert load_yaml("pix2pix_facades_cpu.yaml") == by_path
    assert by_path["data"]["image_size"] == 64  # from its _base_/cpu_64px.yaml


def test_train_takes_a_recipe_name(elsewhere):
    from translate.api import resolve_config

    (elsewhere / "train").mkdir()
    Image.new("RGB", (64, 32)).save(elsewhere / "train" / "pair.png")
    config = resolve_config("pix2pix", "pix2pix_facades_cpu", [{"data": {"root": str(elsewhere)}}])
    assert (config.data.image_size, config.data.direction) == (64, "b2a")
    # the command line reads the name too: here the recipe's task is not the method given
    result = run("train", "cyclegan", "--config", "pix2pix_facades_cpu")
    assert result.exit_code == 1
    assert "is a pix2pix config, but the method given is cyclegan" in result.output


def test_a_file_in_the_current_folder_wins_over_a_recipe_of_that_name(elsewhere):
    (elsewhere / "unit").write_text("task: unit\ntrain: {steps: 3}\n")
    assert load_yaml("unit") == {"task": "unit", "train": {"steps": 3}}


@pytest.mark.parametrize(
    "args",
    [
        ["train", "pix2pix", "--config", "pix2pix_facade"],
        ["recipes", "show", "pix2pix_facade"],
    ],
)
def test_a_name_that_matches_nothing_is_one_line_with_the_close_ones(elsewhere, args):
    result = run(*args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "pix2pix_facades, pix2pix_facades_cpu" in lines[0]


def test_a_checkout_path_outside_a_checkout_says_the_recipe_name(elsewhere):
    result = run("train", "pix2pix", "--config", "configs/pix2pix_facades_cpu.yaml")
    assert result.exit_code == 1
    assert "a packaged recipe is called pix2pix_facades_cpu: give its name instead" in result.output


def test_recipes_list_gives_each_name_and_its_one_line_description():
    result = run("recipes", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    for name in recipe_names():
        (line,) = [line for line in lines if line.split()[:1] == [name]]
        assert len(line.split(None, 1)[1]) > 20, f"{name} has no leading comment to describe it"
    assert "pix2pix_facades_cpu" in result.output and "_base_" not in result.output.split("recipes:")[0]
    assert any("CycleGAN horse <-> zebra as in the paper" in line for line in lines)


def test_recipes_show_prints_the_file_and_a_copy_of_it_loads_anywhere(elsewhere):
    result = run("recipes", "show", "cyclegan_emoji_cpu")
    assert result.exit_code == 0
    assert result.output == (RECIPES / "cyclegan_emoji_cpu.yaml").read_text(encoding="utf-8")
    (elsewhere / "mine.yaml").write_text(result.output)  # its _base_/cpu_64px.yaml is not beside it
    assert load_yaml(elsewhere / "mine.yaml") == load_yaml("cyclegan_emoji_cpu")


def test_a_users_config_may_base_on_a_packaged_recipe(elsewhere):
    (elsewhere / "longer.yaml").write_text("_base_: pix2pix_facades_cpu\ntrain: {steps: 123}\n")
    loaded = load_yaml("longer.yaml")
    assert loaded["train"]["steps"] == 123
    assert loaded["data"] == load_yaml("pix2pix_facades_cpu")["data"]


def test_the_checkouts_configs_folder_is_the_packaged_one():
    """One copy of each recipe: ``configs/`` in the checkout is the package's folder."""
    assert (CHECKOUT / "configs").resolve() == RECIPES
    assert RECIPES.parent == CHECKOUT / "translate"


def test_the_wheel_carries_the_recipes_and_they_work_from_it(tmp_path):
    """Build the wheel from a copy of the sources (nothing is written into the checkout), then run the
    recipes from the unpacked wheel in an empty folder."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(CHECKOUT / name, source)
    shutil.copytree(CHECKOUT / "translate", source / "translate", ignore=NO_CACHE)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist"]
    subprocess.run([*build, "."], cwd=source, check=True, capture_output=True)
    (wheel,) = (source / "dist").glob("translate_gan-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {path.relative_to(CHECKOUT).as_posix() for path in RECIPES.rglob("*.yaml")}
    assert "translate/recipes/_base_/cpu_64px.yaml" in shipped
    assert shipped <= names, f"not in the wheel: {sorted(shipped - names)}"

    site, empty = tmp_path / "site", tmp_path / "empty"
    zipfile.ZipFile(wheel).extractall(site)
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    check = (
        "import translate.config_files as c, sys; assert c.RECIPES.is_relative_to(sys.argv[1]), c.RECIPES; "
        "print(c.load_yaml('pix2pix_facades_cpu')['data']['image_size'])"
    )
    said = subprocess.run(
        [sys.executable, "-c", check, str(site)], cwd=empty, env=env, capture_output=True, text=True
    )
    assert said.stdout.strip() == "64", said.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "translate", "recipes", "show", "pix2pix_facades_cpu"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.stdout == (RECIPES / "pix2pix_facades_cpu.yaml").read_text(encoding="utf-8"), shown.stderr
