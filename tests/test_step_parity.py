"""Step parity with the authors' training code: the trainer's pix2pix, CycleGAN and StarGAN steps leave the
same weights as the references' own update code, from the same weights and batches.

Each reference is re-expressed here from the published code, as tests/test_junyanz_import.py re-expresses
the networks (which it shows equal to ours, so the references here run copies of our networks):

- junyanz/pytorch-CycleGAN-and-pix2pix ``models/pix2pix_model.py`` and ``models/cycle_gan_model.py``:
  ``optimize_parameters`` with ``networks.GANLoss`` (BCE-with-logits / MSE, means), ``nn.L1Loss``, the
  ``util/image_pool.ImagePool`` (its first queries return the fakes as they are) and
  ``Adam(lr, betas=(0.5, 0.999))`` per side;
- yunjey/stargan ``solver.py``: ``train()``'s iteration (critic on real, fake, classification and the
  gradient penalty of ``grad_outputs=ones``, then the generator every ``n_critic`` iterations on that
  iteration's ``label_trg``), ``classification_loss`` and ``gradient_penalty``.

Our side is the real code path: ``Trainer`` built from the task's config, ``train_step`` on the same
batches, with the same global random state (dropout, target permutation, penalty mixing weights). Two
steps each (Adam's second step depends on the gradients' sizes, not only their signs), and a check that
the previous recipes (G before D in pix2pix, the per-sample mean penalty and a new target permutation
for StarGAN's generator) leave weights measurably different, so the comparison can fail.
"""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_LABELS
from torch import nn
from torch.utils.data import Dataset

import translate.api  # noqa: F401  (registers every component)
from translate.config import build_config
from translate.engine.trainer import Trainer
from translate.registry import TASKS

TOLERANCE = 1e-5
LR = 2e-4
MEASURABLE = 1e-4
"""How far apart a changed recipe leaves the weights at least (the LR is 2e-4: Adam's first step)."""


