"""CUT and FastCUT against the authors' code (taesungp/contrastive-unpaired-translation; BSD licence,
Copyright (c) 2020 Taesung Park and Jun-Yan Zhu), re-expressed below: from ``models/networks.py``
``Downsample``, ``Upsample``, ``ResnetGenerator`` and ``NLayerDiscriminator`` with their default
anti-aliasing, ``PatchSampleF`` and ``Normalize``; ``models/patchnce.py`` ``PatchNCELoss``; from
``models/cut_model.py`` ``forward``, ``compute_D_loss``, ``compute_G_loss``, ``calculate_NCE_loss`` and
``optimize_parameters``:

- the full-size networks are the authors' layer lists (ResNet-9: 11,378,179 parameters; the patch sampler's
  heads on the channels 3, 128, 256, 256, 256 of layers 0, 4, 8, 12, 16: 560,384), load their state dicts
  and give their outputs;
- PatchNCE equals a hand-computed case and the authors' loss;
- a whole training step (D, then G and F) leaves the weights the authors' ``optimize_parameters`` leaves;
- FastCUT's coin flips the inputs and flips the features back, once per batch;
- both train, apply and resume bit-exactly through the shared paths.
"""

from __future__ import annotations

import functools
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_SIZE, assert_resuming_changes_nothing, tiny_train
from test_junyanz_import import RefResnetBlock, reference_norm
from test_step_parity import GANLoss, max_difference, our_steps, set_requires_grad, trainer_for
from torch import nn

from translate.api import resolve_config, train
from translate.catalog.demo import make_demo_dataset
from translate.config import build_config
from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE
from translate.generators.patch_sampler import encoder_features, feature_channels
from translate.generators.resnet import ResnetBlock
from translate.inference import Translator, load_export
from translate.layers.antialias import BlurDownsample
from translate.losses import patch_nce_loss
from translate.registry import TASKS

TOLERANCE = 1e-5
LR = 2e-4


# ------------------------------------------------------------------ the authors' networks, re-expressed
def get_filter(filt_size: int) -> torch.Tensor:
    a = {3: np.array([1.0, 2.0, 1.0]), 4: np.array([1.0, 3.0, 3.0, 1.0])}[filt_size]
    filt = torch.Tensor(a[:, None] * a[None, :])
    return filt / torch.sum(filt)


class Downsample(nn.Module):
    """``Downsample(channels)``: pad_type reflect, filt_size 3, stride 2, pad_off 0."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", get_filter(3)[None, None, :, :].repeat((channels, 1, 1, 1)))
        self.pad = nn.ReflectionPad2d([1, 1, 1, 1])

    def forward(self, inp):
        return F.conv2d(self.pad(inp), self.filt, stride=2, groups=inp.shape[1])


class Upsample(nn.Module):
    """``Upsample(channels)``: pad_type repl, filt_size 4, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", (get_filter(4) * 4)[None, None, :, :].repeat((channels, 1, 1, 1)))
        self.pad = nn.ReplicationPad2d([1, 1, 1, 1])

    def forward(self, inp):
        ret_val = F.conv_transpose2d(self.pad(inp), self.filt, stride=2, padding=2, groups=inp.shape[1])
        return ret_val[:, :, 1:, 1:][:, :, :-1, :-1]


