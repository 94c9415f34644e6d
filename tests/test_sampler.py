"""Sampling noise -> image models and exploring their latent space: seeds, --mean/--std, class labels by
index or name, interpolation (slerp, linear), traversal, vector arithmetic; `translate sample` and
`translate latent` write images, a grid and the codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_core import toy_config
from toy_tasks import SIZE, ToyCGAN, ToyImages, registered

from translate import Sampler
from translate.cli import main
from translate.engine.trainer import Trainer
from translate.errors import ConfigError
from translate.registry import TASKS

LATENT = 4  # the toy tasks' latent_dim


@pytest.fixture(scope="module", autouse=True)
def toy_tasks():
    with registered():
        TASKS.register("toy_cgan")(ToyCGAN)
        try:
            yield
        finally:
            TASKS._entries.pop("toy_cgan")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two-step toy runs: ``wgan`` (unconditional, normal noise), ``cgan`` (3 named classes, uniform)."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("wgan", "cgan"):
        Trainer(toy_config(f"toy_{name}", steps=2), root / name, dataset=ToyImages()).fit()
    return root


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code not in (0, None) and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_the_same_seed_gives_the_same_images_another_seed_others(runs):
    sampler = Sampler.from_run(runs / "wgan")
    images = sampler.sample(5, seed=1)
    assert images.shape == (5, 1, SIZE, SIZE)
    assert torch.equal(images, Sampler.from_run(runs / "wgan").sample(5, seed=1))
    assert not torch.equal(images, sampler.sample(5, seed=2))
    assert torch.equal(sampler.codes([7, 8]), torch.cat([sampler.noise(1, 7), sampler.noise(1, 8)]))


def test_mean_and_std_shift_and_scale_the_codes(runs):
    sampler = Sampler.from_run(runs / "wgan")
    z = sampler.noise(6, seed=3)
    assert torch.allclose(sampler.noise(6, seed=3, mean=2.0, std=0.5), z * 0.5 + 2)
    assert torch.equal(sampler.sample(6, seed=3, mean=2.0, std=0.5), sampler(z * 0.5 + 2))
    uniform = Sampler.from_run(runs / "cgan").noise(100, seed=0, mean=1.0, std=0.5)
    assert uniform.min() >= 0.5 and uniform.max() <= 1.5


def test_slerp_keeps_the_ends_and_the_norm_linear_goes_through_the_mean():
    z0, z1 = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    z1 = z1 * z0.norm() / z1.norm()
    path = Sampler.interpolate(z0, z1, steps=7)
    assert path.shape == (7, 16)
    assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(7), rtol=1e-5)
    linear = Sampler.interpolate(z0, z1, steps=3, mode="linear")
    assert torch.allclose(linear[1], (z0 + z1) / 2) and linear[1].norm() < z0.norm()
    rows = Sampler.interpolate(torch.stack([z0, z1]), torch.stack([z1, z0]), steps=7)
    assert rows.shape == (2, 7, 16) and torch.allclose(rows[0], path, atol=1e-6)


@pytest.mark.parametrize("scale", [2.0, -1.0], ids=["parallel", "antiparallel"])
def test_slerp_between_parallel_codes_is_a_straight_line(scale):
    z0 = torch.randn(8, generator=torch.Generator().manual_seed(1))
    path = Sampler.interpolate(z0, z0 * scale, steps=5)
    assert torch.isfinite(path).all()
    assert torch.allclose(path, Sampler.interpolate(z0, z0 * scale, steps=5, mode="linear"), atol=1e-6)


def test_traverse_changes_only_the_chosen_dimension():
    z = torch.randn(3, LATENT, generator=torch.Generator().manual_seed(2))
    out = Sampler.traverse(z, 2, [-3.0, 0.0, 3.0])
    assert out.shape == (3, 3, LATENT)
    assert torch.equal(out[..., 2], torch.tensor([-3.0, 0.0, 3.0]).expand(3, 3))
    others = [0, 1, 3]
    assert torch.equal(out[..., others], z[:, None, others].expand(3, 3, 3))
    assert Sampler.traverse(z[0], 0, [1.0, 2.0]).shape == (2, LATENT)


def test_arithmetic_is_mean_a_minus_mean_b_plus_mean_c():
    a, b, c = (torch.randn(n, LATENT, generator=torch.Generator().manual_seed(n)) for n in (1, 2, 3))
    assert torch.allclose(Sampler.arithmetic(a, b, c), a.mean(0) - b.mean(0) + c.mean(0))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.traverse(torch.zeros(LATENT), LATENT, [0.0]), "dimension must be in 0..3"),
        (lambda s: s.traverse(torch.zeros(LATENT), -1, [0.0]), "dimension must be in 0..3"),
        (lambda s: s.traverse(torch.zeros(LATENT), 0, []), "no values"),
        (lambda s: s.interpolate(torch.zeros(LATENT), torch.ones(LATENT), 1), "at least 2 steps"),
        (lambda s: s.interpolate(torch.zeros(LATENT), torch.ones(LATENT), 4, "cubic"), "unknown"),
        (lambda s: s.codes([]), "no seeds given"),
        (lambda s: s.arithmetic(torch.zeros(1, 4), torch.zeros(0, 4), torch.zeros(1, 4)), "at least one"),
        (lambda s: s.sample(2, label=0), "this model is unconditional"),
    ],
)
def test_bad_latent_arguments_are_config_errors(runs, call, message):
    with pytest.raises(ConfigError, match=message):
        call(Sampler.from_run(runs / "wgan"))


def test_classes_by_index_or_name_and_a_bad_name_suggests_the_right_one(runs):
    sampler = Sampler.from_run(runs / "cgan")
    assert sampler.classes == ["T-shirt", "Trouser", "Pullover"]
    assert sampler.labels(5).tolist() == [0, 1, 2, 0, 1]  # every class in turn
    assert sampler.labels(2, "Trouser").tolist() == sampler.labels(2, 1).tolist() == [1, 1]
    assert sampler.labels(2, "2").tolist() == [2, 2]
    assert torch.equal(sampler.sample(4, seed=5, label="Pullover"), sampler.sample(4, seed=5, label=2))
    assert not torch.equal(sampler.sample(4, seed=5, label=0), sampler.sample(4, seed=5, label=2))
    with pytest.raises(ConfigError, match="unknown class 'Trousers' \\(did you mean Trouser\\?\\)"):
        sampler.labels(1, "Trousers")
    with pytest.raises(ConfigError, match="must be in 0..2; got 3"):
        sampler.labels(1, 3)


def test_sample_writes_images_grid_and_codes_the_same_for_the_same_seed(runs, tmp_path):
    result = invoke("sample", "--run", runs / "wgan", "--n", 6, "--seed", 4, "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert "wrote 6 images 0000.png .. 0005.png, grid.png, codes.npy" in result.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"{i:04d}.png" for i in range(6)] + ["codes.npy", "grid.png"]
    sampler = Sampler.from_run(runs / "wgan")
    assert np.array_equal(np.load(tmp_path / "a" / "codes.npy"), sampler.noise(6, seed=4).numpy())

    assert (
        invoke("sample", "--run", runs / "wgan", "-n", 6, "--seed", 4, "--out", tmp_path / "b").exit_code == 0
    )
    assert invoke("sample", "--run", runs / "wgan", "--count", 6, "--out", tmp_path / "c").exit_code == 0
    same = [(tmp_path / d / "0003.png").read_bytes() for d in "abc"]
    assert same[0] == same[1] != same[2]

    result = invoke("sample", "--run", runs / "wgan", "--mean", 1, "--std", 0.5, "--out", tmp_path / "d")
    assert result.exit_code == 0, result.output
    assert np.allclose(np.load(tmp_path / "d" / "codes.npy"), sampler.noise(64, seed=0).numpy() * 0.5 + 1)

    result = invoke("sample", "--run", runs / "wgan", "-n", 4, "--out", tmp_path / "only.png")
    assert result.exit_code == 0 and [p.name for p in tmp_path.glob("only*")] == ["only.png"]


def test_sample_of_a_conditional_model_writes_labels_by_name_or_every_class(runs, tmp_path):
    result = invoke("sample", "--run", runs / "cgan", "-n", 4, "--label", "Trouser", "--out", tmp_path / "t")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "t" / "labels.npy").tolist() == [1, 1, 1, 1]
    result = invoke("sample", "--run", runs / "cgan", "-n", 4, "--labels", "all", "--out", tmp_path / "all")
    assert result.exit_code == 0 and np.load(tmp_path / "all" / "labels.npy").tolist() == [0, 1, 2, 0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--run", "{cgan}", "--label", "Trousers"], "did you mean Trouser?"),
        (["sample", "--run", "{wgan}", "--label", "1"], "this model is unconditional"),
        (["latent", "traverse", "--run", "{wgan}", "--dim", "4"], "dimension must be in 0..3"),
        (["latent", "traverse", "--run", "{wgan}", "--dim", "0", "--values", "1,x"], "--values: '1,x'"),
        (["latent", "interpolate", "--run", "{wgan}", "--from", "1", "--to", "2", "--steps", "1"], "2 steps"),
        (["latent", "arithmetic", "--run", "{wgan}", "--a", "", "--b", "1", "--c", "2"], "no seeds given"),
        (
            ["latent", "arithmetic", "--run", "{cgan}", "--a", "1", "--b", "1", "--c", "1", "--label", "x"],
            "class",
        ),
    ],
)
def test_bad_cli_input_is_one_line(runs, tmp_path, args, message):
    args = [a.format(wgan=runs / "wgan", cgan=runs / "cgan") for a in args]
    assert_one_line_error(invoke(*args, "--out", tmp_path / "out"), message)
    assert not (tmp_path / "out").exists()


def test_latent_interpolate_writes_rows_between_seed_pairs(runs, tmp_path):
    out = tmp_path / "interp"
    result = invoke(
        "latent", "interpolate", "--run", runs / "cgan", "--from", 1, "--to", 9, "--steps", 4, "--rows", 2,
        "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 8 images 0000.png .. 0007.png, grid.png, codes.npy, labels.npy" in result.output
    codes, sampler = np.load(out / "codes.npy"), Sampler.from_run(runs / "cgan")
    ends = sampler.codes([1, 9, 2, 10]).numpy()
    assert codes.shape == (8, LATENT) and np.allclose(codes[[0, 3, 4, 7]], ends, atol=1e-6)
    assert np.load(out / "labels.npy").tolist() == [0] * 4 + [1] * 4  # row i draws class i
    assert (out / "grid.png").is_file() and (out / "0007.png").is_file()


def test_latent_traverse_sweeps_one_dimension_per_row(runs, tmp_path):
    out = tmp_path / "trav"
    result = invoke(
        "latent", "traverse", "--run", runs / "wgan", "--dim", 1, "--values", "-1,0,1", "--rows", 2,
        "--seed", 3, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    codes = np.load(out / "codes.npy").reshape(2, 3, LATENT)
    assert codes[..., 1].tolist() == [[-1, 0, 1], [-1, 0, 1]]
    bases = Sampler.from_run(runs / "wgan").codes([3, 4]).numpy()
    assert np.array_equal(codes[..., [0, 2, 3]], np.repeat(bases[:, None, [0, 2, 3]], 3, axis=1))
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:04d}.png" for i in range(6)] + ["grid.png"]


def test_latent_arithmetic_writes_groups_means_result_and_around(runs, tmp_path):
    out = tmp_path / "arith"
    result = invoke(
        "latent", "arithmetic", "--run", runs / "wgan", "--a", "1,5,9", "--b", "2", "--c", "3,4",
        "--around", 5, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    images = {"a_1", "a_5", "a_9", "b_2", "c_3", "c_4", "mean_a", "mean_b", "mean_c", "result"}
    assert images | {"around_mean", "grid"} == {p.stem for p in out.glob("*.png")}
    a, b, c = (np.load(out / f"{g}.npy") for g in "abc")
    assert np.allclose(np.load(out / "result.npy"), a.mean(0) - b.mean(0) + c.mean(0), atol=1e-6)
    assert np.allclose(np.load(out / "means.npy"), [a.mean(0), b.mean(0), c.mean(0)], atol=1e-6)
    around = np.load(out / "around.npy")
    assert around.shape == (5, LATENT) and np.abs(around - np.load(out / "result.npy")).mean() < 0.5
    assert "result.png" in result.output and "around.npy" in result.output
