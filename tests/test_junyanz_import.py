"""``translate import junyanz``: a generator saved by junyanz/pytorch-CycleGAN-and-pix2pix becomes a run whose
outputs equal the reference network's. The reference networks are re-implemented below from the layer
lists of that repository's models/networks.py (ResnetGenerator, ResnetBlock, UnetGenerator,
UnetSkipConnectionBlock; BSD licence, Copyright (c) 2017 Jun-Yan Zhu and Taesung Park): same modules, same
order, so their state dicts are what the reference saves. Nothing is downloaded."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open
from torch import nn

from translate.cli import main
from translate.cli.models import import_checkpoint
from translate.errors import CheckpointError
from translate.inference import Translator, load_export
from translate.inference.junyanz import ArchitectureMismatch, import_junyanz

# --- the reference networks --------------------------------------------------------------------------


def reference_norm(kind: str, instance_stats: bool = False) -> functools.partial:
    """``get_norm_layer``: batch norm learns a scale/shift and tracks statistics; instance norm does neither
    (``instance_stats``: as PyTorch < 0.4 saved it, with running statistics)."""
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=instance_stats)


class RefResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=use_bias), norm_layer(dim)]
        block += [nn.ReLU(True)] + ([nn.Dropout(0.5)] if use_dropout else [])
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks):
        super().__init__()
        use_bias = norm_layer.func == nn.InstanceNorm2d
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=use_bias)]
        model += [norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):  # downsampling
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias)]
            model += [norm_layer(ngf * mult * 2), nn.ReLU(True)]
        model += [RefResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class RefUnetBlock(nn.Module):
    def __init__(
        self,
        outer_nc,
        inner_nc,
        input_nc=None,
        submodule=None,
        outermost=False,
        innermost=False,
        norm_layer=None,
        use_dropout=False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = norm_layer.func == nn.InstanceNorm2d
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), norm_layer(inner_nc)
        uprelu, upnorm = nn.ReLU(True), norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            model += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout):
        super().__init__()
        block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):
            block = RefUnetBlock(
                ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout
            )
        block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = RefUnetBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer
        )

    def forward(self, x):
        return self.model(x)


def reference_generator(arch, norm, ngf=64, dropout=False, input_nc=3, output_nc=3, instance_stats=False):
    """``define_G`` without init_net, with random weights and statistics (biases, batch-norm scales and
    running statistics away from their defaults, so that a misplaced tensor changes the output)."""
    norm_layer = reference_norm(norm, instance_stats)
    if arch.startswith("resnet"):
        blocks = {"resnet_9blocks": 9, "resnet_6blocks": 6}[arch]
        net = RefResnetGenerator(input_nc, output_nc, ngf, norm_layer, dropout, blocks)
    else:
        downs = {"unet_256": 8, "unet_128": 7}[arch]
        net = RefUnetGenerator(input_nc, output_nc, downs, ngf, norm_layer, dropout)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.num_batches_tracked.fill_(1234)
            elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and module.bias is not None:
                module.bias.normal_(0, 0.1, generator=generator)
    return net


SIZES = {"resnet_9blocks": 32, "resnet_6blocks": 32, "unet_256": 256, "unet_128": 128}


def images(arch: str, count: int = 2, channels: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    return torch.rand(count, channels, SIZES[arch], SIZES[arch], generator=generator) * 2 - 1


def save(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


def worst(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def assert_informative(output: torch.Tensor) -> None:
    """Outputs that would show a misplaced tensor: spread out, not saturated by the tanh."""
    assert output.std() > 0.05 and (output.abs() > 0.999).float().mean() < 0.5


# --- exact outputs -----------------------------------------------------------------------------------


def test_resnet_9blocks_instance_full_size_equals_the_reference(tmp_path):
    """A CycleGAN generator as published (ngf 64, 3 -> 3, instance norm): eval-mode run, same outputs."""
    reference = reference_generator("resnet_9blocks", "instance").eval()
    file = save(reference.state_dict(), tmp_path / "latest_net_G.pth")
    result = import_junyanz(
        file, tmp_path / "run", arch="resnet_9blocks", norm="instance", direction="horse2zebra"
    )
    assert result.test_mode == "eval" and result.tensors == 48 and not result.dropped
    x = images("resnet_9blocks")
    with torch.no_grad():
        expected = reference(x)
    assert_informative(expected)
    translator = Translator.from_run(tmp_path / "run")
    assert not translator.batch_statistics
    assert worst(translator.translate_tensor(x), expected) <= 1e-5
    loaded = load_export(tmp_path / "run", None, ("image_to_image",))
    assert loaded.name == "horse2zebra" and loaded.checkpoint.task == "pix2pix"
    with torch.no_grad():
        assert worst(loaded.module(x), expected) <= 1e-5


def test_unet_256_batch_norm_equals_the_reference_in_both_test_modes(tmp_path):
    """pix2pix's generator (batch norm, dropout): by default as the reference's test.py without --eval
    (each image's own statistics, dropout on, seeded); with --eval on the running statistics."""
    reference = reference_generator("unet_256", "batch", ngf=8, dropout=True)
    file = save(reference.state_dict(), tmp_path / "latest_net_G.pth")
    x = images("unet_256")

    default = import_junyanz(file, tmp_path / "run", arch="unet_256", norm="batch")
    assert default.test_mode == "batch_statistics" and default.arch.dropout
    translator = Translator.from_run(tmp_path / "run")
    assert translator.batch_statistics and translator.seed == 0
    train_mode = copy.deepcopy(reference).train()
    expected = []
    for image in x:  # one image at a time, dropout drawn from seed 0 each time, as the Translator does
        torch.manual_seed(0)
        with torch.no_grad():
            expected.append(train_mode(image[None]))
    expected = torch.cat(expected)
    assert_informative(expected)
    assert worst(translator.translate_tensor(x), expected) <= 1e-5

    evaluated = import_junyanz(file, tmp_path / "eval", arch="unet_256", norm="batch", eval_mode=True)
    assert evaluated.test_mode == "eval"
    with torch.no_grad():
        expected = reference.eval()(x)
    assert_informative(expected)
    assert worst(Translator.from_run(tmp_path / "eval").translate_tensor(x), expected) <= 1e-5


@pytest.mark.parametrize(
    ("arch", "norm"),
    [
        ("resnet_6blocks", "batch"),
        ("unet_128", "instance"),
        ("unet_128", "batch"),
        ("resnet_9blocks", "batch"),
    ],
)
def test_every_architecture_and_norm_maps_exactly(tmp_path, arch, norm):
    """The other configurations, small (ngf 8), detected from the file without --arch/--norm."""
    reference = reference_generator(arch, norm, ngf=8, input_nc=1, output_nc=3).eval()
    file = save(reference.state_dict(), tmp_path / "g.pth")
    result = import_junyanz(file, tmp_path / "run", eval_mode=True)
    assert (result.arch.arch, result.arch.norm, result.arch.ngf) == (arch, norm, 8)
    assert (result.arch.input_nc, result.arch.output_nc) == (1, 3)
    x = images(arch, channels=1)
    with torch.no_grad():
        expected = reference(x)
    assert worst(Translator.from_run(tmp_path / "run").translate_tensor(x), expected) <= 1e-5


def test_files_from_before_pytorch_0_4_and_data_parallel(tmp_path):
    """Instance norms saved with running statistics (dropped, as the reference's loader drops them), batch
    norms without num_batches_tracked (set to 0), and a DataParallel ``module.`` prefix (stripped)."""
    reference = reference_generator("resnet_6blocks", "instance", ngf=8).eval()
    old = reference_generator("resnet_6blocks", "instance", ngf=8, instance_stats=True)
    old.load_state_dict(reference.state_dict(), strict=False)
    state = {f"module.{k}": v for k, v in old.state_dict().items()}
    assert any(k.endswith("running_mean") for k in state)
    result = import_junyanz(save(state, tmp_path / "old.pth"), tmp_path / "run", arch="resnet_6blocks")
    assert len(result.dropped) == 3 * (1 + 2 + 2 * 6 + 2)  # mean, var, count of each of the 17 norms
    x = images("resnet_6blocks")
    with torch.no_grad():
        assert worst(Translator.from_run(tmp_path / "run").translate_tensor(x), reference(x)) <= 1e-5

    batch = reference_generator("unet_128", "batch", ngf=8).eval()
    state = {k: v for k, v in batch.state_dict().items() if not k.endswith("num_batches_tracked")}
    result = import_junyanz(
        save(state, tmp_path / "bn.pth"), tmp_path / "bn", arch="unet_128", eval_mode=True
    )
    assert result.filled == 11  # 5 middle levels with 2 norms each, the innermost with 1
    x = images("unet_128")
    with torch.no_grad():
        assert worst(Translator.from_run(tmp_path / "bn").translate_tensor(x), batch(x)) <= 1e-5


# --- the run: CLI, info, apply, metadata --------------------------------------------------------------


def test_cli_import_then_info_and_apply(tmp_path):
    reference = reference_generator("unet_128", "batch", ngf=8, dropout=True).eval()
    file = save(reference.state_dict(), tmp_path / "latest_net_G.pth")
    run = tmp_path / "facades"
    args = ["junyanz", str(file), "--arch", "unet_128", "--norm", "batch", "--eval", "--out", str(run)]
    result = CliRunner().invoke(import_checkpoint, [*args, "--direction", "label2photo"])
    assert result.exit_code == 0, result.output
    assert "unet_128 (batch norm, 3 -> 3 channels, ngf 8)" in result.output and "eval mode" in result.output

    info = CliRunner().invoke(main, ["info", str(run)])
    assert info.exit_code == 0, info.output
    assert "method:     pix2pix" in info.output and "label2photo image_to_image" in info.output
    assert "128 px" in info.output
    with safe_open(str(run / "checkpoints" / "step_0000000" / "model.safetensors"), "pt") as handle:
        meta = handle.metadata()
    assert '"arch": "unet_128"' in meta["imported"] and '"sha256"' in meta["imported"]

    photo = (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "in.png")
    applied = CliRunner().invoke(
        main, ["apply", str(tmp_path / "in.png"), "--run", str(run), "--out", str(tmp_path / "out")]
    )
    assert applied.exit_code == 0, applied.output
    written = np.asarray(Image.open(tmp_path / "out" / "in.png")).astype(int)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = ((reference(x)[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(written - expected).max() <= 1  # 8-bit rounding of equal outputs

    again = CliRunner().invoke(import_checkpoint, args)
    assert again.exit_code == 1 and "exists and is not empty" in again.output


# --- refusals ----------------------------------------------------------------------------------------


class Pickled(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: Pickled(), r"needs code to load \(it pickles .*Pickled\).*weights_only"),
        (
            lambda: {"epoch": 3, "state_dict": {"w": torch.zeros(1)}},
            r"epoch, state_dict are not tensors; it nests",
        ),
        (lambda: [torch.zeros(2)], r"holds a list, not a state dict"),
        (lambda: b"not a torch file at all" * 4, r"is not a PyTorch checkpoint"),
    ],
    ids=["code", "nested", "list", "junk"],
)
def test_refuses_anything_but_a_state_dict_in_one_line(tmp_path, content, message):
    value = content()
    file = tmp_path / "bad.pth"
    if isinstance(value, bytes):
        file.write_bytes(value)
    else:
        torch.save(value, file)
    with pytest.raises(CheckpointError, match=message) as info:
        import_junyanz(file, tmp_path / "run", arch="resnet_9blocks", norm="instance")
    assert "\n" not in str(info.value) and not (tmp_path / "run").exists()


def test_wrong_architecture_names_the_first_mismatch_and_what_fits(tmp_path):
    six = save(reference_generator("resnet_6blocks", "instance", ngf=8).state_dict(), tmp_path / "six.pth")
    with pytest.raises(ArchitectureMismatch) as info:
        import_junyanz(six, tmp_path / "a", arch="resnet_9blocks", norm="instance")
    text = str(info.value)
    assert "resnet_9blocks has 48 tensors, the file 36; the first mismatch is the file's tensor 31" in text
    assert "it fits --arch resnet_6blocks --norm instance" in text and "\n" not in text

    unet = save(reference_generator("unet_256", "batch", ngf=8).state_dict(), tmp_path / "unet.pth")
    with pytest.raises(ArchitectureMismatch) as info:
        import_junyanz(unet, tmp_path / "b", arch="unet_256", norm="instance")
    text = str(info.value)  # instance: the first conv has a bias; batch: the next tensor is the second conv
    assert "unet_256 has 32 tensors, the file 43 besides 39 running statistics" in text
    assert "tensor 2 of 43 (model.model.1.model.1.weight) of shape [16, 8, 4, 4]" in text
    assert "expects [8] (model.down.0.bias)" in text and "it fits --arch unet_256 --norm batch" in text

    with pytest.raises(ArchitectureMismatch, match=r"\(3 -> 3 channels, ngf 16\): it fits none of"):
        import_junyanz(six, tmp_path / "c", ngf=16)
    result = CliRunner().invoke(
        import_checkpoint, ["junyanz", str(six), "--arch", "unet_128", "--out", str(tmp_path / "d")]
    )
    assert result.exit_code == 1 and result.output.startswith("Error: cannot tell the architecture")
    assert "it fits --arch resnet_6blocks --norm instance, not --arch unet_128" in result.output
    assert not any(p.name.startswith(".import-") for p in tmp_path.iterdir())
