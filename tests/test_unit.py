"""UNIT: shared latent layers, its losses, the latent space from Python, training, resuming and exports."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import TINY_SIZE, assert_resuming_changes_nothing, build_task, random_batch, tiny_overrides
from PIL import Image

from translate import Translator
from translate.api import resolve_config, train
from translate.catalog.demo import make_demo_dataset
from translate.cli import main
from translate.config import build_config
from translate.engine.checkpoint import load_model_checkpoint
from translate.engine.optimizers import build_optimizer_groups, unique_parameters
from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE
from translate.inference import load_model
from translate.registry import TASKS
from translate.tasks.base import Update
from translate.tasks.unit import latent_kl

LATENT = 4 * 4  # the tiny preset's base_channels x 4


def numel(parameters) -> int:
    return sum(p.numel() for p in parameters)


def images(n: int = 2, channels: int = 3, height: int = TINY_SIZE, width: int = TINY_SIZE) -> torch.Tensor:
    return torch.rand(n, channels, height, width) * 2 - 1


# ---------------------------------------------------------------- shared latent layers


def test_the_innermost_blocks_of_both_domains_are_the_same_modules():
    task = build_task("unit")
    assert task.encoder_a.blocks[-1] is task.encoder_b.blocks[-1]
    assert task.decoder_a.blocks[0] is task.decoder_b.blocks[0]
    assert task.encoder_a.blocks[-2] is not task.encoder_b.blocks[-2]
    assert task.decoder_a.blocks[1] is not task.decoder_b.blocks[1]
    assert task.encoder_a.stem is not task.encoder_b.stem and task.decoder_a.head is not task.decoder_b.head

    unshared = build_task("unit", share_layers=0)
    for a, b in [(unshared.encoder_a, unshared.encoder_b), (unshared.decoder_a, unshared.decoder_b)]:
        assert all(x is not y for x, y in zip(a.blocks, b.blocks))

    everything = build_task("unit", share_layers=4)
    assert all(x is y for x, y in zip(everything.encoder_a.blocks, everything.encoder_b.blocks))
    with pytest.raises(ConfigError, match="share_layers must be between 0 and num_res"):
        build_task("unit", share_layers=5)


def test_a_shared_block_is_one_set_of_parameters_in_the_optimizer_and_stored_under_both_names():
    task = build_task("unit")
    groups = task.optimizer_groups()
    built = build_optimizer_groups(groups, task.default_config["optim"], {"lr": 1e-4, "betas": (0.5, 0.999)})
    shared = numel(task.encoder_a.blocks[-1].parameters()) + numel(task.decoder_a.blocks[0].parameters())
    listed = numel(p for m in groups["generator"] for p in m.parameters())
    assert shared > 0
    assert numel(built["generator"].parameters) == listed - shared
    assert len(built["generator"].parameters) == len(unique_parameters(groups["generator"]))
    keys = task.state_dict()
    name = "blocks.3.conv_block.1.weight"  # the shared last encoder block's first conv
    assert torch.equal(keys[f"a2b.encoder.{name}"], keys[f"b2a.encoder.{name}"])


def test_a_shared_block_learns_from_both_domains_and_an_unshared_one_from_its_own():
    torch.manual_seed(0)
    task = build_task("unit").eval()  # no noise: the same loss twice gives the same gradient
    a, b = images(), images()
    shared, own_a = task.encoder_a.blocks[-1], task.encoder_a.blocks[0]

    def weight_grads(loss: torch.Tensor, block: torch.nn.Module) -> list[torch.Tensor | None]:
        task.zero_grad(set_to_none=True)
        loss.backward()
        return [p.grad for p in block.parameters() if p.ndim > 1]

    def recon(x: torch.Tensor, domain: str) -> torch.Tensor:
        return F.l1_loss(task.decode(task.encode(x, domain), domain), x)

    from_a = weight_grads(recon(a, "A"), shared)
    from_b = weight_grads(recon(b, "B"), shared)
    from_both = weight_grads(recon(a, "A") + recon(b, "B"), shared)
    assert all(g.abs().sum() > 0 for g in from_a + from_b)
    assert all(not torch.allclose(ga, gb) for ga, gb in zip(from_a, from_b))
    for ga, gb, g in zip(from_a, from_b, from_both):
        torch.testing.assert_close(g, ga + gb)
    assert all(g is None for g in weight_grads(recon(b, "B"), own_a)), "B's path skips A's own blocks"
    assert all(g.abs().sum() > 0 for g in weight_grads(recon(a, "A"), own_a))


# ---------------------------------------------------------------- losses


class Returns(torch.nn.Module):
    """A stand-in network that ignores its input and returns ``value`` (for exact loss checks)."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value