# ----------------------------------------------------------------------- junyanz, re-expressed
class GANLoss(nn.Module):
    """junyanz ``networks.GANLoss``: the target tensor expanded to the prediction, then the mode's loss."""

    def __init__(self, gan_mode: str) -> None:
        super().__init__()
        self.register_buffer("real_label", torch.tensor(1.0))
        self.register_buffer("fake_label", torch.tensor(0.0))
        self.loss = nn.MSELoss() if gan_mode == "lsgan" else nn.BCEWithLogitsLoss()

    def __call__(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = self.real_label if target_is_real else self.fake_label
        return self.loss(prediction, target.expand_as(prediction))


class ImagePool:
    """junyanz ``util/image_pool.ImagePool`` (Python's ``random`` once it is full)."""

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self.num_imgs = 0
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs = self.num_imgs + 1
                self.images.append(image)
                return_images.append(image)
            elif random.uniform(0, 1) > 0.5:
                random_id = random.randint(0, self.pool_size - 1)
                tmp = self.images[random_id].clone()
                self.images[random_id] = image
                return_images.append(tmp)
            else:
                return_images.append(image)
        return torch.cat(return_images, 0)


def set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
    for net in nets:
        for param in net.parameters():
            param.requires_grad = requires_grad


def adam(*nets: nn.Module) -> torch.optim.Adam:
    return torch.optim.Adam([p for net in nets for p in net.parameters()], lr=LR, betas=(0.5, 0.999))


class Pix2PixModel:
    """``pix2pix_model.Pix2PixModel`` in training: ``--gan_mode vanilla --pool_size 0 --lambda_L1 100``."""

    def __init__(self, netG: nn.Module, netD: nn.Module, d_first: bool = True) -> None:
        self.netG, self.netD, self.d_first = netG, netD, d_first
        self.fake_AB_pool = ImagePool(0)
        self.criterionGAN = GANLoss("vanilla")
        self.criterionL1 = nn.L1Loss()
        self.optimizer_G, self.optimizer_D = adam(netG), adam(netD)

    def set_input(self, batch: dict) -> None:
        self.real_A, self.real_B = batch["input"], batch["target"]

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def backward_D(self) -> None:
        fake_AB = self.fake_AB_pool.query(torch.cat((self.real_A, self.fake_B), 1))
        pred_fake = self.netD(fake_AB.detach())
        self.loss_D_fake = self.criterionGAN(pred_fake, False)
        real_AB = torch.cat((self.real_A, self.real_B), 1)
        pred_real = self.netD(real_AB)
        self.loss_D_real = self.criterionGAN(pred_real, True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        self.loss_D.backward()

    def backward_G(self) -> None:
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        pred_fake = self.netD(fake_AB)
        self.loss_G_GAN = self.criterionGAN(pred_fake, True)
        self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * 100.0
        self.loss_G = self.loss_G_GAN + self.loss_G_L1
        self.loss_G.backward()

    def update_D(self) -> None:
        set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad()
        self.backward_D()
        self.optimizer_D.step()

    def update_G(self) -> None:
        set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()

    def optimize_parameters(self) -> None:
        self.forward()
        if self.d_first:  # the published order
            self.update_D()
            self.update_G()
        else:  # the toolkit's previous order, for the can-it-fail check
            self.update_G()
            self.update_D()


class CycleGANModel:
    """``cycle_gan_model.CycleGANModel`` in training: lsgan, ``lambda_A = lambda_B = 10``,
    ``lambda_identity 0.5``. G_A = our g_ab, G_B = g_ba, D_A (judges B) = d_b, D_B (judges A) = d_a."""

    def __init__(self, G_A, G_B, D_A, D_B, pool_size: int) -> None:
        self.netG_A, self.netG_B, self.netD_A, self.netD_B = G_A, G_B, D_A, D_B
        self.fake_A_pool, self.fake_B_pool = ImagePool(pool_size), ImagePool(pool_size)
        self.criterionGAN = GANLoss("lsgan")
        self.criterionCycle, self.criterionIdt = nn.L1Loss(), nn.L1Loss()
        self.optimizer_G, self.optimizer_D = adam(G_A, G_B), adam(D_A, D_B)
        self.lambda_A = self.lambda_B = 10.0
        self.lambda_idt = 0.5

    def set_input(self, batch: dict) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def backward_D_basic(self, netD, real, fake):
        pred_real = netD(real)
        loss_D_real = self.criterionGAN(pred_real, True)
        pred_fake = netD(fake.detach())
        loss_D_fake = self.criterionGAN(pred_fake, False)
        loss_D = (loss_D_real + loss_D_fake) * 0.5
        loss_D.backward()
        return loss_D

    def backward_G(self) -> None:
        self.idt_A = self.netG_A(self.real_B)
        self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * self.lambda_B * self.lambda_idt
        self.idt_B = self.netG_B(self.real_A)
        self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * self.lambda_A * self.lambda_idt
        self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
        self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * self.lambda_A
        self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * self.lambda_B
        self.loss_G = (
            self.loss_G_A
            + self.loss_G_B
            + self.loss_cycle_A
            + self.loss_cycle_B
            + self.loss_idt_A
            + self.loss_idt_B
        )
        self.loss_G.backward()

    def optimize_parameters(self) -> None:
        self.forward()
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))
        self.optimizer_D.step()