class AuthorsResnetGenerator(nn.Module):
    """``ResnetGenerator`` with ``no_antialias`` and ``no_antialias_up`` False (the defaults)."""

    def __init__(self, input_nc, output_nc, ngf=64, n_blocks=9):
        super().__init__()
        norm_layer, use_bias = reference_norm("instance"), True
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=use_bias)]
        model += [norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=1, padding=1, bias=use_bias)]
            model += [norm_layer(ngf * mult * 2), nn.ReLU(True), Downsample(ngf * mult * 2)]
        model += [RefResnetBlock(ngf * 4, norm_layer, False, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                Upsample(ngf * mult),
                nn.Conv2d(ngf * mult, ngf * mult // 2, 3, padding=1, bias=use_bias),
            ]
            model += [norm_layer(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input, layers=[], encode_only=False):  # noqa: B006 - the authors' signature
        if len(layers) > 0:
            feat, feats = input, []
            for layer_id, layer in enumerate(self.model):
                feat = layer(feat)
                if layer_id in layers:
                    feats.append(feat)
                if layer_id == layers[-1] and encode_only:
                    return feats
            return feat, feats
        return self.model(input)


class AuthorsNLayerDiscriminator(nn.Module):
    """``NLayerDiscriminator`` with instance norm and ``no_antialias`` False."""

    def __init__(self, input_nc, ndf=64, n_layers=3):
        super().__init__()
        norm_layer, use_bias = reference_norm("instance"), True
        sequence = [
            nn.Conv2d(input_nc, ndf, 4, stride=1, padding=1),
            nn.LeakyReLU(0.2, True),
            Downsample(ndf),
        ]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
            sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, stride=1, padding=1, bias=use_bias)]
            sequence += [norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True), Downsample(ndf * nf_mult)]
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, stride=1, padding=1, bias=use_bias)]
        sequence += [norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*sequence)

    def forward(self, input):
        return self.model(input)


class Normalize(nn.Module):
    def forward(self, x):
        norm = x.pow(2).sum(1, keepdim=True).pow(1.0 / 2)
        return x.div(norm + 1e-7)


class PatchSampleF(nn.Module):
    """``PatchSampleF(use_mlp=True, nc)``; ``create_mlp`` is the authors' lazy construction."""

    def __init__(self, nc=256):
        super().__init__()
        self.l2norm, self.nc, self.mlp_init = Normalize(), nc, False

    def create_mlp(self, feats):
        for mlp_id, feat in enumerate(feats):
            mlp = nn.Sequential(nn.Linear(feat.shape[1], self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc))
            setattr(self, f"mlp_{mlp_id}", mlp)
        self.mlp_init = True

    def forward(self, feats, num_patches=64, patch_ids=None):
        return_ids, return_feats = [], []
        if not self.mlp_init:
            self.create_mlp(feats)
        for feat_id, feat in enumerate(feats):
            feat_reshape = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if patch_ids is not None:
                patch_id = patch_ids[feat_id]
            else:
                patch_id = np.random.permutation(feat_reshape.shape[1])
                patch_id = patch_id[: int(min(num_patches, patch_id.shape[0]))]
            patch_id = torch.as_tensor(patch_id, dtype=torch.long, device=feat.device)
            x_sample = feat_reshape[:, patch_id, :].flatten(0, 1)
            x_sample = getattr(self, f"mlp_{feat_id}")(x_sample)
            return_ids.append(patch_id)
            return_feats.append(self.l2norm(x_sample))
        return return_feats, return_ids


class PatchNCELoss(nn.Module):
    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.cross_entropy_loss = torch.nn.CrossEntropyLoss(reduction="none")

    def forward(self, feat_q, feat_k):
        num_patches, dim = feat_q.shape[0], feat_q.shape[1]
        feat_k = feat_k.detach()
        l_pos = torch.bmm(feat_q.view(num_patches, 1, -1), feat_k.view(num_patches, -1, 1)).view(
            num_patches, 1
        )
        batch_dim_for_bmm = 1 if self.opt.nce_includes_all_negatives_from_minibatch else self.opt.batch_size
        feat_q = feat_q.view(batch_dim_for_bmm, -1, dim)
        feat_k = feat_k.view(batch_dim_for_bmm, -1, dim)
        npatches = feat_q.size(1)
        l_neg_curbatch = torch.bmm(feat_q, feat_k.transpose(2, 1))
        diagonal = torch.eye(npatches, device=feat_q.device, dtype=torch.bool)[None, :, :]
        l_neg_curbatch.masked_fill_(diagonal, -10.0)
        l_neg = l_neg_curbatch.view(-1, npatches)
        out = torch.cat((l_pos, l_neg), dim=1) / self.opt.nce_T
        return self.cross_entropy_loss(out, torch.zeros(out.size(0), dtype=torch.long, device=feat_q.device))