def test_the_kl_terms_are_the_mean_square_of_the_latent_means():
    assert latent_kl(torch.tensor([[1.0, -2.0], [3.0, 0.0]])).item() == 3.5
    task = build_task("unit")
    batch = random_batch("unit")
    latent = (2, LATENT, TINY_SIZE // 4, TINY_SIZE // 4)
    task.a2b.encoder, task.b2a.encoder = Returns(torch.zeros(latent)), Returns(torch.full(latent, 2.0))
    losses = task.generator_losses(batch, task(batch))
    assert losses["kl"].item() == 0 + 4
    # a's code found in fake_b by B's encoder (4), b's in fake_a by A's (0)
    assert losses["cycle_kl"].item() == 4 + 0


def test_reconstruction_and_cycle_terms_vanish_exactly_when_each_decoder_gives_back_its_domain():
    task = build_task("unit")
    batch = random_batch("unit")
    losses = task.generator_losses(batch, task(batch))
    assert losses["recon"] > 0 and losses["cycle"] > 0
    task.b2a.decoder, task.a2b.decoder = Returns(batch["A"]), Returns(batch["B"])  # decoders of A and B
    losses = task.generator_losses(batch, task(batch))
    assert losses["recon"].item() == 0 and losses["cycle"].item() == 0
    task.b2a.decoder = Returns(batch["B"])  # A's decoder now draws B's images: A's terms are |b - a|
    losses = task.generator_losses(batch, task(batch))
    assert losses["recon"].item() == losses["cycle"].item() == F.l1_loss(batch["B"], batch["A"]).item()


def test_the_generator_adversarial_term_sums_the_scales_of_both_discriminators():
    torch.manual_seed(0)
    task = build_task("unit")
    batch = random_batch("unit")
    outputs = task(batch)
    expected = sum(
        ((p - 1) ** 2).mean()
        for d, fake in ((task.d_b, "fake_b"), (task.d_a, "fake_a"))
        for p in d(outputs[fake])
    )
    assert len(task.d_a(batch["A"])) == 3
    torch.testing.assert_close(task.generator_losses(batch, outputs)["adv"], expected)


def test_the_losses_follow_the_papers_wiring_through_the_latent_means_in_eval_mode():
    torch.manual_seed(0)
    task = build_task("unit").eval()
    batch = random_batch("unit")
    a, b = batch["A"], batch["B"]
    out = task(batch)
    assert torch.equal(out["mu_a"], task.encode(a, "A")) and torch.equal(out["z_a"], out["mu_a"])
    assert torch.equal(out["fake_b"], task.a2b(a)) and torch.equal(out["fake_a"], task.b2a(b))
    losses = task.generator_losses(batch, out)
    expected = {
        "recon": F.l1_loss(task.decode(task.encode(a, "A"), "A"), a)
        + F.l1_loss(task.decode(task.encode(b, "B"), "B"), b),
        "kl": out["mu_a"].square().mean() + out["mu_b"].square().mean(),
        "cycle": F.l1_loss(task.b2a(task.a2b(a)), a) + F.l1_loss(task.a2b(task.b2a(b)), b),
        "cycle_kl": task.encode(task.a2b(a), "B").square().mean()
        + task.encode(task.b2a(b), "A").square().mean(),
    }
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value, msg=name)


def test_codes_are_sampled_around_the_means_while_training_only():
    torch.manual_seed(0)
    task = build_task("unit").train()
    batch = random_batch("unit")
    first, second = task(batch), task(batch)
    assert torch.equal(first["mu_a"], second["mu_a"]), "the encoder itself is deterministic"
    noise = first["z_a"] - first["mu_a"]
    assert abs(noise.mean().item()) < 0.1 and abs(noise.std().item() - 1) < 0.1
    assert torch.equal(first["fake_b"], task.decode(first["z_a"], "B")), "translations decode the code"
    assert not torch.equal(first["fake_b"], second["fake_b"])
    a = batch["A"]
    assert torch.equal(task.a2b(a), task.a2b(a)), "exports decode the mean, in any mode"
    task.eval()
    assert torch.equal(task(batch)["fake_b"], task(batch)["fake_b"])


