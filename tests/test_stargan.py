"""StarGAN: the published networks, its losses, labels from attribute files and domain folders, training
with exact resume, and translation to a target from Python and the command line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_LABELS, assert_resuming_changes_nothing, build_task, random_batch, tiny_overrides
from PIL import Image

from translate.api import resolve_config, train
from translate.cli import main
from translate.errors import ConfigError, DataError
from translate.exports import IMAGE_AND_TARGET_TO_IMAGE
from translate.inference import Translator
from translate.labels import LabelSpace
from translate.registry import DISCRIMINATORS, GENERATORS

ATTRIBUTES = ["Black_Hair", "Blond_Hair", "Eyeglasses", "Male", "Young"]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def write_attribute_data(root, rows: int = 12, bad_line: str | None = None):
    """A CelebA-like folder: ``images/`` of 40 x 48 faces and ``list_attr_celeba.txt`` (1 / -1 values)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    lines = [str(rows), " ".join(ATTRIBUTES)]
    for i in range(rows):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(root / "images" / name)
        hair = [1, -1] if i % 2 else [-1, 1]
        values = hair + [-1, 1 if i % 3 else -1, 1]
        lines.append(f"{name} " + " ".join(f"{v:2d}" for v in values))
    if bad_line is not None:
        lines[5] = bad_line
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def tiny_config(root, steps: int = 4, **data):
    layer = tiny_overrides("stargan", steps, n_critic=2)
    layer["data"].update({"root": str(root), "attributes": ["Black_Hair", "Blond_Hair", "Male"], **data})
    return resolve_config("stargan", overrides=[layer])


# ----------------------------------------------------------------------------------------- networks
def test_generator_and_discriminator_have_the_published_sizes():
    assert count(GENERATORS.build({"name": "stargan", "num_labels": 5})) == 8_430_528
    discriminator = DISCRIMINATORS.build({"name": "stargan", "image_size": 128, "num_classes": 5})
    assert count(discriminator) == 44_762_048
    realness, logits = discriminator(torch.zeros(2, 3, 128, 128))
    assert realness.shape == (2, 1, 2, 2) and logits.shape == (2, 5)


def test_generator_follows_the_target_labels():
    torch.manual_seed(0)
    generator = GENERATORS.build({"name": "stargan", "num_labels": 3, "base_channels": 8, "num_blocks": 1})
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    a = generator(x, torch.tensor([[1.0, 0, 0]] * 2))
    b = generator(x, torch.tensor([[0.0, 1, 0]] * 2))
    assert a.shape == x.shape and not torch.allclose(a, b)


def test_a_class_head_is_an_option_of_the_patchgan_too():
    discriminator = DISCRIMINATORS.build(
        {"name": "patchgan", "num_classes": 4, "image_size": 64, "norm": "none"}
    )
    realness, logits = discriminator(torch.zeros(3, 3, 64, 64))
    assert realness.shape == (3, 1, 6, 6) and logits.shape == (3, 4)
    assert isinstance(DISCRIMINATORS.build({"name": "patchgan"})(torch.zeros(1, 3, 64, 64)), torch.Tensor)


def test_critic_depth_must_fit_the_image_size():
    with pytest.raises(ConfigError, match="multiples of 64"):
        DISCRIMINATORS.build({"name": "stargan", "image_size": 96, "num_layers": 6})


# ----------------------------------------------------------------------------------------- losses
def test_classification_loss_is_bce_per_attribute_or_ce_over_domains():
    attributes = build_task("stargan")
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert attributes.classification_loss(torch.zeros(2, 3), labels).item() == pytest.approx(3 * math.log(2))
    assert attributes.classification_loss(labels * 40 - 20, labels).item() < 1e-6
    domains = build_task("stargan", labels={"names": ["a", "b", "c"], "kind": "domains"})
    assert domains.classification_loss(torch.zeros(2, 3), labels).item() == pytest.approx(math.log(3))


def test_losses_the_papers_weights_and_schedule():
    task = build_task("stargan")
    assert task.loss_weights == {"adv": 1.0, "cls": 1.0, "rec": 10.0, "gp": 10.0, "r1": 0.0}
    assert [(u.group, u.repeats) for u in task.schedule(5)] == [("discriminator", 5), ("generator", 1)]
    batch = random_batch("stargan", n=3)
    outputs = task(batch)
    assert sorted(outputs["target"].tolist()) == sorted(batch["label"].tolist()), (
        "targets: the batch's labels"
    )
    assert set(task.generator_losses(batch, outputs)) == {"adv", "cls", "rec"}
    assert set(task.discriminator_losses(batch, outputs)) == {"adv", "cls", "gp"}


