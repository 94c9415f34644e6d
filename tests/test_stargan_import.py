"""``import_stargan``: a generator saved by yunjey/stargan (``200000-G.ckpt``, or the published archive with
its critic) becomes a run whose outputs equal the reference network's in the mode its ``test()`` runs.

The reference networks are re-expressed below from yunjey/stargan ``model.py`` (``ResidualBlock``,
``Generator``, ``Discriminator``; MIT licence, Copyright (c) 2017 Yunjey Choi): same modules, same order,
so their state dicts are what its ``solver.py`` saves with ``torch.save(self.G.state_dict(), G_path)``.
Nothing is downloaded."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from translate.errors import CheckpointError, ConfigError, ImportMismatch
from translate.inference import Translator, load_export
from translate.inference.stargan_import import convert_state_dict, file_arch, import_stargan
from translate.registry import GENERATORS

CELEBA = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


# --- the reference networks (yunjey/stargan model.py) ------------------------------------------------
class ResidualBlock(nn.Module):
    """Residual Block with instance normalization."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim_in, dim_out, kernel_size=3, stride=1, padding=1, bias=False),
            nn.InstanceNorm2d(dim_out, affine=True, track_running_stats=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim_out, dim_out, kernel_size=3, stride=1, padding=1, bias=False),
            nn.InstanceNorm2d(dim_out, affine=True, track_running_stats=True),
        )

    def forward(self, x):
        return x + self.main(x)