# ------------------------------------------------------------------------ yunjey, re-expressed
class Solver:
    """yunjey/stargan ``solver.Solver.train`` on CelebA-style attribute vectors: ``lambda_cls 1``,
    ``lambda_rec 10``, ``lambda_gp 10``, ``Adam(g_lr = d_lr, [beta1 0.5, beta2 0.999])``.

    ``penalty="mean"`` and ``new_targets=True`` are the toolkit's previous recipe (the can-it-fail check)."""

    def __init__(self, G, D, n_critic: int, penalty: str = "sum", new_targets: bool = False) -> None:
        self.G, self.D, self.n_critic = G, D, n_critic
        self.lambda_cls, self.lambda_rec, self.lambda_gp = 1.0, 10.0, 10.0
        self.g_optimizer = torch.optim.Adam(self.G.parameters(), LR, [0.5, 0.999])
        self.d_optimizer = torch.optim.Adam(self.D.parameters(), LR, [0.5, 0.999])
        self.penalty, self.new_targets = penalty, new_targets

    def reset_grad(self) -> None:
        self.g_optimizer.zero_grad()
        self.d_optimizer.zero_grad()

    def gradient_penalty(self, y, x):
        """Compute gradient penalty: (L2_norm(dy/dx) - 1)**2."""
        if self.penalty == "mean":
            y = y.flatten(1).mean(1)
        weight = torch.ones(y.size())
        dydx = torch.autograd.grad(
            outputs=y, inputs=x, grad_outputs=weight, retain_graph=True, create_graph=True, only_inputs=True
        )[0]
        dydx = dydx.view(dydx.size(0), -1)
        dydx_l2norm = torch.sqrt(torch.sum(dydx**2, dim=1))
        return torch.mean((dydx_l2norm - 1) ** 2)

    def classification_loss(self, logit, target):
        return F.binary_cross_entropy_with_logits(logit, target, reduction="sum") / logit.size(0)

    def iteration(self, i: int, x_real: torch.Tensor, label_org: torch.Tensor) -> dict[str, float]:
        # 1. Preprocess input data
        rand_idx = torch.randperm(label_org.size(0))
        label_trg = label_org[rand_idx]
        c_org = label_org.clone()
        c_trg = label_trg.clone()
        # 2. Train the discriminator
        out_src, out_cls = self.D(x_real)
        d_loss_real = -torch.mean(out_src)
        d_loss_cls = self.classification_loss(out_cls, label_org)
        x_fake = self.G(x_real, c_trg)
        out_src, out_cls = self.D(x_fake.detach())
        d_loss_fake = torch.mean(out_src)
        alpha = torch.rand(x_real.size(0), 1, 1, 1)
        x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
        out_src, _ = self.D(x_hat)
        d_loss_gp = self.gradient_penalty(out_src, x_hat)
        d_loss = d_loss_real + d_loss_fake + self.lambda_cls * d_loss_cls + self.lambda_gp * d_loss_gp
        self.reset_grad()
        d_loss.backward()
        self.d_optimizer.step()
        loss = {
            "D/adv": (d_loss_real + d_loss_fake).item(),
            "D/cls": d_loss_cls.item(),
            "D/gp": d_loss_gp.item(),
        }
        # 3. Train the generator
        if (i + 1) % self.n_critic == 0:
            if self.new_targets:
                label_trg = label_org[torch.randperm(label_org.size(0))]
                c_trg = label_trg.clone()
            x_fake = self.G(x_real, c_trg)
            out_src, out_cls = self.D(x_fake)
            g_loss_fake = -torch.mean(out_src)
            g_loss_cls = self.classification_loss(out_cls, label_trg)
            x_reconst = self.G(x_fake, c_org)
            g_loss_rec = torch.mean(torch.abs(x_real - x_reconst))
            g_loss = g_loss_fake + self.lambda_rec * g_loss_rec + self.lambda_cls * g_loss_cls
            self.reset_grad()
            g_loss.backward()
            self.g_optimizer.step()
            loss.update({"G/adv": g_loss_fake.item(), "G/rec": g_loss_rec.item(), "G/cls": g_loss_cls.item()})
        return loss


# ------------------------------------------------------------------------------- our trainer
class Batches(Dataset):
    """Fixed batches (the trainer reads them through ``train_step``); ``task_kwargs`` as a dataset gives."""

    def __init__(self, batches: list[dict], kwargs: dict) -> None:
        self.batches, self.kwargs = batches, kwargs

    def __len__(self) -> int:
        return sum(len(next(iter(b.values()))) for b in self.batches)

    def __getitem__(self, item):
        raise AssertionError("the parity tests hand batches to train_step")

    def task_kwargs(self) -> dict:
        return {"in_channels": 3, "out_channels": 3, **self.kwargs}