# ------------------------------------------------------------------ the authors' CUTModel, re-expressed
def cut_options(mode: str, batch_size: int, nce_layers: list[int], num_patches: int) -> SimpleNamespace:
    """``modify_commandline_options``: CUT (nce_idt, lambda_NCE 1) or FastCUT (no nce_idt, lambda_NCE 10,
    flip_equivariance); lambda_GAN 1, nce_T 0.07, negatives from the same image."""
    fast = mode == "fastcut"
    return SimpleNamespace(
        lambda_GAN=1.0,
        lambda_NCE=10.0 if fast else 1.0,
        nce_idt=not fast,
        flip_equivariance=fast,
        nce_layers=nce_layers,
        num_patches=num_patches,
        nce_T=0.07,
        nce_includes_all_negatives_from_minibatch=False,
        batch_size=batch_size,
        isTrain=True,
    )


class CUTModel:
    """``cut_model.CUTModel`` in training, ``--gan_mode lsgan --netF mlp_sample``. Its
    ``data_dependent_initialize`` (one forward and two backward passes on the first batch, zeroed again
    before any step, to build netF lazily) is left out: netF is built here with our heads' weights, so the
    two sides start from the same weights and random state."""

    def __init__(self, opt, netG, netD, netF) -> None:
        self.opt, self.netG, self.netD, self.netF = opt, netG, netD, netF
        self.nce_layers = opt.nce_layers
        self.criterionGAN = GANLoss("lsgan")
        self.criterionNCE = [PatchNCELoss(opt) for _ in self.nce_layers]
        adam = functools.partial(torch.optim.Adam, lr=LR, betas=(0.5, 0.999))
        self.optimizer_G, self.optimizer_D = adam(netG.parameters()), adam(netD.parameters())
        self.optimizer_F = adam(netF.parameters())

    def set_input(self, batch) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]

    def forward(self) -> None:
        self.real = torch.cat((self.real_A, self.real_B), dim=0) if self.opt.nce_idt else self.real_A
        if self.opt.flip_equivariance:
            self.flipped_for_equivariance = self.opt.isTrain and (np.random.random() < 0.5)
            if self.flipped_for_equivariance:
                self.real = torch.flip(self.real, [3])
        self.fake = self.netG(self.real)
        self.fake_B = self.fake[: self.real_A.size(0)]
        if self.opt.nce_idt:
            self.idt_B = self.fake[self.real_A.size(0) :]

    def compute_D_loss(self):
        pred_fake = self.netD(self.fake_B.detach())
        self.loss_D_fake = self.criterionGAN(pred_fake, False).mean()
        self.loss_D_real = self.criterionGAN(self.netD(self.real_B), True).mean()
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        return self.loss_D

    def compute_G_loss(self):
        self.loss_G_GAN = self.criterionGAN(self.netD(self.fake_B), True).mean() * self.opt.lambda_GAN
        self.loss_NCE = self.calculate_NCE_loss(self.real_A, self.fake_B)
        if self.opt.nce_idt:
            self.loss_NCE_Y = self.calculate_NCE_loss(self.real_B, self.idt_B)
            self.loss_NCE_both = (self.loss_NCE + self.loss_NCE_Y) * 0.5
        else:
            self.loss_NCE_both = self.loss_NCE
        self.loss_G = self.loss_G_GAN + self.loss_NCE_both
        return self.loss_G

    def calculate_NCE_loss(self, src, tgt):
        feat_q = self.netG(tgt, self.nce_layers, encode_only=True)
        if self.opt.flip_equivariance and self.flipped_for_equivariance:
            feat_q = [torch.flip(fq, [3]) for fq in feat_q]
        feat_k = self.netG(src, self.nce_layers, encode_only=True)
        feat_k_pool, sample_ids = self.netF(feat_k, self.opt.num_patches, None)
        feat_q_pool, _ = self.netF(feat_q, self.opt.num_patches, sample_ids)
        total_nce_loss = 0.0
        for f_q, f_k, crit in zip(feat_q_pool, feat_k_pool, self.criterionNCE):
            total_nce_loss += (crit(f_q, f_k) * self.opt.lambda_NCE).mean()
        return total_nce_loss / len(self.nce_layers)

    def optimize_parameters(self) -> None:
        self.forward()
        set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad()
        self.loss_D = self.compute_D_loss()
        self.loss_D.backward()
        self.optimizer_D.step()
        set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad()
        self.optimizer_F.zero_grad()
        self.loss_G = self.compute_G_loss()
        self.loss_G.backward()
        self.optimizer_G.step()
        self.optimizer_F.step()