def test_without_cycle_weights_the_cycle_passes_are_left_out():
    task = build_task("unit")
    batch = random_batch("unit")
    task.set_loss_weights({"cycle": 0.0})
    assert set(task.generator_losses(batch, task(batch))) == {"adv", "recon", "kl", "cycle_kl"}
    task.set_loss_weights({"cycle": 0.0, "cycle_kl": 0.0})
    assert set(task.generator_losses(batch, task(batch))) == {"adv", "recon", "kl"}
    assert "rec_A" in task.visuals(batch)


def test_the_papers_weights_optimizer_and_schedule():
    unit = TASKS.get("unit")
    assert unit.known_loss_weights() == {
        "adv": 1.0,
        "recon": 10.0,
        "kl": 0.01,
        "cycle": 10.0,
        "cycle_kl": 0.01,
        "gp": 10.0,
    }
    config = build_config({"task": "unit"}, unit.default_config)
    assert (config.train.lr, config.train.betas, config.train.batch_size) == (1e-4, [0.5, 0.999], 1)
    assert (config.train.schedule, config.train.step_size, config.train.gamma) == ("step", 100_000, 0.5)
    assert config.train.init == "kaiming" and config.model["adversarial_loss"] == "lsgan"
    task = build_task("unit")
    built = build_optimizer_groups(task.optimizer_groups(), config.optim, {"lr": 1e-4, "betas": (0.5, 0.999)})
    for group in built.values():
        defaults = group.optimizer.defaults
        assert type(group.optimizer) is torch.optim.Adam
        assert (defaults["lr"], defaults["betas"], defaults["weight_decay"]) == (1e-4, (0.5, 0.999), 1e-4)
    assert task.schedule() == [Update("discriminator"), Update("generator", through_generator=True)]
    task.set_loss_weights({"adv": 0.0})
    assert task.schedule() == [Update("generator", through_generator=True)]


# ---------------------------------------------------------------- networks and the latent space


def test_full_size_networks_have_the_reference_sizes():
    config = build_config(TASKS.get("unit").default_config)
    task = TASKS.build({"name": "unit", **config.model})
    # One of the authors' VAEGen: 5,385,856 (encoder) + 5,754,627 (decoder); two of them, less the shared
    # encoder and decoder block (590,080 x 2 each).
    assert numel(task.encoder_a.parameters()) == 5_385_856
    assert numel(task.decoder_a.parameters()) == 5_754_627
    assert numel(unique_parameters([task.a2b, task.b2a])) == 2 * 11_140_483 - 2 * 1_180_160 == 19_920_646
    assert numel(task.d_a.parameters()) == 3 * 2_764_737 == 8_294_211


def test_latent_shapes_channels_and_domain_names():
    task = build_task("unit", in_channels=1, out_channels=3, domains=["sketch", "photo"]).eval()
    x = images(2, 1, 32, 36)  # H and W: any multiples of 4
    z = task.encode(x, "A")
    assert z.shape == (2, LATENT, 8, 9)
    assert task.decode(z, "B").shape == (2, 3, 32, 36) and task.decode(z, "A").shape == (2, 1, 32, 36)
    assert torch.equal(task.encode(x, "sketch"), z)
    assert torch.equal(task.a2b(x), task.decode(task.encode(x, "A"), "B"))
    y = images(2, 3, 32, 36)
    assert torch.equal(task.b2a(y), task.decode(task.encode(y, "photo"), "sketch"))
    assert task.a2b.size_multiple == 4 and task.encoder_a.size_multiple == 4
    with pytest.raises(ConfigError, match="unknown domain 'C'.*sketch.*photo"):
        task.encode(x, "C")
    exports = task.exports()
    assert {k: (e.kind, e.module, e.in_channels, e.out_channels) for k, e in exports.items()} == {
        "a2b": (IMAGE_TO_IMAGE, "a2b", 1, 3),
        "b2a": (IMAGE_TO_IMAGE, "b2a", 3, 1),
    }
    assert exports["b2a"].options == {"direction": "b2a", "source": "photo", "target": "sketch"}


