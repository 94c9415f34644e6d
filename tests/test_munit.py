"""MUNIT: the authors' networks and parameter counts, the losses' wiring, styles, training, resuming, the
image + style export and its kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_SIZE, assert_resuming_changes_nothing, tiny_overrides

from translate import Translator
from translate.api import resolve_config, train
from translate.catalog.demo import make_demo_dataset
from translate.config import build_config
from translate.config_files import load_yaml
from translate.engine.checkpoint import load_model_checkpoint
from translate.engine.optimizers import build_optimizer_groups
from translate.errors import ConfigError
from translate.evaluation import score_run
from translate.exports import EXPORT_KINDS, IMAGE_AND_STYLE_TO_IMAGE, Export
from translate.generators.munit import MunitGenerator, MunitTranslator
from translate.inference.model import load_export, load_model
from translate.kinds import kind_of, kinds_with
from translate.kinds.style import style_codes
from translate.registry import DISCRIMINATORS, GENERATORS, TASKS
from translate.tasks.base import Update
from translate.tasks.munit import SAMPLE_STYLES

TINY_CONFIG = Path(__file__).parents[1] / "configs" / "munit_tiny.yaml"
TINY = load_yaml(TINY_CONFIG)["model"]
"""The tiny networks of configs/munit_tiny.yaml: base width 4, MLP 16 wide, 2 residual blocks."""
CONTENT = 4 * 4  # the tiny content code's channels: base_channels x 4


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def images(n: int = 2, channels: int = 3, height: int = TINY_SIZE, width: int = TINY_SIZE) -> torch.Tensor:
    return torch.rand(n, channels, height, width) * 2 - 1


def build_task(**model: object):
    config = build_config(TASKS.get("munit").default_config, {"model": TINY}, {"model": model})
    torch.manual_seed(0)
    return TASKS.build({"name": "munit", **config.model})


def batch(n: int = 2) -> dict:
    return {"A": images(n), "B": images(n), "path_A": ["a"] * n, "path_B": ["b"] * n}


# ---------------------------------------------------------------- the authors' networks


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def authors_adain_gen(input_dim=3, dim=64, style_dim=8, n_downsample=2, n_res=4, mlp_dim=256) -> int:
    """NVlabs/MUNIT ``AdaINGen``'s parameters, summed over its layer list (``networks.py``)."""
    style = (
        conv(input_dim, dim, 7) + conv(dim, 2 * dim, 4) + conv(2 * dim, 4 * dim, 4)
    )  # StyleEncoder(4, ...)
    style += 2 * conv(4 * dim, 4 * dim, 4) + conv(4 * dim, style_dim, 1)
    content, width = conv(input_dim, dim, 7), dim
    for _ in range(n_downsample):
        content, width = content + conv(width, 2 * width, 4), 2 * width
    res_blocks = n_res * 2 * conv(width, width, 3)  # no parameters in IN (affine=False) nor AdaIN
    decoder = res_blocks
    for _ in range(n_downsample):
        decoder, width = (
            decoder + conv(width, width // 2, 5) + 2 * (width // 2),
            width // 2,
        )  # conv + LayerNorm
    decoder += conv(width, input_dim, 7)
    adain = n_res * 2 * 2 * (dim * 2**n_downsample)  # mean and std of each AdaIN layer
    mlp = linear(style_dim, mlp_dim) + linear(mlp_dim, mlp_dim) + linear(mlp_dim, adain)
    return style + content + res_blocks + decoder + mlp


def authors_ms_image_dis(input_dim=3, dim=64, n_layer=4, num_scales=3) -> int:
    """NVlabs/MUNIT ``MsImageDis``'s parameters (``norm: none``), summed over its layer list."""
    per_scale, width = conv(input_dim, dim, 4), dim
    for _ in range(n_layer - 1):
        per_scale, width = per_scale + conv(width, 2 * width, 4), 2 * width
    return num_scales * (per_scale + conv(width, 1, 1))


def test_full_size_networks_have_the_authors_parameter_counts():
    assert authors_adain_gen() == 15_026_187 and authors_ms_image_dis() == 8_271_171
    generator = GENERATORS.build("munit")
    assert numel(generator) == 15_026_187
    parts = (generator.content_encoder, generator.style_encoder, generator.decoder, generator.decoder.mlp)
    assert [numel(p) for p in parts] == [5_385_856, 2_764_936, 6_875_395, 1_120_768]
    assert generator.decoder.num_adain_params == 4096
    config = build_config(TASKS.get("munit").default_config)
    task = TASKS.build({"name": "munit", **config.model})
    assert numel(task.d_a) == numel(DISCRIMINATORS.build(config.model["discriminator"])) == 8_271_171
    assert numel(task.a2b) == numel(task.b2a) == 15_026_187  # A's content + B's style and decoder, and back
    assert numel(task) == 2 * 15_026_187 + 2 * 8_271_171


def test_forward_shapes_of_the_parts():
    generator = GENERATORS.build({"name": "munit", **TINY["generator"], "in_channels": 1, "out_channels": 3})
    x = images(2, 1, 32, 40)  # H and W: any multiples of 4 (and >= 16 for the style encoder)
    content, style = generator.encode(x)
    assert content.shape == (2, CONTENT, 8, 10) and style.shape == (2, 8, 1, 1)
    assert generator.decode(content, style).shape == (2, 3, 32, 40)
    assert generator(x).shape == (2, 3, 32, 40) and generator(x).abs().max() <= 1
    assert generator.size_multiple == 4
    maps = DISCRIMINATORS.build({"name": "multiscale", "discriminator": {"name": "munit_patch"}})(
        images(1, 3, 64, 64)
    )
    assert [m.shape for m in maps] == [(1, 1, 4, 4), (1, 1, 2, 2), (1, 1, 1, 1)]  # 4 halvings of 64, 32, 16


def test_the_adain_layers_take_the_mlps_output_in_the_authors_order():
    decoder = build_task().a2b.decoder.eval()
    seen = []
    for block in decoder.blocks:
        for norm in (block.norm1, block.norm2):
            norm.register_forward_hook(lambda module, args, out: seen.append(args[1:]))
    style = torch.randn(2, 8, 1, 1)
    decoder(torch.randn(2, CONTENT, 4, 4), style)
    params = decoder.adain_params(style)
    channels = decoder.in_channels
    assert params.shape == (2, decoder.num_adain_params) == (2, len(seen) * 2 * channels)
    for i, (shift, scale) in enumerate(seen):  # each AdaIN layer in turn: its shifts, then its scales
        torch.testing.assert_close(shift, params[:, 2 * i * channels : (2 * i + 1) * channels])
        torch.testing.assert_close(scale, params[:, (2 * i + 1) * channels : (2 * i + 2) * channels])
    x = torch.randn(2, channels, 5, 5)
    shift, scale = torch.randn(2, channels), torch.randn(2, channels)
    expected = F.instance_norm(x) * scale[..., None, None] + shift[..., None, None]
    torch.testing.assert_close(decoder.blocks[0].norm1(x, shift, scale), expected)


def test_different_styles_give_different_translations_of_one_input_and_one_style_repeats():
    task = build_task().eval()
    translator = task.a2b
    x = images(1).expand(3, -1, -1, -1)  # one input three times
    styles = style_codes(8, 3, seed=0)
    out = translator(x, styles)
    assert out.shape == x.shape and out.abs().max() <= 1
    assert all((out[i] - out[j]).abs().mean() > 1e-3 for i, j in ((0, 1), (0, 2), (1, 2)))
    torch.testing.assert_close(translator(x[:1], styles[1:2]), out[1:2])  # per image: batch-independent
    # one style for the batch, a flat (N, style_dim) code, and no style (the zero code, the prior's mean)
    two = images(2)
    torch.testing.assert_close(translator(two, styles[:1]), translator(two, styles[:1].expand(2, -1, -1, -1)))
    torch.testing.assert_close(translator(two, styles[:2].flatten(1)), translator(two, styles[:2]))
    torch.testing.assert_close(translator(two), translator(two, torch.zeros(1, 8, 1, 1)))


def test_style_codes_are_determined_by_the_seed_and_leave_the_global_random_state_alone():
    state = torch.get_rng_state()
    first = style_codes(8, 4, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert first.shape == (4, 8, 1, 1)
    assert torch.equal(style_codes(8, 4, seed=3), first)
    for count in (1, 2, 3):
        assert torch.equal(style_codes(8, count, seed=3), first[:count]), "code i depends on the count"
    assert not torch.equal(style_codes(8, 4, seed=4), first)


# ---------------------------------------------------------------- the losses


def test_the_generator_losses_follow_the_authors_gen_update():
    torch.manual_seed(0)
    task = build_task()
    data = batch()
    a, b = data["A"], data["B"]
    out = task(data)
    assert out["style_a"].shape == (2, 8, 1, 1) and not torch.equal(out["style_a"], out["style_b"])
    torch.testing.assert_close(out["fake_b"], task.a2b(a, out["style_b"]))
    torch.testing.assert_close(out["fake_a"], task.b2a(b, out["style_a"]))
    losses = task.generator_losses(data, out)
    assert set(losses) == {"adv", "recon_x", "recon_s", "recon_c"}, "recon_x_cyc (weight 0) is not computed"
    c_a, s_a = task.encode(a, "A")
    c_b, s_b = task.encode(b, "B")
    c_b_again, s_a_again = task.encode(out["fake_a"], "A")
    c_a_again, s_b_again = task.encode(out["fake_b"], "B")
    expected = {
        "recon_x": F.l1_loss(task.decode(c_a, s_a, "A"), a) + F.l1_loss(task.decode(c_b, s_b, "B"), b),
        "recon_s": F.l1_loss(s_a_again, out["style_a"]) + F.l1_loss(s_b_again, out["style_b"]),
        "recon_c": F.l1_loss(c_a_again, c_a) + F.l1_loss(c_b_again, c_b),
        "adv": sum(((p - 1) ** 2).mean() for p in task.d_a(out["fake_a"]))
        + sum(((p - 1) ** 2).mean() for p in task.d_b(out["fake_b"])),  # summed over the scales
    }
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value, msg=name)
    task.set_loss_weights({"recon_x_cyc": 10.0})
    cycle = task.generator_losses(data, out)["recon_x_cyc"]
    expected_cycle = F.l1_loss(task.decode(c_a_again, s_a, "A"), a) + F.l1_loss(
        task.decode(c_b_again, s_b, "B"), b
    )
    torch.testing.assert_close(cycle, expected_cycle)


def test_the_discriminator_objective_is_the_authors_sum_over_scales_not_halved():
    torch.manual_seed(0)
    task = build_task()
    data = batch()
    out = task(data)
    losses = task.discriminator_losses(data, out)
    assert set(losses) == {"adv"} and len(task.d_a(data["A"])) == 3

    def lsgan(d, real, fake):
        return sum((f**2).mean() + ((r - 1) ** 2).mean() for f, r in zip(d(fake), d(real)))

    expected = lsgan(task.d_a, data["A"], out["fake_a"]) + lsgan(task.d_b, data["B"], out["fake_b"])
    torch.testing.assert_close(losses["adv"], expected)
    assert "gp" in build_task(adversarial_loss="wgangp").discriminator_losses(data, out)


def test_each_update_draws_its_own_styles_from_the_global_random_state():
    task = build_task()
    data = batch()
    torch.manual_seed(5)
    first = task(data)
    second = task(data)
    assert not torch.equal(first["style_b"], second["style_b"]), "dis_update and gen_update draw anew"
    assert torch.equal(first["content_a"], second["content_a"]), "the encoders are deterministic"
    torch.manual_seed(5)
    assert torch.equal(task(data)["style_b"], first["style_b"])


def test_the_authors_weights_optimizer_schedule_and_update_order():
    munit = TASKS.get("munit")
    assert munit.known_loss_weights() == {
        "adv": 1.0,  # gan_w
        "recon_x": 10.0,  # recon_x_w
        "recon_s": 1.0,  # recon_s_w
        "recon_c": 1.0,  # recon_c_w
        "recon_x_cyc": 0.0,  # recon_x_cyc_w (edges2handbags)
        "gp": 10.0,
    }
    config = build_config({"task": "munit"}, munit.default_config)
    assert (config.train.lr, config.train.betas, config.train.batch_size) == (1e-4, [0.5, 0.999], 1)
    assert (config.train.schedule, config.train.step_size, config.train.gamma) == ("step", 100_000, 0.5)
    assert config.train.init == "kaiming" and config.model["adversarial_loss"] == "lsgan"
    task = build_task()
    built = build_optimizer_groups(task.optimizer_groups(), config.optim, {"lr": 1e-4, "betas": (0.5, 0.999)})
    for group in built.values():
        defaults = group.optimizer.defaults
        assert type(group.optimizer) is torch.optim.Adam
        assert (defaults["lr"], defaults["betas"], defaults["weight_decay"]) == (1e-4, (0.5, 0.999), 1e-4)
    assert task.schedule() == [Update("discriminator"), Update("generator", through_generator=True)]
    task.set_loss_weights({"adv": 0.0})
    assert task.schedule() == [Update("generator", through_generator=True)]


def test_visuals_show_each_input_rebuilt_and_in_the_same_fixed_styles_every_time():
    task = build_task().eval()
    data = batch(3)
    visuals = task.visuals(data)
    styles = [f"style{i + 1}" for i in range(SAMPLE_STYLES)]
    assert list(visuals) == [
        "real_A",
        "rec_A",
        *(f"fake_B_{s}" for s in styles),
        "real_B",
        "rec_B",
        *(f"fake_A_{s}" for s in styles),
    ]
    assert all(v.shape == (3, 3, TINY_SIZE, TINY_SIZE) for v in visuals.values())
    again = task.visuals(data)
    assert all(torch.equal(visuals[k], again[k]) for k in visuals)
    _, styles_b = task.sample_styles()
    torch.testing.assert_close(visuals["fake_B_style2"], task.a2b(data["A"], styles_b[1:2]))
    assert not torch.equal(visuals["fake_B_style1"], visuals["fake_B_style2"])


# ---------------------------------------------------------------- exports and the kind


def test_the_exports_are_image_and_style_to_image_with_the_target_domains_style_encoder():
    task = build_task(in_channels=1, out_channels=3, domains=["sketch", "photo"]).eval()
    exports = task.exports()
    assert {k: (e.kind, e.module, e.in_channels, e.out_channels) for k, e in exports.items()} == {
        "a2b": (IMAGE_AND_STYLE_TO_IMAGE, "a2b", 1, 3),
        "b2a": (IMAGE_AND_STYLE_TO_IMAGE, "b2a", 3, 1),
    }
    assert exports["a2b"].options == {
        "direction": "a2b",
        "source": "sketch",
        "target": "photo",
        "style_dim": 8,
        "style_encoder": "a2b.style_encoder",
    }
    assert all(Export.from_dict(e.to_dict()) == e for e in exports.values())
    reference = images(2, 3)  # photos: the style of a2b's target domain
    encoder = task.get_submodule(exports["a2b"].options["style_encoder"])
    assert encoder is task.style_encoder("photo")
    style = encoder(reference)
    torch.testing.assert_close(task.a2b.encode_style(reference), style)
    sketch = images(2, 1)
    torch.testing.assert_close(
        task.a2b(sketch, style), task.decode(task.encode(sketch, "A")[0], style, "photo")
    )
    with pytest.raises(ConfigError, match="unknown domain 'C'"):
        task.encode(sketch, "C")
    with pytest.raises(ConfigError, match="needs a generator with a content_encoder"):
        build_task(generator={"name": "resnet_6blocks", "base_channels": 4})


def test_the_kind_gives_the_network_its_inputs():
    assert IMAGE_AND_STYLE_TO_IMAGE in EXPORT_KINDS and IMAGE_AND_STYLE_TO_IMAGE in kinds_with("style")
    task = build_task().eval()
    for export in task.exports().values():
        kind = kind_of(export)
        assert kind.network_inputs(export) == ["image", "style"] and kind.controls == ("image", "style")
        inputs = kind.example_inputs(export, 2, 32, 36, torch.Generator().manual_seed(0))
        assert [tuple(x.shape) for x in inputs] == [(2, 3, 32, 36), (2, 8, 1, 1)]
        assert task.get_submodule(export.module)(*inputs).shape == (2, 3, 32, 36)
        assert kind.plan(export.module, export, {"A": 0, "B": 0}).inputs == export.module[0].upper()
        styles = kind.translator_arguments(export.options, task)["styles"]
        assert styles.style_dim == 8 and styles.encoder is task.get_submodule(export.options["style_encoder"])


def test_the_tiny_config_builds_its_networks():
    assert isinstance(build_task().a2b, MunitTranslator)
    assert isinstance(GENERATORS.build({"name": "munit", **TINY["generator"]}), MunitGenerator)


# ---------------------------------------------------------------- training, resuming, loading, scoring


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return make_demo_dataset(
        tmp_path_factory.mktemp("data") / "demo", layout="unaligned", num_train=4, num_test=2, size=TINY_SIZE
    )


def layers(data_root: Path, steps: int = 4, **train: object) -> list[dict]:
    """The data, the tiny config's networks and tiny_overrides' data and train settings."""
    tiny = {**tiny_overrides("unit", steps=steps, **train), "model": TINY}
    return [{"data": {"root": str(data_root), "domains": ["photo", "anime"]}}, tiny]


@pytest.fixture(scope="module")
def munit_run(data_root, tmp_path_factory) -> Path:
    return train(
        "munit", overrides=layers(data_root, steps=2), run_dir=tmp_path_factory.mktemp("runs") / "munit"
    )


def test_a_run_logs_every_term_and_stores_the_exports(munit_run):
    records = [json.loads(line) for line in (munit_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert record["lr"] == 1e-4
        assert {"G/adv", "G/recon_x", "G/recon_s", "G/recon_c", "D/adv"} <= set(record)
        assert "G/recon_x_cyc" not in record
    checkpoint = load_model_checkpoint(munit_run)
    assert checkpoint.task == "munit" and checkpoint.task_kwargs["domains"] == ["photo", "anime"]
    assert {name: e["kind"] for name, e in checkpoint.exports.items()} == {
        "a2b": IMAGE_AND_STYLE_TO_IMAGE,
        "b2a": IMAGE_AND_STYLE_TO_IMAGE,
    }
    assert sorted(p.name for p in (munit_run / "samples").iterdir())


def test_resuming_changes_nothing(data_root, tmp_path):
    # The step schedule halves the LR after 2 steps here, so the resumed half runs at the lower LR.
    config = resolve_config(
        "munit", overrides=[*layers(data_root, checkpoint_every=100), {"train": {"step_size": 2}}]
    )
    assert_resuming_changes_nothing(config, tmp_path)


def test_the_export_loads_back_and_translates_with_a_code_or_a_reference(munit_run):
    loaded = load_export(munit_run, "a2b", kinds_with("style"))
    module, export = loaded.module, loaded.export
    assert isinstance(module, MunitTranslator) and not module.training
    photo, cartoon = images(2), images(2)
    codes = style_codes(export.options["style_dim"], 2, seed=0)
    out = module(photo, codes)
    assert out.shape == photo.shape and torch.isfinite(out).all() and out.abs().max() <= 1
    encoder = loaded.task.get_submodule(export.options["style_encoder"])
    guided = module(photo, encoder(cartoon))  # the style of each cartoon
    torch.testing.assert_close(guided, module(photo, module.encode_style(cartoon)))
    task = load_model(munit_run)
    torch.testing.assert_close(out, task.decode(task.encode(photo, "photo")[0], codes, "anime"))


def test_a_translator_without_styles_translates_with_the_zero_code(munit_run):
    translator = Translator.from_run(munit_run, direction="b2a")
    module = load_export(munit_run, "b2a", kinds_with("style")).module
    x = images(2, 3, 36, 52)
    torch.testing.assert_close(translator(x), module(x, torch.zeros(1, 8, 1, 1)))
    odd = images(1, 3, 37, 53)  # padded to multiples of 4, cropped back
    assert translator(odd).shape == odd.shape


def test_translate_eval_scores_translations_with_seeded_styles_and_their_diversity(munit_run, data_root):
    first = score_run(munit_run, data_root, {"l1", "diversity"}, direction="a2b")
    again = score_run(munit_run, data_root, {"l1", "diversity"}, direction="a2b")
    rows = {(s.metric, s.subject): s.value for s in first.scores}
    assert rows == {(s.metric, s.subject): s.value for s in again.scores}, "the styles come from the seed"
    assert {("L1", "translation"), ("L1", "input as-is"), ("diversity", "styles of one input")} <= set(rows)
    assert rows[("diversity", "styles of one input")] > 0
    other = score_run(munit_run, data_root, {"l1"}, direction="a2b", seed=1)
    assert {(s.metric, s.subject): s.value for s in other.scores}[("L1", "translation")] != rows[
        ("L1", "translation")
    ]