class Generator(nn.Module):
    """Generator network."""

    def __init__(self, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        layers = []
        layers.append(nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False))
        layers.append(nn.InstanceNorm2d(conv_dim, affine=True, track_running_stats=True))
        layers.append(nn.ReLU(inplace=True))
        curr_dim = conv_dim
        for _ in range(2):  # down-sampling
            layers.append(nn.Conv2d(curr_dim, curr_dim * 2, kernel_size=4, stride=2, padding=1, bias=False))
            layers.append(nn.InstanceNorm2d(curr_dim * 2, affine=True, track_running_stats=True))
            layers.append(nn.ReLU(inplace=True))
            curr_dim = curr_dim * 2
        for _ in range(repeat_num):  # bottleneck
            layers.append(ResidualBlock(dim_in=curr_dim, dim_out=curr_dim))
        for _ in range(2):  # up-sampling
            layers.append(
                nn.ConvTranspose2d(curr_dim, curr_dim // 2, kernel_size=4, stride=2, padding=1, bias=False)
            )
            layers.append(nn.InstanceNorm2d(curr_dim // 2, affine=True, track_running_stats=True))
            layers.append(nn.ReLU(inplace=True))
            curr_dim = curr_dim // 2
        layers.append(nn.Conv2d(curr_dim, 3, kernel_size=7, stride=1, padding=3, bias=False))
        layers.append(nn.Tanh())
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1)
        c = c.repeat(1, 1, x.size(2), x.size(3))
        x = torch.cat([x, c], dim=1)
        return self.main(x)


class Discriminator(nn.Module):
    """Discriminator network with PatchGAN."""

    def __init__(self, image_size=128, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        layers = []
        layers.append(nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1))
        layers.append(nn.LeakyReLU(0.01))
        curr_dim = conv_dim
        for _ in range(1, repeat_num):
            layers.append(nn.Conv2d(curr_dim, curr_dim * 2, kernel_size=4, stride=2, padding=1))
            layers.append(nn.LeakyReLU(0.01))
            curr_dim = curr_dim * 2
        kernel_size = int(image_size / np.power(2, repeat_num))
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(curr_dim, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(curr_dim, c_dim, kernel_size=kernel_size, bias=False)

    def forward(self, x):
        h = self.main(x)
        out_src = self.conv1(h)
        out_cls = self.conv2(h)
        return out_src, out_cls.view(out_cls.size(0), out_cls.size(1))


# --- helpers -----------------------------------------------------------------------------------------
def randomised(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and running statistic random (an untrained net's norms are 1 and 0: uninformative);
    the running statistics prove themselves unused by being far from what the images give."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(1000)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 5 + 0.5)
            elif tensor.is_floating_point():
                scale = 0.3 if name.endswith(("running_mean", "bias")) else 0.15
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)
                if name.endswith("weight") and tensor.dim() == 1:  # instance norm scales around 1
                    tensor.add_(1.0)
    return module


def save(state: dict, path, legacy: bool = False):
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def faces(n: int = 3, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def worst(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def his_test_mode(generator: Generator, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """solver.test(): the restored G is never put in eval mode; it runs under torch.no_grad()."""
    assert generator.training
    with torch.no_grad():
        return generator(x, c)


# --- exact outputs -----------------------------------------------------------------------------------
def test_the_generator_equals_yunjeys_in_the_mode_his_test_runs(tmp_path):
    reference = randomised(Generator(conv_dim=8, c_dim=5, repeat_num=2))
    file = save(reference.state_dict(), tmp_path / "200000-G.ckpt")
    result = import_stargan(file, tmp_path / "run")
    assert (result.arch.conv_dim, result.arch.c_dim, result.arch.repeat_num) == (8, 5, 2)
    assert result.labels.names == CELEBA and result.labels.groups == [CELEBA[:3]]
    assert len(result.dropped) == 3 * (3 + 2 * 2 + 2) and result.critic is None
    x = faces()
    c = torch.tensor([[0.0, 1, 0, 1, 0], [1, 0, 0, 0, 1], [0, 0, 1, 1, 1]])
    expected = his_test_mode(reference, x, c)
    assert expected.std() > 0.1  # informative outputs

    loaded = load_export(tmp_path / "run", None, ("image_and_target_to_image",))
    assert loaded.name == "translate" and loaded.checkpoint.task == "stargan"
    with torch.no_grad():
        ours = loaded.module(x, c)
    print(f"StarGAN import: max abs difference {worst(ours, expected):.3g}")
    assert worst(ours, expected) <= 1e-5
    translator = Translator.from_run(tmp_path / "run")
    assert translator.classifier is None  # no critic file: a full target or the inputs' labels
    target = {"Black_Hair": 0, "Blond_Hair": 1, "Brown_Hair": 0, "Male": 1, "Young": 0}
    assert (
        worst(translator.translate_tensor(x, target=target), his_test_mode(reference, x, c[:1].expand(3, -1)))
        <= 1e-5
    )
    with pytest.raises(ConfigError, match="stores no classifier"):
        translator.translate_tensor(x, target="Blond_Hair=1")
    with torch.no_grad():  # eval mode would use the running statistics the import dropped: not his test
        assert worst(reference.eval()(x, c), expected) > 0.05


def test_the_published_architecture_maps_name_for_name():
    """Generator(64, 5, 6) as published: every tensor lands on ours, 8,430,528 parameters."""
    state = Generator().state_dict()
    arch, weights, dropped = convert_state_dict(state)
    assert (arch.conv_dim, arch.c_dim, arch.repeat_num) == (64, 5, 6)
    assert sum(v.numel() for v in weights.values()) == 8_430_528
    assert len(dropped) == 3 * (3 + 2 * 6 + 2)
    assert "main.9.conv_block.4.weight" in weights and "main.9.main.4.weight" in state
    ours = GENERATORS.build({"name": "stargan", "num_labels": 5})
    ours.load_state_dict(weights, strict=True)


def test_the_published_archive_brings_its_critic_as_the_classifier(tmp_path):
    """download.sh's celeba-128x128-5attrs.zip holds 200000-G.ckpt and 200000-D.ckpt (here at 32 px):
    with the critic, a target may name one label and the others are read from each input."""
    generator = randomised(Generator(conv_dim=8, c_dim=5, repeat_num=1))
    critic = randomised(Discriminator(image_size=32, conv_dim=4, c_dim=5, repeat_num=3), seed=1)
    save(generator.state_dict(), tmp_path / "200000-G.ckpt", legacy=True)  # 2018's files: legacy format
    save(critic.state_dict(), tmp_path / "200000-D.ckpt", legacy=True)
    archive = tmp_path / "celeba-32x32-5attrs.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(tmp_path / "200000-G.ckpt", "celeba-32x32-5attrs/200000-G.ckpt")
        zipped.write(tmp_path / "200000-D.ckpt", "celeba-32x32-5attrs/200000-D.ckpt")
    result = import_stargan(archive, tmp_path / "run", source={"zoo": "stargan-celeba-32"})
    assert result.image_size == 32 and result.critic.endswith("200000-D.ckpt")
    assert "critic from" in result.describe()

    translator = Translator.from_run(tmp_path / "run")
    x = faces()
    with torch.no_grad():
        logits = critic(x)[1]
    source = result.labels.from_logits(logits)  # the reference critic's reading of each input
    assert torch.equal(translator.estimate_labels(x), source)
    target = source.clone()
    target[:, :3] = torch.tensor([0.0, 1.0, 0.0])  # Blond_Hair=1: the hair group one-hot
    expected = his_test_mode(generator, x, target)
    assert worst(translator.translate_tensor(x, target="Blond_Hair=1"), expected) <= 1e-5
    checkpoint = load_export(tmp_path / "run", None, ("image_and_target_to_image",)).checkpoint
    assert checkpoint.extra["imported"]["zoo"] == "stargan-celeba-32"

    # the extracted files: the critic beside the generator is found; discriminator=False leaves it out
    beside = import_stargan(tmp_path / "200000-G.ckpt", tmp_path / "beside")
    assert beside.critic == "200000-D.ckpt" and Translator.from_run(beside.run).classifier is not None
    alone = import_stargan(tmp_path / "200000-G.ckpt", tmp_path / "alone", discriminator=False)
    assert alone.critic is None and Translator.from_run(alone.run).classifier is None


def test_labels_from_the_caller_or_the_files_shape(tmp_path):
    file = save(randomised(Generator(conv_dim=4, c_dim=3, repeat_num=1)).state_dict(), tmp_path / "G.ckpt")
    assert file_arch(torch.load(file, weights_only=True)).c_dim == 3
    with pytest.raises(ConfigError, match="takes 3 labels: name them in the order it was trained with"):
        import_stargan(file, tmp_path / "a")
    with pytest.raises(ConfigError, match="takes 3 labels; 2 were named"):
        import_stargan(file, tmp_path / "b", attributes=["Blond_Hair", "Male"])
    result = import_stargan(file, tmp_path / "c", attributes=["Male", "Blond_Hair", "Black_Hair"])
    assert result.labels.names == ["Male", "Blond_Hair", "Black_Hair"]
    assert result.labels.groups == [["Blond_Hair", "Black_Hair"]]
    domains = import_stargan(file, tmp_path / "d", attributes=["happy", "sad", "angry"], domains=True)
    assert domains.labels.kind == "domains"
    x = faces(1)
    with torch.no_grad():
        out = Translator.from_run(tmp_path / "d").translate_tensor(x, target="sad")
    assert out.shape == x.shape
    assert not any(p.name.startswith(".import-") for p in tmp_path.iterdir())


# --- refusals ----------------------------------------------------------------------------------------
def test_files_that_fit_no_stargan_are_one_line_errors(tmp_path):
    good = randomised(Generator(conv_dim=4, c_dim=5, repeat_num=2)).state_dict()
    cases = {
        "module": (Generator(conv_dim=4, repeat_num=1), CheckpointError, r"needs code to load \(it pickles"),
        "junyanz": (
            {"model.1.weight": torch.zeros(8, 3, 7, 7), "model.1.bias": torch.zeros(8)},
            ImportMismatch,
            r"not a yunjey/stargan generator: .*its tensors are model.1.weight, model.1.bias",
        ),
        "missing": (
            {k: v for k, v in good.items() if k != "main.9.main.3.weight"},
            ImportMismatch,
            r"lacks main.9.main.3.weight",
        ),
        "extra": ({**good, "main.99.weight": torch.zeros(1)}, ImportMismatch, r"holds main.99.weight"),
        "shape": (
            {**good, "main.3.weight": torch.zeros(8, 4, 3, 3)},
            ImportMismatch,
            r"its main.3.weight is a torch.float32 tensor of shape \[8, 4, 3, 3\] where that has "
            r"\[8, 4, 4, 4\]",
        ),
        "labels": ({**good, "main.0.weight": torch.zeros(4, 3, 7, 7)}, ImportMismatch, r"takes 3 channels"),
    }
    for name, (content, error, message) in cases.items():
        file = tmp_path / f"{name}.ckpt"
        torch.save(content, file)
        with pytest.raises(error, match=message) as info:
            import_stargan(file, tmp_path / f"run-{name}")
        assert "\n" not in str(info.value), name
        assert not (tmp_path / f"run-{name}").exists(), name

    critic = Discriminator(image_size=32, conv_dim=4, c_dim=3, repeat_num=3).state_dict()
    generator = save(good, tmp_path / "G.ckpt")
    with pytest.raises(ImportMismatch, match="the critic classifies 3 labels, the generator takes 5"):
        import_stargan(generator, tmp_path / "x", discriminator=save(critic, tmp_path / "D.ckpt"))
    with pytest.raises(ImportMismatch, match="not a yunjey/stargan discriminator"):
        import_stargan(generator, tmp_path / "y", discriminator=generator)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(CheckpointError, match="exists and is not empty"):
        import_stargan(generator, tmp_path / "full")
    assert not any(p.name.startswith(".import-") for p in tmp_path.iterdir())