def trainer_for(task: str, tmp_path, model: dict, batches: list[dict], kwargs: dict, **train) -> Trainer:
    layers = {
        "task": task,
        "model": model,
        "data": {"num_workers": 0},
        "train": {"steps": 100, "batch_size": 2, "lr": LR, "betas": [0.5, 0.999], **train},
    }
    config = build_config(TASKS.get(task).default_config, layers)
    return Trainer(config, tmp_path / task, dataset=Batches(batches, kwargs))


def images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=generator) * 2 - 1


def inert_elements(network: nn.Module) -> dict[str, torch.Tensor]:
    """Masks of the weights no output depends on: the gradient there is 0 in exact arithmetic, rounding
    noise (~1e-10) in practice, and Adam divides it by its own size, so those weights take LR-sized steps of
    random sign on either side. Two kinds: a conv bias right before an instance norm without affine shift
    (junyanz's ResNet and PatchGAN, which add a bias when the norm has none: the norm subtracts it again),
    and the centre tap of StarGAN's label channels in the first conv (a label map is constant, so that tap
    adds a constant to each channel, which the instance norm after it subtracts)."""
    masks: dict[str, torch.Tensor] = {}
    for prefix, sequence in network.named_modules():
        if not isinstance(sequence, nn.Sequential):
            continue
        children = list(sequence.named_children())
        for (name, layer), (_, following) in zip(children, children[1:]):
            conv = isinstance(layer, nn.Conv2d | nn.ConvTranspose2d) and layer.bias is not None
            if conv and isinstance(following, nn.InstanceNorm2d) and not following.affine:
                masks[f"{prefix}.{name}.bias".lstrip(".")] = torch.ones_like(layer.bias, dtype=torch.bool)
    if hasattr(network, "num_labels"):  # StarGAN's generator: image channels, then the label maps
        first = network.main[0]
        mask = torch.zeros_like(first.weight, dtype=torch.bool)
        k = first.kernel_size[0] // 2
        mask[:, network.in_channels :, k, k] = True
        masks["main.0.weight"] = mask
    return masks


def max_difference(ours: nn.Module, reference: nn.Module) -> float:
    """Largest absolute difference over the state dicts (weights and buffers such as running statistics),
    leaving out the ``inert_elements``."""
    theirs, inert = reference.state_dict(), inert_elements(ours)
    assert set(ours.state_dict()) == set(theirs)
    differences = []
    for key, value in ours.state_dict().items():
        difference = (value.double() - theirs[key].double()).abs()
        if key in inert:
            difference = difference[~inert[key]]
        differences.append(difference.max().item() if difference.numel() else 0.0)
    return max(differences)