def authors_networks(task, example: torch.Tensor) -> tuple[nn.Module, nn.Module, PatchSampleF]:
    """The authors' G, D and F with the sizes and weights of our task's (their F built on G's features of
    ``example``, as their first forward builds it)."""
    g, d = task.generator, task.discriminator.model
    blocks = sum(isinstance(m, ResnetBlock) for m in g.model)
    netG = AuthorsResnetGenerator(g.in_channels, g.out_channels, g.model[1].out_channels, blocks)
    layers = sum(isinstance(m, BlurDownsample) for m in d)
    netD = AuthorsNLayerDiscriminator(d[0].in_channels, d[0].out_channels, layers)
    netF = PatchSampleF(task.patch_sampler.heads[0][0].out_features)
    with torch.no_grad():
        netF.create_mlp(netG(example, task.nce_layers, encode_only=True))
    netG.load_state_dict(g.state_dict())
    netD.load_state_dict(task.discriminator.state_dict())
    heads = task.patch_sampler.state_dict()
    netF.load_state_dict({re.sub(r"^heads\.(\d+)\.", r"mlp_\1.", k): v for k, v in heads.items()})
    return netG, netD, netF


OUR_NAMES = {"Downsample": "BlurDownsample", "Upsample": "BlurUpsample", "RefResnetBlock": "ResnetBlock"}


def images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=generator) * 2 - 1


def model_config(name: str, *layers: dict) -> dict:
    """The task's ``model`` section: its defaults (the authors' full-size networks) under ``layers``."""
    return build_config(TASKS.get(name).default_config, *({"model": layer} for layer in layers)).model


def full_size(name: str):
    return TASKS.build({"name": name, **model_config(name)}).eval()


# ------------------------------------------------------------------------------ networks
def test_full_size_networks_are_the_authors_layer_lists():
    task = full_size("cut")
    assert sum(p.numel() for p in task.generator.parameters()) == 11_378_179
    assert sum(p.numel() for p in task.discriminator.parameters()) == 2_764_737
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    netG, netD, _ = authors_networks(task, x)
    assert [type(m).__name__ for m in task.generator.model] == [
        OUR_NAMES.get(n, n) for n in (type(m).__name__ for m in netG.model)
    ]
    with torch.no_grad():
        assert torch.allclose(task.generator(x), netG(x), atol=1e-6)
        ours = encoder_features(task.encoder, x, task.nce_layers)
        theirs = netG(x, task.nce_layers, encode_only=True)
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
        assert torch.allclose(task.discriminator(x), netD(x), atol=1e-6)


def test_the_patch_sampler_has_the_authors_heads_for_the_five_layers():
    task = full_size("cut")
    channels = feature_channels(task.encoder, task.nce_layers, 3)
    assert channels == [3, 128, 256, 256, 256]
    with torch.no_grad():
        features = encoder_features(task.encoder, torch.zeros(1, 3, 64, 64), task.nce_layers)
    assert [f.shape[1] for f in features] == channels
    assert [f.shape[2] for f in features] == [70, 64, 32, 16, 16]
    heads = [(h[0].in_features, h[0].out_features, h[2].out_features) for h in task.patch_sampler.heads]
    assert heads == [(c, 256, 256) for c in channels]
    expected = sum(c * 256 + 256 + 256 * 256 + 256 for c in channels)
    assert sum(p.numel() for p in task.patch_sampler.parameters()) == expected == 560_384


