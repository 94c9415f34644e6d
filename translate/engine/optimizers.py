"""Optimizers and parameter constraints by name, built per parameter group from ``optim.GROUP`` specs.

A group's spec is ``{name, lr, ..., clip_grad_norm, constraints}``: ``name`` picks the optimizer
(``adam``, ``adamw``, ``rmsprop``, ``sgd``), the other keys are its options; ``train.lr`` and
``train.betas`` fill ``lr`` and ``betas`` when the spec leaves them out and the optimizer takes them.
``clip_grad_norm`` clips the group's gradient norm before each step; ``constraints`` (names or
``{name, ...}`` specs) run on the group's modules after each step (WGAN's weight clipping).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from translate.errors import ConfigError
from translate.registry import CONSTRAINTS, OPTIMIZERS, accepted_kwargs

if TYPE_CHECKING:
    from translate.tasks.base import Update

Params = Iterable[nn.Parameter]


def _fused(params: list[nn.Parameter]) -> bool | None:
    """Fused kernels where torch has them (CPU and CUDA tensors); None lets torch choose elsewhere."""
    return True if params and all(p.device.type in ("cpu", "cuda") for p in params) else None


@OPTIMIZERS.register("adam")
def adam(
    params: Params,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba); ``weight_decay`` is the L2 term added to the gradient, as in the papers' code."""
    return _adam_family(torch.optim.Adam, params, lr, betas, eps, weight_decay)


@OPTIMIZERS.register("adamw")
def adamw(
    params: Params,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay."""
    return _adam_family(torch.optim.AdamW, params, lr, betas, eps, weight_decay)


def _adam_family(
    optimizer: type[torch.optim.Optimizer], params: Params, lr: float, betas: tuple, eps: float, decay: float
) -> torch.optim.Optimizer:
    params = list(params)
    return optimizer(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=decay, fused=_fused(params))


@OPTIMIZERS.register("rmsprop")
def rmsprop(
    params: Params,
    lr: float = 5e-5,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """RMSprop (WGAN's optimizer, lr 5e-5)."""
    return torch.optim.RMSprop(
        params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay
    )


@OPTIMIZERS.register("sgd")
def sgd(
    params: Params,
    lr: float = 1e-2,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Stochastic gradient descent, with optional (Nesterov) momentum."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


@CONSTRAINTS.register("clip_weights")
def clip_weights(value: float = 0.01) -> Callable[[list[nn.Module]], None]:
    """Clamp every parameter to ``[-value, value]`` after each step (WGAN, Arjovsky et al.)."""
    if value <= 0:
        raise ConfigError(f"clip_weights needs a positive value; got {value!r}")

    def apply(modules: list[nn.Module]) -> None:
        with torch.no_grad():
            for p in unique_parameters(modules):
                p.clamp_(-value, value)

    return apply


def unique_parameters(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    """Parameters of several modules, each once (networks may share layers, as in UNIT)."""
    seen: dict[int, nn.Parameter] = {}
    for module in modules:
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


@dataclass
class OptimizerGroup:
    """One parameter group's optimizer, with what runs around its step."""

    name: str
    modules: list[nn.Module]
    optimizer: torch.optim.Optimizer
    clip_grad_norm: float | None = None
    constraints: list[Callable[[list[nn.Module]], None]] = field(default_factory=list)
    parameters: list[nn.Parameter] = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = [p for group in self.optimizer.param_groups for p in group["params"]]

    def step(self) -> None:
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.clip_grad_norm)
        self.optimizer.step()
        for constraint in self.constraints:
            constraint(self.modules)

    def set_lr(self, factor: float) -> None:
        """Set every param group's LR to its base LR (``initial_lr``) times ``factor``."""
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor


def build_optimizer_groups(
    groups: Mapping[str, list[nn.Module]], specs: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, OptimizerGroup]:
    """One optimizer per group, each parameter in exactly one group (shared modules are optimised once).

    ``specs`` maps group names to optimizer specs (unknown groups are a ConfigError); ``defaults``
    (``lr``, ``betas``) fill the options a spec leaves out when its optimizer accepts them.
    """
    unknown = set(specs) - set(groups)
    if unknown:
        raise ConfigError(
            f"optim: unknown parameter group(s) {', '.join(sorted(unknown))}. This task has: "
            f"{', '.join(groups)}"
        )
    claimed: dict[int, str] = {}
    built = {}
    for name, modules in groups.items():
        spec = specs.get(name) or {}
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"optim.{name} must be a mapping like {{name: adam, lr: 2e-4}}; got {spec!r}")
        spec = dict(spec)
        clip = spec.pop("clip_grad_norm", None)
        constraints = spec.pop("constraints", None) or []
        spec.setdefault("name", "adam")
        accepted = accepted_kwargs(OPTIMIZERS.get(spec["name"])) or []
        options = {k: v for k, v in defaults.items() if k in accepted and k not in spec}
        params = []
        for p in unique_parameters(modules):
            if claimed.setdefault(id(p), name) != name:
                raise ConfigError(f"a parameter is in both optimizer groups {claimed[id(p)]} and {name}")
            params.append(p)
        for key in ("lr", "weight_decay"):
            value = {**options, **spec}.get(key)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ConfigError(f"optim.{name}.{key} must be a number >= 0; got {value!r}")
        if clip is not None and (not isinstance(clip, int | float) or clip <= 0):
            raise ConfigError(f"optim.{name}.clip_grad_norm must be a positive number; got {clip!r}")
        optimizer = OPTIMIZERS.build(spec, params=params, **options)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        built[name] = OptimizerGroup(
            name,
            list(modules),
            optimizer,
            clip_grad_norm=clip,
            constraints=[
                CONSTRAINTS.build(c)
                for c in ([constraints] if isinstance(constraints, str | dict) else constraints)
            ],
        )
    return built


def describe_schedule(schedule: list[Update], optimizers: dict[str, OptimizerGroup]) -> str:
    """``discriminator x5 (RMSprop, lr 5e-05, clip_weights), then generator x1 (Adam, lr 0.0002)``."""
    parts = []
    for update in schedule:
        group = optimizers[update.group]
        extras = [f"lr {group.optimizer.defaults['lr']:g}"]
        if group.clip_grad_norm is not None:
            extras.append(f"grad norm <= {group.clip_grad_norm:g}")
        extras += [getattr(c, "__qualname__", "constraint").split(".")[0] for c in group.constraints]
        name = type(group.optimizer).__name__
        parts.append(f"{update.group} x{update.repeats} ({name}, {', '.join(extras)})")
    return ", then ".join(parts)
