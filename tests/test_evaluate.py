"""translate eval: scores against paired ground truth, with the untranslated input as the baseline."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_SIZE, tiny_overrides
from PIL import Image

from translate.api import train
from translate.catalog.demo import make_demo_dataset
from translate.cli import main


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    root = make_demo_dataset(
        tmp_path_factory.mktemp("d") / "aligned", layout="aligned", num_train=4, num_test=3, size=TINY_SIZE
    )
    run = train(
        "pix2pix",
        overrides=[{"data": {"root": str(root)}}, tiny_overrides("pix2pix", steps=1)],
        run_dir=tmp_path_factory.mktemp("r") / "run",
    )
    return run, root


def test_eval_on_aligned_pairs_reports_translation_and_baseline(pix2pix_run, tmp_path):
    run, root = pix2pix_run
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--run",
            str(run),
            "--aligned",
            str(root / "test"),
            "--label-colors",
            "3",
            "--train-pairs",
            str(root / "train"),
            "--size",
            "16",
            "--json",
            str(tmp_path / "s.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["count"] == 3
    assert set(scores["output"]) == {"L1", "PSNR", "SSIM", "label_accuracy"}
    assert 0 <= scores["output"]["label_accuracy"] <= 1 and scores["identity"]["L1"] > 0
    assert 0 <= scores["majority"]["label_accuracy"] <= 1 and "train majority" in result.output


def test_the_majority_map_holds_each_positions_most_common_label():
    from translate.metrics.evaluate import majority_label_map

    palette = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([[[0, 1]], [[0, 1]], [[1, 1]]])  # 3 maps of 1x2: left mostly 0, right always 1
    maps = palette[labels].permute(0, 3, 1, 2)
    assert torch.equal(majority_label_map(maps, palette), palette[torch.tensor([[0, 1]])].permute(2, 0, 1))


def test_eval_pairs_files_by_name_across_target_folders(pix2pix_run, tmp_path):
    run, _ = pix2pix_run
    for folder in ("in", "t1", "t2"):
        (tmp_path / folder).mkdir()
    rng = np.random.default_rng(0)
    for name, target in (("a b.png", "t1"), ("c.png", "t2"), ("unpaired.png", None)):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "in" / name)
        if target:
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / target / name)
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--run",
            str(run),
            "--inputs",
            str(tmp_path / "in"),
            "--targets",
            str(tmp_path / "t1"),
            "--targets",
            str(tmp_path / "t2"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(2 pairs)" in result.output
    ssim = [line.split() for line in result.output.splitlines() if line.startswith("SSIM")]
    assert len(ssim) == 1 and all(-1 <= float(v) <= 1 for v in ssim[0][1:]), result.output
    asked = CliRunner().invoke(
        main,
        ["eval", "--run", str(run), "--inputs", str(tmp_path / "in"), "--targets", str(tmp_path / "t1")]
        + ["--metrics", "ssim,fid"],
    )
    assert asked.exit_code == 2 and "fid need --data PATH" in asked.output, "no metric asked is dropped"


def test_eval_needs_one_source_of_pairs(pix2pix_run):
    result = CliRunner().invoke(main, ["eval", "--run", str(pix2pix_run[0])])
    assert result.exit_code != 0 and "either --aligned" in result.output
