"""Every task: a generator step and a discriminator step on a synthetic batch, with every adversarial loss."""

import pytest
import torch
from conftest import TINY_MODELS, build_task, random_batch

from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE, Export
from translate.registry import LOSSES, TASKS

TASK_NAMES = [name for name in TASKS.names() if name in TINY_MODELS]


def test_every_registered_task_has_a_tiny_preset():
    assert set(TASKS.names()) == set(TINY_MODELS)


@pytest.mark.parametrize("loss", LOSSES.names())
@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_generator_and_discriminator_steps(task_name, loss):
    torch.manual_seed(0)
    task = build_task(task_name, adversarial_loss=loss)
    batch = random_batch(task_name)
    groups = task.optimizer_groups()
    generator_params = [p for m in groups["generator"] for p in m.parameters()]
    discriminator_params = [p for m in groups["discriminator"] for p in m.parameters()]

    outputs = task(batch)
    g_losses = task.generator_losses(batch, outputs)
    assert {"adv"} <= set(g_losses) <= set(task.loss_weights)
    assert g_losses.keys() == task.losses("generator", batch, outputs).keys()
    assert all(v.dim() == 0 and torch.isfinite(v) for v in g_losses.values())
    sum(g_losses.values()).backward()
    assert all(p.grad is not None for p in generator_params), "every generator weight learns from G's loss"

    for p in discriminator_params:
        p.grad = None
    d_losses = task.discriminator_losses(batch, outputs)
    assert ("gp" in d_losses) == (loss == "wgangp")
    assert all(v.dim() == 0 and torch.isfinite(v) for v in d_losses.values())
    for p in generator_params:
        p.grad = None
    sum(d_losses.values()).backward()
    assert all(p.grad is not None for p in discriminator_params)
    assert all(p.grad is None for p in generator_params), "D's loss must not reach the generator"


@pytest.mark.parametrize(
    "task_name",
    [n for n in TASK_NAMES if TASKS.get(n).dataset in ("aligned", "unaligned") and n != "munit"],
)
def test_exports_name_image_to_image_networks(task_name):
    task = build_task(task_name).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    exports = task.exports()
    assert exports and all(e.kind == IMAGE_TO_IMAGE for e in exports.values())
    for name, export in exports.items():
        assert export.options["direction"] == name
        assert Export.from_dict(export.to_dict()) == export
        y = task.get_submodule(export.module)(x)
        assert y.shape == x.shape and y.abs().max() <= 1


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_visuals_are_image_batches(task_name):
    task = build_task(task_name).eval()
    visuals = task.visuals(random_batch(task_name, n=3))
    assert len(visuals) >= 3
    assert all(v.shape[0] == 3 and v.dim() == 4 for v in visuals.values())


def test_pix2pix_losses_have_the_papers_weights():
    assert TASKS.get("pix2pix").known_loss_weights()["l1"] == 100.0


def test_cyclegan_weights_and_identity_switch():
    weights = TASKS.get("cyclegan").known_loss_weights()
    assert weights["cycle"] == 10.0 and weights["identity"] == 0.5 * weights["cycle"]
    task = build_task("cyclegan")
    batch = random_batch("cyclegan")
    assert "identity" in task.generator_losses(batch, task(batch))
    task.set_loss_weights({"identity": 0.0})
    assert task.loss_weights["cycle"] == 10.0
    assert "identity" not in task.generator_losses(batch, task(batch))


def test_unknown_loss_weight_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown loss weight.*l2.*Known: adv, l1, gp"):
        build_task("pix2pix").set_loss_weights({"l2": 1.0})


def test_cyclegan_discriminator_sees_pooled_fakes_and_pool_state_round_trips():
    task = build_task("cyclegan", pool_size=3)
    batch = random_batch("cyclegan")
    for _ in range(3):
        task.discriminator_losses(batch, task(batch))
    state = task.training_state()
    assert state["pool_a/images"].shape[0] == 3
    fresh = build_task("cyclegan", pool_size=3)
    fresh.load_training_state(state)
    assert torch.equal(fresh.training_state()["pool_b/images"], state["pool_b/images"])
