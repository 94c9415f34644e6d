"""The kinds of model: one object each, the only place outside the tasks that knows a kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import translate.components  # noqa: F401  (fills the registries)
from translate.errors import CheckpointError
from translate.exports import EXPORT_KINDS
from translate.kinds import KINDS, kind_of, kinds_with
from translate.kinds.base import HeldOut
from translate.registry import TASKS

PACKAGE = Path(translate.__file__).parent
NAMES = [
    *EXPORT_KINDS,
    "IMAGE_TO_IMAGE",
    "IMAGE_AND_TARGET_TO_IMAGE",
    "NOISE_TO_IMAGE",
    "IMAGE_AND_STYLE_TO_IMAGE",
]
HOMES = ("exports.py", "kinds/", "tasks/")
"""Where a kind may be named: the contract, the kinds' own files, and the tasks that declare exports."""


def test_every_export_kind_has_one_kind_object():
    assert set(KINDS) == set(EXPORT_KINDS)
    assert kinds_with("image") == ("image_to_image", "image_and_target_to_image", "image_and_style_to_image")
    assert kinds_with("noise") == ("noise_to_image",)
    assert kinds_with("style") == ("image_and_style_to_image",)
    with pytest.raises(CheckpointError, match="unknown kind of model 'text_to_image'"):
        kind_of("text_to_image")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_code_outside_the_kinds_home_names_a_kind(path):
    relative = path.relative_to(PACKAGE).as_posix()
    if relative.startswith(HOMES):
        return
    text = path.read_text()
    found = [name for name in NAMES if re.search(rf"\b{name}\b", text)]
    assert not found, f"{relative} names {found}: reach a kind through translate.kinds.kind_of"


DATASET_KWARGS = {  # what each task's dataset would give it
    "stargan": {"labels": {"names": ["a", "b"], "kind": "attributes", "groups": []}, "image_size": 32},
    "dcgan": {"image_size": 32, "out_channels": 3},
}
SIZES = {"pix2pix": 256}
"""The image side each task's default networks need (U-Net-256: eight halvings)."""


@pytest.mark.parametrize("task_name", ["pix2pix", "cyclegan", "stargan", "dcgan", "munit"])
def test_example_inputs_run_through_every_export_of_each_task(task_name):
    """The benchmark's and the exported files' random inputs fit the networks they are made for."""
    from translate.api import resolve_config

    model = resolve_config(task_name).model
    task = TASKS.build({"name": task_name, **model, **DATASET_KWARGS.get(task_name, {})}).eval()
    for export in task.exports().values():
        kind = kind_of(export)
        side = SIZES.get(task_name, 32)
        inputs = kind.example_inputs(export, 2, side, side, torch.Generator().manual_seed(0))
        assert len(inputs) == len(kind.network_inputs(export))
        with torch.no_grad():
            out = task.get_submodule(export.module)(*inputs)
        assert out.shape[:2] == (2, export.out_channels) and torch.isfinite(out).all()


def test_held_out_batches_skip_a_repeated_file_and_keep_the_order():
    items = [{"A": torch.full((1, 2, 2), float(i % 3)), "path_A": f"a{i % 3}.png"} for i in range(5)]
    batches = list(HeldOut(items, range(5)).batches(["A"], 2))
    assert [b["A"].shape[0] for b in batches] == [2, 1]
    assert torch.cat([b["A"] for b in batches])[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    every = list(HeldOut(items, range(5)).batches(["A"], 2, distinct=False))
    assert sum(b["A"].shape[0] for b in every) == 5


def test_plans_read_pairs_domains_and_labels_by_the_items_keys():
    image, target, noise, style = (KINDS[name] for name in EXPORT_KINDS)
    export = type("E", (), {"options": {"direction": "b2a"}})()
    assert image.plan("b2a", export, {"A": 0, "B": 0}).inputs == "B"
    assert image.plan("x", export, {"input": 0, "target": 0}).paired
    assert target.plan("t", export, {"image": 0}) is None
    assert target.plan("t", export, {"image": 0, "label": 0}).reference == "image"
    assert noise.plan("sample", export, {"image": 0}).inputs is None
    assert style.plan("b2a", export, {"A": 0, "B": 0}).reference == "A"
