"""Config schema (dataclasses), merging config layers and checking them (config files and ``--set``
overrides are read by ``translate.config_files``).

Precedence, lowest first: dataclass defaults < the task's ``default_config`` < YAML file (after its
``_base_`` files) < command-line flags and ``--set key=value``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translate.errors import ConfigError
from translate.labels import HAIR_COLOURS

# The choices of the keys below, each written once here and imported by the code that acts on them.
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "center_square", "none")
"""``data.preprocess`` (translate.data.transforms)."""
LR_SCHEDULES = ("constant", "linear", "step", "cosine")
"""``train.schedule`` (translate.engine.schedules)."""
DECAY_EVERY = ("step", "epoch")
"""``train.decay_every`` (translate.engine.schedules)."""
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal", "default")
"""``train.init`` (translate.layers.init)."""
EVAL_METRICS = ("l1", "psnr", "ssim", "fd", "kid")
"""``train.eval_metrics`` (translate.metrics.scoring.TRAINING_METRICS)."""


@dataclass
class DataConfig:
    root: str | None = None
    """Data folder; None means the current folder, or the built-in demo data when the domains are absent."""
    domains: list[str] | None = None
    """Domain folders under ``root`` (``[photo, anime]``); None reads the layout found there."""
    direction: str = "a2b"
    """``a2b`` or ``b2a``: which side of an aligned pair is the input (facades labels->photo is b2a)."""
    image_size: int = 256
    """Side of the square crop fed to the networks."""
    load_size: int | None = None
    """Resize target before cropping; None means 286/256 of image_size as in pix2pix/CycleGAN."""
    preprocess: str = "resize_and_crop"
    """One of ``PREPROCESS_MODES``: ``resize_and_crop`` (to ``load_size``, then an ``image_size`` crop),
    ``crop``, ``scale_width``, ``scale_width_and_crop``, ``center_square`` or ``none``."""
    flip: bool = True
    """Training: horizontal flip with p=0.5 (an A|B pair flips together)."""
    color_jitter: float = 0.0
    """Training: colour jitter of strength s in [0, 1] on every image: brightness, contrast and saturation
    factors uniform in ``[1 - s, 1 + s]``, hue shifted by up to ``s / 4``, in a random order (torchvision's
    ColorJitter); 0 disables it. pix2pix jitters the input only, never the target (another modality, such as
    labels); CycleGAN jitters A and B independently. One-channel images get brightness and contrast only."""
    augment_on: str = "loader"
    """Where training augmentation runs: ``loader`` (albumentations, per image in the DataLoader workers) or
    ``device`` (the workers only resize per ``preprocess``; the random crop, flip and ``color_jitter`` run
    batched with kornia on ``train.device``). The keys mean the same in both; ``device`` needs images of one
    size after resizing (``crop`` and ``scale_width*`` keep the files' sizes: use one size throughout)."""
    in_channels: int = 3
    out_channels: int = 3
    num_workers: int = 2
    max_images: int | None = None
    """Use at most this many images per domain (quick experiments)."""
    attributes: list[str] | None = None
    """Attribute-file data (StarGAN on CelebA): the attributes to learn, by name; None means every one."""
    exclusive: list[list[str]] = field(default_factory=lambda: [list(HAIR_COLOURS)])
    """Groups of mutually exclusive attributes, one-hot in the labels (CelebA's hair colours)."""
    test_images: int | None = None
    """Attribute-file data: how many images, from the end of the file, are held out for evaluation;
    None means 2000 (StarGAN's split) or a tenth of the file, whichever is smaller."""


@dataclass
class TrainConfig:
    steps: int = 200_000
    batch_size: int = 1
    """Images per batch of one process; with N training processes (torchrun) a batch holds N x this."""
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    schedule: str = "linear"
    """``constant`` | ``linear`` (constant, then to zero over ``decay_steps``) | ``step`` | ``cosine``."""
    decay_steps: int | None = None
    """Linear schedule: steps of decay at the end; None means half of ``steps`` (100+100 epochs)."""
    decay_every: str = "step"
    """When a ``linear`` schedule's factor changes: ``step`` (every step, reaching exactly 0 at the last) or
    ``epoch`` (junyanz/pytorch-CycleGAN-and-pix2pix's ``lr_policy linear``: once per pass over the training
    data, ``1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1)`` in epoch ``e`` counted from 0, so the last
    epoch trains at ``1 / (n_epochs_decay + 1)``, never 0). With ``epoch``, ``steps`` and ``decay_steps`` are
    rounded to whole epochs of ``ceil(images / (batch x batches per step))`` steps."""
    schedule_steps: int | None = None
    """The steps the LR schedule spans (where a linear or cosine decay ends); None means ``steps``.
    ``--resume --keep-schedule`` sets it to the run's original ``steps``, so that extending ``steps`` does
    not move the decay (the extra steps then train at the schedule's final LR)."""
    step_size: int = 50_000
    """Step schedule: multiply the LR by ``gamma`` every ``step_size`` steps."""
    gamma: float = 0.1
    n_critic: int = 1
    """Discriminator steps per generator step (5 for WGAN-GP)."""
    seed: int = 0
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``..."""
    amp: bool = False
    """bf16 autocast over fp32 weights where the device computes bf16 natively (CUDA; a CPU with
    AVX512-BF16 or AMX); ignored with a warning elsewhere, where torch emulates bf16 (slower than fp32)."""
    channels_last: bool = False
    """Networks and images in the channels_last memory format on CUDA (faster convolutions with ``amp``);
    ignored on the CPU, where InstanceNorm2d's backward in channels_last at batch 1 returns wrong input
    gradients (torch 2.14)."""
    tensorboard: bool = False
    """Also write every log line's numbers (losses, LR, evaluation) as TensorBoard scalars to
    ``RUN/tensorboard/`` (``tensorboard --logdir runs``); needs the ``tensorboard`` extra."""
    compile: bool = False
    """``torch.compile`` every trained network (state dicts and checkpoints are unchanged). The first
    steps pay the compilation (tens of seconds per network); on the CPU it needs a C++ compiler and
    measured 0.83x-1.04x of the eager step (docs/RESULTS.md), so it is for GPUs."""
    init: str = "normal"
    """Weight init: ``normal`` | ``xavier`` | ``kaiming`` | ``orthogonal`` | ``default`` (PyTorch's own)."""
    init_gain: float = 0.02
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    """The newest checkpoints kept; 0 keeps every one."""
    on_nan: str = "stop"
    """When a loss or weight becomes NaN or infinite (checked at each log line and before each checkpoint):
    ``stop`` with an error naming the step range and the last good checkpoint, or ``rollback``: reload the
    last good checkpoint, halve the learning rate and go on (at most 3 times from one checkpoint)."""
    num_samples: int = 4
    """Images in each sample grid."""
    eval_every: int | None = None
    """Score the model on a fixed held-out subset every this many steps (and at the last step): the
    ``eval_metrics``, logged to ``log.jsonl`` as ``eval/<metric>`` and printed; None or 0: never."""
    eval_images: int = 64
    """Images of the fixed held-out subset (inputs translated, or noise codes sampled, and as many real
    images as the reference): the same ones at every evaluation."""
    eval_metrics: list[str] | None = None
    """What ``eval_every`` computes: ``l1``, ``psnr``, ``ssim`` (paired data: pix2pix), ``fd``, ``kid``
    (Frechet / kernel distance to real held-out images in the features of ``eval_classifier``, or, without
    one, of a fixed random conv net: logged as ``fd_random`` / ``kid_random``). None: ``l1, psnr, ssim``
    on paired data, else ``fd``."""
    eval_classifier: str | None = None
    """A classifier file from ``translate classifier train``, whose features ``fd`` and ``kid`` use."""
    best_metric: str | None = None
    """Keep the checkpoint with the best value of this evaluation metric as ``checkpoints/best/``
    (``eval/psnr``, ``eval/fd``; a step that improves it also writes its checkpoint); needs ``eval_every``."""
    best_mode: str | None = None
    """``min`` or ``max``: which value of ``best_metric`` is best; None: ``max`` for psnr and ssim, else
    ``min``."""
    ema_decay: float | None = None
    """Keep an exponential moving average of the generator's weights (the ``generator`` optimizer group,
    else the exported networks) with this decay (e.g. 0.999), updated after each generator update; the
    average is what checkpoints export, sample grids show and evaluation scores. None: off."""
    ema_warmup: bool = True
    """The EMA decay after n updates is ``min(ema_decay, (1 + n) / (10 + n))``, so that the average soon
    forgets the initial weights; False: ``ema_decay`` from the first update."""


@dataclass
class Config:
    task: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the task (its networks and options), checked against its signature."""
    loss_weights: dict[str, float] = field(default_factory=dict)
    """Weight of each loss the task returns, by name (the task's defaults, then your overrides)."""
    optim: dict[str, Any] = field(default_factory=dict)
    """Optimizer of each parameter group by group name (``generator``, ``discriminator``):
    ``{name: adam|adamw|rmsprop|sgd, lr, betas, alpha, momentum, weight_decay, clip_grad_norm,
    constraints}``; ``lr`` and ``betas`` default to ``train.lr`` / ``train.betas``, the optimizer to adam."""
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``.

    A dict replaces instead of merging when it says ``_delete_: true``, or when it names another
    component than the one it lands on (``{name: unet_128}`` over ``{name: unet, num_downs: 6}``):
    switching a component by name drops the old component's options.
    """
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        switches = (
            isinstance(value, dict)
            and isinstance(old, dict)
            and value.get("name", old.get("name")) != old.get("name")
        )
        if isinstance(value, dict) and isinstance(old, dict) and not value.get("_delete_") and not switches:
            merged[key] = deep_merge(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = {k: v for k, v in value.items() if k != "_delete_"}
        elif isinstance(value, str) and isinstance(old, dict) and "name" in old:
            merged[key] = {"name": value}  # a bare name replaces a whole spec, as above
        else:
            merged[key] = value
    return merged


_NUMBERS = {int: numbers.Integral, float: numbers.Real}
"""What a value annotated ``int`` / ``float`` may be (an int for a float; never a bool)."""


def fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint``. Lists stand for tuples (YAML has no tuples); a hint
    that cannot be checked from the value alone (``Callable``, ``Iterable[Parameter]``, ...) fits anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arm) for arm in args)
    if origin in (list, tuple) or hint in (list, tuple):
        return isinstance(value, list | tuple) and _items_fit(value, args, fixed=origin is tuple)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, Mapping)
    if hint in _NUMBERS:
        return isinstance(value, _NUMBERS[hint]) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str | Path)
    if hint is typing.Any or not isinstance(hint, type) or origin is not None:
        return True
    return isinstance(value, hint)


def _items_fit(items: list | tuple, args: tuple, fixed: bool) -> bool:
    """A list's or tuple's items against ``list[X]``, ``tuple[X, ...]`` or ``tuple[X, Y]``."""
    if fixed and args and args[-1] is not Ellipsis:
        return len(items) == len(args) and all(map(fits, items, args))
    return not args or all(fits(item, args[0]) for item in items)


def describe(hint: Any) -> str:
    """``hint`` in the words of an error message: ``int``, ``a list``, ``str or a mapping``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(arm) for arm in args)
    if origin in (list, tuple) or hint in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return "a mapping"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def check_arguments(constructor: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    """Each keyword argument must fit the constructor's annotation of it: a one-line ConfigError naming
    ``what`` (``generator 'unet_64'``) and the argument otherwise."""
    target = constructor.__init__ if isinstance(constructor, type) else constructor
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # annotations that name what is not importable: nothing to check
        return
    for name, value in kwargs.items():
        if name in hints and not fits(value, hints[name]):
            raise ConfigError(f"{what}: {name} must be {describe(hints[name])}; got {value!r}")


def _check_type(value: Any, hint: Any, key: str) -> Any:
    """A config value checked against its annotation, as the annotation has it (ints as floats, paths as
    strings)."""
    if not fits(value, hint):
        raise ConfigError(f"{key} must be {describe(hint)}; got {value!r}")
    return _as_annotated(value, hint)


def _as_annotated(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _as_annotated(value, next(arm for arm in args if fits(value, arm)))
    if origin is list:
        return [_as_annotated(item, args[0]) for item in value]
    if hint in (int, float, str):
        return hint(value)
    return value


def _to_dataclass(cls: type, values: dict[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" Did you mean {prefix}{close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config key {prefix}{key!r}.{hint} Known: {', '.join(fields)}")
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _to_dataclass(hints[key], value, f"{key}.")
        else:
            kwargs[key] = _check_type(value, hints[key], prefix + key)
    return cls(**kwargs)


SECTIONS = tuple(
    name
    for name, hint in typing.get_type_hints(Config).items()
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict
)
"""The keys of a config that hold a mapping of keys: ``model``, ``loss_weights``, ``optim``, ``data``,
``train``."""


def check_sections(layer: Mapping[str, Any], where: str) -> None:
    """Each section a config layer gives must be a mapping: ``train: 5`` would otherwise be dropped
    silently by a later layer's ``train: {...}`` (a flag, ``--set``)."""
    for key in SECTIONS:
        if key in layer and not isinstance(layer[key], dict):
            raise ConfigError(
                f"{where}config key {key!r} must be a mapping ({key}: {{...}}); got {layer[key]!r}"
            )


def build_config(*layers: dict[str, Any]) -> Config:
    """Merge config dicts (lowest precedence first) over the defaults into a checked ``Config``."""
    merged: dict[str, Any] = {}
    for layer in layers:
        check_sections(layer, "")
        merged = deep_merge(merged, layer)
    config = _to_dataclass(Config, merged, "")
    _check_values(config)
    return config


def _check_values(config: Config) -> None:
    """Choices and numeric ranges of the dataclass keys (types are checked already)."""
    _check_choices(config)
    _check_ranges(config)
    _check_evaluation(config.train)
    for name, weight in config.loss_weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight < math.inf:
            raise ConfigError(f"loss_weights.{name} must be a number >= 0; got {weight!r}")


def _check_choices(config: Config) -> None:
    data, train = config.data, config.train
    choices = {
        "data.direction": (data.direction, ("a2b", "b2a")),
        "data.preprocess": (data.preprocess, PREPROCESS_MODES),
        "data.augment_on": (data.augment_on, ("loader", "device")),
        "train.schedule": (train.schedule, LR_SCHEDULES),
        "train.decay_every": (train.decay_every, DECAY_EVERY),
        "train.init": (train.init, INIT_TYPES),
        "train.on_nan": (train.on_nan, ("stop", "rollback")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    if train.decay_every == "epoch" and train.schedule not in ("linear", "constant"):
        raise ConfigError(
            f"train.decay_every: epoch is junyanz's per-epoch linear decay; the {train.schedule} schedule "
            "decays per step (set train.schedule: linear, or train.decay_every: step)"
        )


def _check_ranges(config: Config) -> None:
    data, train = config.data, config.train
    # key: (value, lowest allowed, highest allowed or None, whether the lowest is excluded)
    ranges: dict[str, tuple[Any, float, float | None, bool]] = {
        "train.steps": (train.steps, 1, None, False),
        "train.batch_size": (train.batch_size, 1, None, False),
        "train.n_critic": (train.n_critic, 1, None, False),
        "train.log_every": (train.log_every, 1, None, False),
        "train.sample_every": (train.sample_every, 1, None, False),
        "train.checkpoint_every": (train.checkpoint_every, 1, None, False),
        "train.num_samples": (train.num_samples, 1, None, False),
        "train.step_size": (train.step_size, 1, None, False),
        "train.keep_checkpoints": (train.keep_checkpoints, 0, None, False),
        "train.decay_steps": (train.decay_steps, 0, None, False),
        "train.schedule_steps": (train.schedule_steps, 1, None, False),
        "train.seed": (train.seed, 0, 2**32 - 1, False),
        "train.lr": (train.lr, 0, None, False),
        "train.gamma": (train.gamma, 0, None, True),
        "train.init_gain": (train.init_gain, 0, None, False),
        "train.eval_every": (train.eval_every, 0, None, False),
        "train.eval_images": (train.eval_images, 2, None, False),
        "train.ema_decay": (train.ema_decay, 0, 1, True),
        "data.image_size": (data.image_size, 1, None, False),
        "data.load_size": (data.load_size, 1, None, False),
        "data.num_workers": (data.num_workers, 0, None, False),
        "data.color_jitter": (data.color_jitter, 0, 1, False),
        "data.test_images": (data.test_images, 0, None, False),
    }
    for key, (value, low, high, exclusive) in ranges.items():
        _check_range(key, value, low, high, exclusive)
    if len(train.betas) != 2 or not all(0 <= beta < 1 for beta in train.betas):
        raise ConfigError(
            f"train.betas must be two numbers in [0, 1), like [0.5, 0.999]; got {train.betas!r}"
        )
    if train.ema_decay is not None and train.ema_decay >= 1:
        raise ConfigError(f"train.ema_decay must be below 1 (e.g. 0.999); got {train.ema_decay!r}")


def _check_evaluation(train: TrainConfig) -> None:
    for name in train.eval_metrics or []:
        if name not in EVAL_METRICS:
            raise ConfigError(
                f"train.eval_metrics: unknown metric {name!r}; known: {', '.join(EVAL_METRICS)}"
            )
    if train.eval_metrics is not None and not train.eval_metrics:
        raise ConfigError(
            f"train.eval_metrics must name at least one of {', '.join(EVAL_METRICS)} (or be null)"
        )
    if train.best_mode not in (None, "min", "max"):
        raise ConfigError(f"train.best_mode must be min or max (or null: by metric); got {train.best_mode!r}")
    if train.best_metric is not None:
        if not train.eval_every:
            raise ConfigError(
                f"train.best_metric {train.best_metric} needs train.eval_every (evaluate every N steps)"
            )
        if not train.best_metric.startswith("eval/"):
            raise ConfigError(
                f"train.best_metric must name an evaluation metric, like eval/psnr or eval/fd; "
                f"got {train.best_metric!r}"
            )


def _check_range(key: str, value: Any, low: float, high: float | None, exclusive: bool) -> None:
    """``value`` (None passes: the key is optional) must be finite, >= ``low`` (> when ``exclusive``)
    and <= ``high``; integer keys are called integers in the message."""
    if value is None:
        return
    within = math.isfinite(value) and (value > low if exclusive else value >= low)
    if within and (high is None or value <= high):
        return
    if isinstance(value, int):
        kind = "a positive integer" if low == 1 and high is None else "an integer"
    else:
        kind = "a finite number" if not math.isfinite(value) else "a number" if high is None else ""
    bounds = "" if kind == "a positive integer" else f"> {low}" if exclusive else f">= {low}"
    if high is not None:
        bounds = f"between {low} and {high}"
    raise ConfigError(f"{key} must be {' '.join(filter(None, (kind, bounds)))}; got {value!r}")