def test_a_little_training_makes_the_round_trip_through_the_latent_space_reproduce_an_image():
    torch.manual_seed(0)
    task = build_task("unit").eval()
    y, x = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    a = torch.stack([torch.stack([x, y, x * y]), torch.stack([y, -x, 0.5 * x])])  # two smooth images

    def error() -> torch.Tensor:
        return F.l1_loss(task.decode(task.encode(a, "A"), "A"), a)

    optimizer = torch.optim.Adam(unique_parameters(task.optimizer_groups()["generator"]), lr=3e-3)
    before = error().item()
    for _ in range(30):
        optimizer.zero_grad()
        error().backward()
        optimizer.step()
    assert error().item() < 0.5 * before


def test_visuals_are_the_six_columns():
    task = build_task("unit").eval()
    visuals = task.visuals(random_batch("unit", n=3))
    assert list(visuals) == ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
    assert all(v.shape == (3, 3, TINY_SIZE, TINY_SIZE) for v in visuals.values())
    assert torch.equal(visuals["rec_A"], task.b2a(task.a2b(visuals["real_A"])))


# ---------------------------------------------------------------- training, resuming, exports


@pytest.fixture(scope="module")
def data_layer(tmp_path_factory) -> dict:
    root = make_demo_dataset(
        tmp_path_factory.mktemp("data") / "demo", layout="unaligned", num_train=4, num_test=2, size=TINY_SIZE
    )
    return {"data": {"root": str(root), "domains": ["photo", "anime"]}}


@pytest.fixture(scope="module")
def unit_run(data_layer, tmp_path_factory):
    layers = [data_layer, tiny_overrides("unit", steps=2)]
    return train("unit", overrides=layers, run_dir=tmp_path_factory.mktemp("runs") / "unit")


def test_a_run_logs_every_term_with_the_papers_learning_rate(unit_run):
    records = [json.loads(line) for line in (unit_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert record["lr"] == 1e-4
        assert {"G/adv", "G/recon", "G/kl", "G/cycle", "G/cycle_kl", "D/adv"} <= set(record)
    checkpoint = load_model_checkpoint(unit_run)
    assert checkpoint.task == "unit" and checkpoint.task_kwargs["domains"] == ["photo", "anime"]
    assert set(checkpoint.exports) == {"a2b", "b2a"}
    name = "blocks.0.conv_block.1.weight"  # the shared first decoder block
    assert torch.equal(checkpoint.weights[f"a2b.decoder.{name}"], checkpoint.weights[f"b2a.decoder.{name}"])


def test_resuming_changes_nothing(data_layer, tmp_path):
    # The step schedule halves the LR after 2 steps here, so the resumed half runs at the lower LR.
    layers = [data_layer, tiny_overrides("unit", steps=4, checkpoint_every=100), {"train": {"step_size": 2}}]
    assert_resuming_changes_nothing(resolve_config("unit", overrides=layers), tmp_path)


def test_the_exports_load_as_translators_in_both_directions(unit_run):
    task = load_model(unit_run)  # the whole model: its latent space from Python
    assert not task.training
    assert task.encoder_a.blocks[-1] is task.encoder_b.blocks[-1], "loading keeps the blocks shared"
    x = images(2)
    a2b = Translator.from_run(unit_run, direction="a2b")
    b2a = Translator.from_run(unit_run, direction="b2a")
    assert a2b.size_multiple == 4 and (a2b.in_channels, a2b.out_channels) == (3, 3)
    torch.testing.assert_close(a2b(x), task.decode(task.encode(x, "photo"), "anime"))
    torch.testing.assert_close(b2a(x), task.decode(task.encode(x, "anime"), "photo"))
    assert not torch.equal(a2b(x), b2a(x))
    odd = torch.rand(1, 3, 37, 53) * 2 - 1  # padded to multiples of 4, cropped back
    assert a2b(odd).shape == odd.shape and a2b(odd).abs().max() <= 1


def test_apply_and_list_on_the_command_line(unit_run, tmp_path):
    Image.new("RGB", (50, 30), "red").save(tmp_path / "photo.png")
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "apply",
            str(tmp_path / "photo.png"),
            "--run",
            str(unit_run),
            "--out",
            str(tmp_path / "out"),
            "--direction",
            "b2a",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "photo.png").size == (50, 30)
    result = runner.invoke(main, ["list", "tasks"], catch_exceptions=False)
    assert result.exit_code == 0 and "unit" in result.output