def test_a_second_pass_on_the_same_batch_reuses_its_targets():
    """yunjey's train(): one label_trg per iteration, for the critic and the generator update alike."""
    task = build_task("stargan")
    batch = random_batch("stargan", n=6)
    torch.manual_seed(0)
    with torch.no_grad():
        first = task(batch)["target"]  # the critic update's pass
    again = task(batch)["target"]  # the generator update's pass with gradients, on the same batch
    assert torch.equal(first, again)
    other = dict(batch, label=batch["label"].clone())  # the next batch (same values, new tensor)
    torch.manual_seed(1)
    assert not torch.equal(task(other)["target"], first), "a new batch draws new targets"


def test_the_penalty_sums_the_critics_patch_map_as_the_reference(monkeypatch):
    import translate.tasks.stargan as module

    task = build_task("stargan")
    assert task.gp_reduction == "sum"
    assert build_task("stargan", gp_reduction="mean").gp_reduction == "mean"
    with pytest.raises(ConfigError, match="model.gp_reduction must be one of mean, sum"):
        build_task("stargan", gp_reduction="max")
    batch = random_batch("stargan", n=2)
    outputs = task(batch)
    seen = []
    original = module.gradient_penalty
    monkeypatch.setattr(module, "gradient_penalty", lambda *args: seen.append(args[-1]) or original(*args))
    task.discriminator_losses(batch, outputs)
    assert seen == ["sum"]


def test_reconstruction_goes_back_through_the_original_labels():
    task = build_task("stargan")
    batch = random_batch("stargan", n=2)
    seen = []
    original = task.generator.forward
    task.generator.forward = lambda images, labels: seen.append(labels) or original(images, labels)
    task.generator_losses(batch, {"fake": batch["image"], "target": batch["label"].flip(0)})
    assert torch.equal(seen[-1], batch["label"])


def test_sample_grid_has_the_input_then_one_column_per_label():
    task = build_task("stargan").eval()
    visuals = task.visuals(random_batch("stargan", n=3))
    assert list(visuals) == ["input", "to Black_Hair", "to Blond_Hair", "flip Male"]
    assert all(v.shape == (3, 3, 32, 32) for v in visuals.values())


