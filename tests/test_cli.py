"""The command line: train on the built-in demo data, resume, apply, list, and one-line errors."""

from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner
from PIL import Image

from translate.cli import main

TINY = [
    "--image-size",
    "32",
    "--batch-size",
    "2",
    "--set",
    "data.load_size=36",
    "--set",
    "data.num_workers=0",
    "--set",
    "train.log_every=1",
    "--set",
    "train.checkpoint_every=2",
    "--set",
    "train.sample_every=2",
]
TINY_CYCLEGAN = TINY + [
    "--set",
    "model.generator={name: resnet_6blocks, base_channels: 4}",
    "--set",
    "model.discriminator.base_channels=4",
]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_with_no_data_uses_the_demo_dataset_then_resume_and_apply(in_tmp):
    result = run(
        "train", "cyclegan", "--domains", "photo", "anime", "--steps", "2", "--run-dir", "run", *TINY_CYCLEGAN
    )
    assert result.exit_code == 0, result.output
    assert "run folder: run" in result.output
    assert (in_tmp / "run" / "checkpoints" / "step_0000002" / "model.safetensors").is_file()
    score = result.output.split("paired test scenes: ")[1].splitlines()[0]  # the real demo folder, printed
    scored = run(*shlex.split(score)[1:])
    assert scored.exit_code == 0 and "pairs)" in scored.output, scored.output

    result = run("train", "cyclegan", "--run-dir", "run", "--resume", "--steps", "4")
    assert result.exit_code == 0, result.output
    steps = [json.loads(line)["step"] for line in (in_tmp / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]

    Image.new("RGB", (50, 30), "red").save(in_tmp / "photo.png")
    result = run("apply", "photo.png", "--run", "run", "--out", "out", "--direction", "b2a")
    assert result.exit_code == 0, result.output
    assert Image.open(in_tmp / "out" / "photo.png").size == (50, 30)


def test_train_reads_domain_folders_in_the_current_folder(in_tmp):
    for domain, colour in (("day", "white"), ("night", "black")):
        (in_tmp / domain).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(in_tmp / domain / f"{i}.png")
    result = run(
        "train", "cyclegan", "--domains", "day", "night", "--steps", "1", "--run-dir", "r", *TINY_CYCLEGAN
    )
    assert result.exit_code == 0, result.output
    assert "demo" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "cyclegn"], "unknown task 'cyclegn'. Did you mean 'cyclegan'?"),
        (["train", "cyclegan", "--data-root", "nowhere"], "nowhere"),
        (["train", "cyclegan", "--set", "train.lr_g=1"], "unknown config key train.'lr_g'"),
        (
            ["train", "cyclegan", "--set", "model.generator.name=resnet_99blocks"],
            "unknown generator 'resnet_99blocks'",
        ),
        (["train", "cyclegan", "--resume"], "--resume needs --run-dir"),
        (["apply", "x.png", "--run", "no-such-run"], "no run folder or checkpoint at no-such-run"),
        (["train", "pix2pix", "--config", "missing.yaml"], "config file not found"),
        (["train", "cyclegan", "--set", "optim.critic.lr=1"], "unknown parameter group(s) critic"),
        (["train", "cyclegan", "--set", "loss_weights.cycle=-1"], "loss_weights.cycle must be a number >= 0"),
    ],
)
def test_bad_input_gets_a_one_line_error_and_no_traceback(in_tmp, args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_list_shows_every_kind():
    result = run("list")
    for name in ("pix2pix", "cyclegan", "resnet_9blocks", "unet_256", "patchgan", "lsgan", "wgangp", "hinge"):
        assert name in result.output
    assert "generators:" in run("list", "generators").output


def make_domains(root, names=("day", "night")):
    for domain, colour in zip(names, ("white", "black")):
        (root / domain).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(root / domain / f"{i}.png")


def test_train_finds_the_domain_folders_of_a_data_root_by_itself(in_tmp):
    make_domains(in_tmp / "data")
    result = run("train", "cyclegan", "--data-root", "data", "--steps", "1", "--run-dir", "r", *TINY_CYCLEGAN)
    assert result.exit_code == 0, result.output
    assert load_config(in_tmp / "r")["data"]["domains"] == ["day", "night"]


def test_a_layout_for_another_method_gets_a_suggestion(in_tmp):
    make_domains(in_tmp / "data")
    result = CliRunner().invoke(main, ["train", "pix2pix", "--data-root", "data"])
    assert result.exit_code != 0
    assert (
        "not A|B image pairs (try: translate train cyclegan --data-root data --domains day night)"
        in result.output
    )


@pytest.mark.parametrize(
    "method, dataset, extra",
    [
        (
            "pix2pix",
            "facades",
            [
                "--set",
                "model.generator={name: unet, num_downs: 5, base_channels: 4}",
                "--set",
                "model.discriminator.base_channels=4",
            ],
        ),
        ("cyclegan", "emoji", TINY_CYCLEGAN[len(TINY) :]),
    ],
)
def test_training_starts_on_the_shared_datasets_layout_found_automatically(in_tmp, method, dataset, extra):
    from conftest import SHARED_DATASETS

    if not (SHARED_DATASETS / dataset).is_dir():
        pytest.skip(f"{SHARED_DATASETS / dataset} is absent (real data lives beside the project, not in it)")
    result = run(
        "train",
        method,
        "--data-root",
        str(SHARED_DATASETS / dataset),
        "--steps",
        "1",
        "--run-dir",
        "r",
        *TINY,
        *extra,
    )
    assert result.exit_code == 0, result.output
    assert (in_tmp / "r" / "checkpoints" / "step_0000001").is_dir()


def load_config(run_dir):
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


@pytest.mark.parametrize(
    "size, message", [(128, "--set model.generator.name=unet_128"), (100, "takes multiples of 256")]
)
def test_an_image_size_the_unet_cannot_take_is_a_one_line_error(in_tmp, size, message):
    from translate.catalog.demo import make_demo_dataset

    root = make_demo_dataset(in_tmp / "pairs", layout="aligned", num_train=2, num_test=1, size=32)
    result = CliRunner().invoke(
        main, ["train", "pix2pix", "--data-root", str(root), "--image-size", str(size)]
    )
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_domains_takes_any_number_of_names_and_cyclegan_says_it_takes_two(in_tmp):
    make_domains(in_tmp / "data", names=("day", "night", "dusk"))
    result = CliRunner().invoke(
        main,
        ["train", "cyclegan", "--data-root", "data", "--domains", "day", "night", "dusk", *TINY_CYCLEGAN],
    )
    assert result.exit_code != 0 and "two domains (--domains A B); got 3: day night dusk" in result.output


def test_info_and_eval_read_the_run_itself(in_tmp):
    result = run("train", "cyclegan", "--steps", "1", "--run-dir", "run", *TINY_CYCLEGAN)
    assert result.exit_code == 0, result.output
    result = run("info", "run")
    assert "method:     cyclegan" in result.output and "steps:      1 of 1" in result.output
    assert "a2b      image_to_image (g_ab: 3 -> 3 channels) direction=a2b, source=photo, target=anime" in (
        result.output
    )
    result = run("apply", "x.png", "--run", "run/config.yaml")
    assert result.exit_code == 1 and "is a file, not a run folder" in result.output
    # eval resizes to the image size the model trained at (32) without a flag
    from translate.api import demo_root

    test = demo_root("photo-anime") / "test"
    result = run(
        "eval",
        "--run",
        "run",
        "--inputs",
        str(test / "photo"),
        "--targets",
        str(test / "anime"),
        "--json",
        "scores.json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((in_tmp / "scores.json").read_text())["count"] > 0