def test_generators_without_a_flat_sequential_or_with_too_few_layers_are_config_errors():
    def build(**model):
        TASKS.build({"name": "cut", **model_config("cut", {**TINY, **model})})

    with pytest.raises(ConfigError, match="flat `model` Sequential"):
        build(generator={"name": "unet_128", "base_channels": 4})
    with pytest.raises(ConfigError, match=r"\[0, 4, 24\] goes past the generator's 24 layers \(0 to 23\)"):
        build(generator={"num_blocks": 1, "base_channels": 4}, nce_layers=[0, 4, 24])
    with pytest.raises(ConfigError, match="increasing layer indices"):
        build(nce_layers=[4, 0])
    with pytest.raises(ConfigError, match="same channels"):
        build(in_channels=1)


# ------------------------------------------------------------------------------ PatchNCE
def test_patch_nce_matches_a_hand_computed_case():
    t = 0.07
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[0.6, 0.8], [0.28, 0.96]])
    # query 0: positive q0.k0 = 0.6; negatives: its own key, masked to -10, and q0.k1 = 0.28
    # query 1: positive q1.k1 = 0.96; negatives: q1.k0 = 0.8 and its own key, masked
    expected = [
        math.log(1 + math.exp((-10 - 0.6) / t) + math.exp((0.28 - 0.6) / t)),
        math.log(1 + math.exp((0.8 - 0.96) / t) + math.exp((-10 - 0.96) / t)),
    ]
    loss = patch_nce_loss(q, k, batch_size=1, temperature=t)
    assert loss.shape == (2,)
    assert loss.tolist() == pytest.approx(expected, rel=1e-5)
    # as two images of one patch each, a query has no negative but its masked own key: loss ~ e^(-10.6/T)
    assert patch_nce_loss(q, k, batch_size=2, temperature=t).tolist() == pytest.approx([0, 0], abs=1e-6)
    pooled = patch_nce_loss(q, k, 2, t, negatives_from_minibatch=True)
    assert pooled.tolist() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("minibatch", [False, True])
def test_patch_nce_is_the_authors_loss(minibatch):
    generator = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(2 * 16, 8, generator=generator), dim=1).requires_grad_()
    k = F.normalize(torch.randn(2 * 16, 8, generator=generator), dim=1).requires_grad_()
    opt = SimpleNamespace(nce_includes_all_negatives_from_minibatch=minibatch, batch_size=2, nce_T=0.07)
    theirs = PatchNCELoss(opt)(q, k)
    ours = patch_nce_loss(q, k, 2, 0.07, negatives_from_minibatch=minibatch)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    ours.mean().backward()
    assert k.grad is None and q.grad.abs().sum() > 0, "the keys are constants"
    other = patch_nce_loss(q, k, 2, 0.07, negatives_from_minibatch=not minibatch)
    assert (other - theirs).abs().max() > 1e-3, "the negatives' source is visible"


# ------------------------------------------------------------------------------ one training step
TINY = {
    "generator": {"name": "antialiased_resnet", "num_blocks": 5, "base_channels": 4},  # layer 16 = block 4
    "discriminator": {"base_channels": 4, "num_layers": 2},
    "num_patches": 16,
    "patch_width": 32,  # narrower heads can output a zero row, whose L2 norm (theirs too) has a NaN gradient
}
STEP_SEEDS = {"cut": 3, "fastcut": 3}
"""NumPy seeds of the parity runs: the patch positions, and FastCUT's coins (tails, then heads). Adam's first
step moves each weight by about +-LR whatever its gradient's size, so a weight whose gradient is rounding
noise lands 2 LR apart on the two sides: FastCUT's seed 1 has one such weight of 2304 in a residual block
(all other gradients agree to 1e-6)."""