# ----------------------------------------------------------------------------------------- labels
def test_exclusive_groups_stay_one_hot_and_unnamed_labels_are_kept():
    space = LabelSpace.from_dict(TINY_LABELS)
    source = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    target = space.apply(source, space.parse_target("Blond_Hair=1"))
    assert target.tolist() == [[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
    assert space.apply(source, {"Male": 0}).tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    with pytest.raises(ConfigError, match="exclude each other"):
        space.parse_target("Black_Hair=1,Blond_Hair=1")
    with pytest.raises(ConfigError, match="did you mean Blond_Hair.*knows: Black_Hair, Blond_Hair, Male"):
        space.parse_target("Blonde_Hair=1")
    logits = torch.tensor([[2.0, 3.0, -1.0], [-2.0, -1.0, 4.0]])
    assert space.from_logits(logits).tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def test_attribute_file_gives_0_1_labels_of_the_chosen_attributes(tmp_path):
    from translate.data.labelled import LabelledDataset

    config = tiny_config(write_attribute_data(tmp_path / "celeba"), test_images=2)
    dataset = LabelledDataset.from_config(config.data, train=True)
    assert len(dataset) == 10 and len(LabelledDataset.from_config(config.data, train=False)) == 2
    assert dataset.space.names == ["Black_Hair", "Blond_Hair", "Male"]
    assert dataset.space.groups == [["Black_Hair", "Blond_Hair"]]
    item = dataset[0]
    assert item["image"].shape == (3, 32, 32) and item["label"].tolist() == [0.0, 1.0, 0.0]
    assert dataset[1]["label"].tolist() == [1.0, 0.0, 1.0]


def test_bad_row_and_unknown_attribute_are_one_clear_error(tmp_path):
    from translate.data.labelled import LabelledDataset

    bad = write_attribute_data(tmp_path / "bad", bad_line="000004.jpg 1 -1 1")
    with pytest.raises(DataError, match=r"line 6: 000004.jpg: 3 values for 5 attributes"):
        LabelledDataset.from_config(tiny_config(bad).data)
    good = write_attribute_data(tmp_path / "good")
    with pytest.raises(DataError, match="'Blnd_Hair' is not in .*did you mean Blond_Hair"):
        LabelledDataset.from_config(tiny_config(good, attributes=["Blnd_Hair"]).data)


def test_domain_folders_give_one_of_n_labels(tmp_path):
    from translate.data.labelled import LabelledDataset

    for k, name in enumerate(["neutral", "happy", "angry"]):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (36, 36), (80 * k, 0, 0)).save(tmp_path / name / f"{i}.png")
    dataset = LabelledDataset.from_config(tiny_config(tmp_path, domains=["neutral", "happy", "angry"]).data)
    assert dataset.space == LabelSpace(["neutral", "happy", "angry"], "domains")
    assert [dataset[i]["label"].argmax().item() for i in range(6)] == [0, 0, 1, 1, 2, 2]


# ----------------------------------------------------------------------------------------- training & use
def test_resuming_changes_nothing(tmp_path):
    assert_resuming_changes_nothing(tiny_config(write_attribute_data(tmp_path / "celeba")), tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = write_attribute_data(tmp_path_factory.mktemp("data") / "celeba")
    layer = tiny_overrides("stargan", 2, n_critic=2)
    layer["data"]["attributes"] = ["Black_Hair", "Blond_Hair", "Male"]
    run = tmp_path_factory.mktemp("runs") / "stargan"
    train("stargan", overrides=[{"data": {"root": str(root)}}, layer], run_dir=run)
    return root, run


def test_translator_takes_a_target_and_reads_unnamed_labels_with_the_classifier(trained):
    root, run = trained
    translator = Translator.from_run(run)
    assert translator.labels.names == ["Black_Hair", "Blond_Hair", "Male"]
    image = Image.open(root / "images" / "000001.jpg")
    out = translator(image, target={"Blond_Hair": 1})
    assert out.size == image.size
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    source = translator.estimate_labels(x)
    labels = translator.labels.apply(source, {"Male": 0})
    expected = translator.generator(x, labels)
    assert torch.allclose(translator.translate_tensor(x, target="Male=0"), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="needs a target.*Black_Hair, Blond_Hair, Male"):
        translator(image)
    with pytest.raises(ConfigError, match="not trained on the attribute 'Young'"):
        translator(image, target={"Young": 1})


def test_cli_apply_to_with_and_without_a_labels_file(trained, tmp_path):
    root, run = trained
    runner = CliRunner()

    def apply(out: str, *options: str):
        return runner.invoke(
            main, ["apply", str(root / "images"), "--run", str(run), "--out", str(tmp_path / out), *options]
        )

    result = apply("a", "--to", "Blond_Hair=1,Male=0")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "a" / "images").iterdir())) == 12
    result = apply("b", "--to", "Male=1", "--labels", str(root / "list_attr_celeba.txt"))
    assert result.exit_code == 0, result.output
    result = apply("c", "--to", "Smiling=1")
    assert (
        result.exit_code == 1
        and "Error: this model was not trained on the attribute 'Smiling'" in result.output
    )
    assert not (tmp_path / "c").exists(), "a bad target fails before any image is written"
    result = runner.invoke(main, ["info", str(run)])
    assert (
        "labels:     attributes Black_Hair, Blond_Hair, Male (one of Black_Hair/Blond_Hair)" in result.output
    )
    assert IMAGE_AND_TARGET_TO_IMAGE in result.output


def test_folder_domains_train_and_apply_to_a_domain(tmp_path):
    for k, name in enumerate(["neutral", "happy", "angry"]):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (36, 36), (80 * k, 40 * i, 0)).save(tmp_path / "faces" / name / f"{i}.png")
    layer = tiny_overrides("stargan", 2, n_critic=1)
    train("stargan", overrides=[{"data": {"root": str(tmp_path / "faces")}}, layer], run_dir=tmp_path / "run")
    translator = Translator.from_run(tmp_path / "run")
    assert translator.labels == LabelSpace(["angry", "happy", "neutral"], "domains")  # detected, sorted
    out = translator.apply_folder(
        tmp_path / "faces" / "happy", tmp_path / "out", target="angry", progress=False
    )
    assert len(out) == 3
    with pytest.raises(ConfigError, match="name one target domain"):
        translator(torch.zeros(3, 32, 32), target={"happy": 0})