def output_difference(ours: nn.Module, reference: nn.Module, *inputs: torch.Tensor) -> float:
    """Largest absolute difference of the two networks' outputs (eval mode: no dropout, running
    statistics), which the inert weights do not move."""
    modes = ours.training, reference.training
    ours.eval(), reference.eval()
    with torch.no_grad():
        a, b = ours(*inputs), reference(*inputs)
    ours.train(modes[0]), reference.train(modes[1])
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def our_steps(trainer: Trainer, batches: list[dict], per_step: int, seed: int) -> list[dict[str, float]]:
    """``train_step`` over ``batches`` (``per_step`` batches each) from the global seed ``seed``."""
    torch.manual_seed(seed)
    logged = []
    stream = iter(batches)
    for _ in range(len(batches) // per_step):
        trainer._set_learning_rate()
        logged.append({k: v.item() for k, v in trainer.train_step(stream).items()})
        trainer.step += 1
    return logged


# ------------------------------------------------------------------------------------- pix2pix
PIX2PIX = {
    # 64 px so that the U-Net has a dropout layer (junyanz puts it in the num_downs - 5 innermost blocks)
    "generator": {"name": "unet", "num_downs": 6, "base_channels": 4, "norm": "batch", "dropout": True},
    "discriminator": {"name": "patchgan", "base_channels": 4, "num_layers": 2, "norm": "batch"},
}


def pix2pix_batches() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [{"input": images(2, 64, generator), "target": images(2, 64, generator)} for _ in range(2)]


def pix2pix_reference(trainer: Trainer, batches: list[dict], seed: int, d_first: bool = True) -> Pix2PixModel:
    model = Pix2PixModel(
        copy.deepcopy(trainer.task.generator), copy.deepcopy(trainer.task.discriminator), d_first
    )
    torch.manual_seed(seed)
    for batch in batches:
        model.set_input(batch)
        model.optimize_parameters()
    return model


def test_pix2pix_step_is_junyanz_optimize_parameters(tmp_path):
    batches = pix2pix_batches()
    trainer = trainer_for("pix2pix", tmp_path, PIX2PIX, batches, {"direction": "a2b"})
    assert [u.group for u in trainer.schedule] == ["discriminator", "generator"]
    assert any(isinstance(m, nn.Dropout) for m in trainer.task.generator.modules())
    reference = pix2pix_reference(trainer, batches, seed=3)
    previous_order = pix2pix_reference(trainer, batches, seed=3, d_first=False)
    logged = our_steps(trainer, batches, per_step=1, seed=3)

    g = max_difference(trainer.task.generator, reference.netG)
    d = max_difference(trainer.task.discriminator, reference.netD)
    x = batches[0]["input"]
    g_out = output_difference(trainer.task.generator, reference.netG, x)
    d_out = output_difference(trainer.task.discriminator, reference.netD, torch.cat([x, x], 1))
    print(f"pix2pix parity: weights G {g:.3g}, D {d:.3g}; outputs G {g_out:.3g}, D {d_out:.3g}")
    assert max(g, d, g_out, d_out) < TOLERANCE
    last = logged[-1]
    assert last["G/l1"] * 100 == pytest.approx(reference.loss_G_L1.item(), rel=1e-5)
    assert last["G/adv"] == pytest.approx(reference.loss_G_GAN.item(), rel=1e-5)
    assert last["D/adv"] == pytest.approx(reference.loss_D.item(), rel=1e-5)
    assert max_difference(previous_order.netG, reference.netG) > MEASURABLE, "the order is visible"


def test_pix2pix_can_keep_the_generator_first_order(tmp_path):
    batches = pix2pix_batches()
    model = {**PIX2PIX, "update_order": "generator_first"}
    trainer = trainer_for("pix2pix", tmp_path, model, batches, {"direction": "a2b"})
    assert [u.group for u in trainer.schedule] == ["generator", "discriminator"]
    # G first reuses the G update's pass for D: one pass per step, as junyanz's single forward
    reference = pix2pix_reference(trainer, batches, seed=4, d_first=False)
    our_steps(trainer, batches, per_step=1, seed=4)
    assert max_difference(trainer.task.generator, reference.netG) < TOLERANCE


# ------------------------------------------------------------------------------------ CycleGAN
def test_cyclegan_step_is_junyanz_optimize_parameters(tmp_path):
    generator = torch.Generator().manual_seed(1)
    batches = [{"A": images(2, 16, generator), "B": images(2, 16, generator)} for _ in range(2)]
    model = {
        "generator": {"name": "resnet", "num_blocks": 2, "base_channels": 4},
        "discriminator": {"base_channels": 4, "num_layers": 2},
        "pool_size": 50,  # two steps of two fakes: the pools return them as they are, as the reference's
    }
    trainer = trainer_for("cyclegan", tmp_path, model, batches, {"domains": ["A", "B"]})
    assert [u.group for u in trainer.schedule] == ["generator", "discriminator"]
    task = trainer.task
    reference = CycleGANModel(*(copy.deepcopy(m) for m in (task.g_ab, task.g_ba, task.d_b, task.d_a)), 50)
    torch.manual_seed(5)
    for batch in batches:
        reference.set_input(batch)
        reference.optimize_parameters()
    logged = our_steps(trainer, batches, per_step=1, seed=5)

    pairs = {
        "g_ab": reference.netG_A,
        "g_ba": reference.netG_B,
        "d_b": reference.netD_A,
        "d_a": reference.netD_B,
    }
    differences = {name: max_difference(getattr(task, name), ref) for name, ref in pairs.items()}
    x = batches[0]["A"]
    outputs = {name: output_difference(getattr(task, name), ref, x) for name, ref in pairs.items()}
    print("CycleGAN parity: weights " + ", ".join(f"{k} {v:.3g}" for k, v in differences.items()))
    print("CycleGAN parity: outputs " + ", ".join(f"{k} {v:.3g}" for k, v in outputs.items()))
    assert max(differences.values()) < TOLERANCE and max(outputs.values()) < TOLERANCE
    last = logged[-1]
    assert last["G/cycle"] * 10 == pytest.approx(
        (reference.loss_cycle_A + reference.loss_cycle_B).item(), rel=1e-5
    )
    assert last["G/identity"] * 5 == pytest.approx(
        (reference.loss_idt_A + reference.loss_idt_B).item(), rel=1e-5
    )
    assert last["D/adv"] == pytest.approx((reference.loss_D_A + reference.loss_D_B).item(), rel=1e-5)


# ------------------------------------------------------------------------------------- StarGAN
def stargan_run(tmp_path, n_critic: int):
    generator = torch.Generator().manual_seed(2)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    batches = [  # two steps: 2 * n_critic iterations of the reference
        {"image": images(4, 32, generator), "label": labels[torch.randperm(4, generator=generator)]}
        for _ in range(2 * n_critic)
    ]
    model = {
        "generator": {"base_channels": 4, "num_blocks": 1},
        "discriminator": {"base_channels": 4, "num_layers": 3},  # a 4x4 patch map: the reductions differ
    }
    kwargs = {"labels": TINY_LABELS, "image_size": 32}
    trainer = trainer_for("stargan", tmp_path, model, batches, kwargs, batch_size=4, n_critic=n_critic)
    return trainer, batches


def yunjey(trainer: Trainer, batches: list[dict], n_critic: int, seed: int, **changes) -> tuple[Solver, list]:
    solver = Solver(
        copy.deepcopy(trainer.task.generator), copy.deepcopy(trainer.task.discriminator), n_critic, **changes
    )
    torch.manual_seed(seed)
    losses = [solver.iteration(i, b["image"], b["label"]) for i, b in enumerate(batches)]
    return solver, losses


@pytest.mark.parametrize("n_critic", [1, 2])
def test_stargan_step_is_yunjeys_train_iterations(tmp_path, n_critic):
    trainer, batches = stargan_run(tmp_path, n_critic)
    assert trainer.task.discriminator(batches[0]["image"])[0].shape[-2:] == (4, 4)
    solver, losses = yunjey(trainer, batches, n_critic, seed=6)
    previous_penalty, _ = yunjey(trainer, batches, n_critic, seed=6, penalty="mean")
    previous_targets, _ = yunjey(trainer, batches, n_critic, seed=6, new_targets=True)
    logged = our_steps(trainer, batches, per_step=n_critic, seed=6)

    g = max_difference(trainer.task.generator, solver.G)
    d = max_difference(trainer.task.discriminator, solver.D)
    x, c = batches[0]["image"], batches[0]["label"]
    g_out = output_difference(trainer.task.generator, solver.G, x, c)
    d_out = output_difference(trainer.task.discriminator, solver.D, x)
    print(
        f"StarGAN parity (n_critic {n_critic}): weights G {g:.3g}, D {d:.3g}; "
        f"outputs G {g_out:.3g}, D {d_out:.3g}"
    )
    assert max(g, d, g_out, d_out) < TOLERANCE
    last = losses[-1]
    for name in ("G/adv", "G/cls", "G/rec"):
        assert logged[-1][name] == pytest.approx(last[name], rel=1e-5, abs=1e-6), name
    critic = losses[-n_critic:]  # our step logs the mean over its critic updates
    for name in ("D/adv", "D/cls", "D/gp"):
        mean = sum(c[name] for c in critic) / n_critic
        assert logged[-1][name] == pytest.approx(mean, rel=1e-5, abs=1e-6), name
    assert max_difference(previous_penalty.D, solver.D) > MEASURABLE, "the reduction is visible"
    assert max_difference(previous_targets.G, solver.G) > MEASURABLE, "the targets are visible"