def reference_run(trainer, batches, mode: str, d_first: bool = True) -> tuple[CUTModel, list[bool]]:
    task = trainer.task
    opt = cut_options(mode, len(batches[0]["A"]), task.nce_layers, task.num_patches)
    model = CUTModel(opt, *authors_networks(task, batches[0]["A"]))
    np.random.seed(STEP_SEEDS[mode])
    torch.manual_seed(5)
    flips = []
    for batch in batches:
        model.set_input(batch)
        if d_first:
            model.optimize_parameters()
        else:  # G and F, then D on the same translation: the order the trainer uses for CycleGAN
            model.forward()
            set_requires_grad([model.netD], False)
            for optimizer in (model.optimizer_G, model.optimizer_F):
                optimizer.zero_grad()
            model.compute_G_loss().backward()
            model.optimizer_G.step(), model.optimizer_F.step()
            set_requires_grad([model.netD], True)
            model.optimizer_D.zero_grad()
            model.compute_D_loss().backward()
            model.optimizer_D.step()
        flips.append(bool(getattr(model, "flipped_for_equivariance", False)))
    return model, flips


def heads_difference(task, netF: PatchSampleF) -> float:
    theirs = netF.state_dict()
    return max(
        (v - theirs[re.sub(r"^heads\.(\d+)\.", r"mlp_\1.", k)]).abs().max().item()
        for k, v in task.patch_sampler.state_dict().items()
    )


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_a_step_is_the_authors_optimize_parameters(tmp_path, mode):
    generator = torch.Generator().manual_seed(2)
    batches = [{"A": images(2, 16, generator), "B": images(2, 16, generator)} for _ in range(2)]
    trainer = trainer_for(mode, tmp_path, TINY, batches, {"domains": ["A", "B"]})
    assert [u.group for u in trainer.schedule] == ["discriminator", "generator"]
    assert trainer.config.train.init == "xavier"
    reference, flips = reference_run(trainer, batches, mode)
    generator_first, _ = reference_run(trainer, batches, mode, d_first=False)
    np.random.seed(STEP_SEEDS[mode])
    logged = our_steps(trainer, batches, per_step=1, seed=5)

    task = trainer.task
    differences = {
        "G": max_difference(task.generator, reference.netG),
        "D": max_difference(task.discriminator, reference.netD),
        "F": heads_difference(task, reference.netF),
    }
    print(f"{mode} parity: weights " + ", ".join(f"{k} {v:.3g}" for k, v in differences.items()))
    assert max(differences.values()) < TOLERANCE
    assert flips == ([False, True] if mode == "fastcut" else [False, False])
    last, lambda_nce = logged[-1], trainer.config.loss_weights["nce"]
    assert lambda_nce == (10.0 if mode == "fastcut" else 1.0)
    assert last["G/nce"] * lambda_nce == pytest.approx(reference.loss_NCE_both.item(), rel=1e-5)
    assert last["G/adv"] == pytest.approx(reference.loss_G_GAN.item(), rel=1e-5)
    assert last["D/adv"] == pytest.approx(reference.loss_D.item(), rel=1e-5)
    other_order = generator_first.loss_G_GAN.item()
    print(f"{mode}: G/adv {last['G/adv']:.6f}, {other_order:.6f} against the D before its update")
    assert other_order != pytest.approx(last["G/adv"], rel=1e-4), "the order is visible"


# ------------------------------------------------------------------------------ FastCUT's flips
def tiny_task(name: str):
    config = build_config(TASKS.get(name).default_config, {"model": TINY})
    task = TASKS.build({"name": name, **config.model})
    task.set_loss_weights(config.loss_weights)
    return task


def test_fastcut_flips_the_inputs_and_the_features_back(monkeypatch):
    task = tiny_task("fastcut")
    generator = torch.Generator().manual_seed(3)
    batch = {"A": images(2, 16, generator), "B": images(2, 16, generator)}
    monkeypatch.setattr(np.random, "random", lambda: 0.25)  # heads
    outputs = task(batch)
    assert bool(outputs["flipped"]) and "idt_b" not in outputs
    with torch.no_grad():
        torch.testing.assert_close(outputs["fake_b"], task.generator(torch.flip(batch["A"], [3])))
        assert not torch.allclose(outputs["fake_b"], task.generator(batch["A"]), atol=1e-4)
    monkeypatch.setattr(np.random, "random", lambda: 0.75)  # tails, for any new batch
    assert bool(task(batch)["flipped"]), "the second pass over a batch keeps its coin"
    assert not bool(task({k: v.clone() for k, v in batch.items()})["flipped"])

    source, translation = batch["A"], outputs["fake_b"]
    np.random.seed(0)
    flipped = task.nce(source, translation, flipped=True)
    np.random.seed(0)
    queries = [torch.flip(q, [3]) for q in encoder_features(task.encoder, translation, task.nce_layers)]
    keys, positions = task.patch_sampler(encoder_features(task.encoder, source, task.nce_layers), 16)
    queries, _ = task.patch_sampler(queries, 16, positions)
    by_hand = sum(patch_nce_loss(q, k, 2).mean() for q, k in zip(queries, keys)) / 5
    torch.testing.assert_close(flipped, by_hand)
    np.random.seed(0)
    assert (task.nce(source, translation, flipped=False) - flipped).abs() > 1e-4


def test_the_coin_is_fair_in_training_and_never_thrown_otherwise():
    fast, cut = tiny_task("fastcut"), tiny_task("cut")
    np.random.seed(0)
    heads = sum(fast.flipped(torch.zeros(1)) for _ in range(400))
    assert 160 < heads < 240
    state = np.random.get_state()[1].copy()
    fast.eval()
    assert not any(fast.flipped(torch.zeros(1)) for _ in range(20))
    assert not any(cut.flipped(torch.zeros(1)) for _ in range(20))
    assert np.array_equal(np.random.get_state()[1], state), "no draw outside FastCUT's training"


# ------------------------------------------------------------------------------ the shared paths
def tiny_layers(root, steps: int = 4, **model) -> list[dict]:
    data = {"root": str(root), "domains": ["photo", "anime"], "image_size": TINY_SIZE}
    data |= {"load_size": TINY_SIZE + 4, "num_workers": 0}
    return [{"data": data, "model": {**TINY, **model}, "train": tiny_train(steps)}]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("data") / "demo", layout="unaligned", num_train=4, num_test=2, size=TINY_SIZE
    )


def test_cut_trains_and_its_run_translates_in_its_direction(tmp_path, demo_root):
    run = train("cut", overrides=tiny_layers(demo_root, direction="b2a"), run_dir=tmp_path / "run")
    lines = (run / "log.jsonl").read_text().splitlines()
    assert lines and all(name in lines[-1] for name in ('"G/nce"', '"G/adv"', '"D/adv"'))
    loaded = load_export(run, None, (IMAGE_TO_IMAGE,))
    assert loaded.export.options == {"direction": "b2a", "source": "anime", "target": "photo"}
    x = torch.rand(2, 3, TINY_SIZE, TINY_SIZE) * 2 - 1
    y = Translator.from_run(run)(x)
    assert y.shape == x.shape and y.abs().max() <= 1 and not torch.allclose(x, y, atol=0.1)
    with torch.no_grad():
        torch.testing.assert_close(y, loaded.module(x))
    assert sorted(p.name for p in (run / "samples").iterdir())


def test_fastcut_resumes_bit_exactly(tmp_path, demo_root):
    assert_resuming_changes_nothing(resolve_config("fastcut", overrides=tiny_layers(demo_root)), tmp_path)


def test_the_direction_flag_reaches_cut_on_unpaired_data(tmp_path, demo_root):
    layers = tiny_layers(demo_root, steps=1)
    layers[0]["data"]["direction"] = "b2a"  # what `translate train cut --direction b2a` sets
    run = train("cut", overrides=layers, run_dir=tmp_path / "flag")
    assert load_export(run, None, (IMAGE_TO_IMAGE,)).export.options["direction"] == "b2a"
    layers[0]["model"]["direction"] = "a2b"  # model.direction, when given, wins
    run = train("cut", overrides=layers, run_dir=tmp_path / "model")
    assert load_export(run, None, (IMAGE_TO_IMAGE,)).export.options["direction"] == "a2b"
