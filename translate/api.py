"""Python entry point for training: resolve the config layers, the data and the run folder, then train.

The CLI's ``translate train`` is a thin layer over :func:`train`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
from pathlib import Path
from typing import Any

import yaml

import translate.components  # noqa: F401  (registers every component)
from translate.config import Config, build_config
from translate.config_files import load_yaml
from translate.engine.checkpoint import latest_checkpoint, stored_config
from translate.engine.run_folder import CONFIG_FILE
from translate.engine.run_lock import check_run_unlocked, run_lock
from translate.engine.schedules import STRETCHED, decay_span
from translate.errors import CheckpointError, ConfigError, DataError, TrainingInterrupted
from translate.registry import TASKS

log = logging.getLogger("translate")


def demo_root(name: str) -> Path:
    """Where the built-in demo data is generated (once): ``$XDG_CACHE_HOME/translate/demo-<name>``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "translate" / f"demo-{name}"


def _needs_demo_data(data: dict[str, Any], dataset: str) -> bool:
    """True when no data root was given and the folders the task reads are absent from the current folder."""
    if data.get("root") is not None:
        return False
    if dataset == "aligned":
        return not Path("train").is_dir()
    domains = data.get("domains") or ["trainA", "trainB"]
    return not all(Path(d).is_dir() for d in domains)


def resolve_config(
    method: str,
    config_file: str | Path | None = None,
    overrides: list[dict[str, Any]] | None = None,
    resume_from: Path | None = None,
) -> Config:
    """Layer the config: task defaults < demo preset (when demo data is used) < YAML file < overrides.

    When resuming, the run's saved config replaces the task defaults and the demo decision.
    """
    overrides = overrides or []
    file_layer = load_yaml(config_file) if config_file else {}
    task_name = file_layer.get("task", method)
    if task_name != method:
        raise ConfigError(f"{config_file} is a {task_name} config, but the method given is {method}")
    task = TASKS.get(method)
    if resume_from is not None:
        base_layers = [saved_config(resume_from)]
        if base_layers[0].get("task") != method:
            raise CheckpointError(f"{resume_from} holds a {base_layers[0].get('task')} run, not {method}")
    else:
        base_layers = [{"task": method}, task.default_config]
        merged = build_config(*base_layers, file_layer, *overrides)
        data = {"root": merged.data.root, "domains": merged.data.domains}
        if _needs_demo_data(data, task.dataset):
            root = prepare_demo_data(task.dataset, merged.data.domains)
            log.warning(
                "no data folders found and no --data-root given: training on the built-in demo "
                "dataset in %s with a small preset",
                root,
            )
            demo_data = {"root": str(root)}
            if task.dataset in ("unaligned", "labelled"):
                demo_data["domains"] = list(merged.data.domains or ["photo", "anime"])
            base_layers += [getattr(task, "demo_config", {}), {"data": demo_data}]
        elif merged.data.root is not None:
            base_layers.append(detected_data_layer(Path(merged.data.root), task.dataset, merged.data.domains))
    return build_config(*base_layers, file_layer, *overrides)


def saved_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config of a run to resume: the one stored in its newest intact checkpoint (what that
    checkpoint was trained with: the truth), else its ``config.yaml``.

    A ``config.yaml`` that differs from the checkpoint's is said in one line (the keys that differ); one
    that is missing, empty, cut short or not UTF-8 is passed over with one line, or is a one-line
    CheckpointError when no intact checkpoint holds the config either.
    """
    file = Path(run_dir) / CONFIG_FILE
    written, problem = _read_config_file(file)
    stored = stored_config(run_dir)
    if stored is None:
        if written is not None:
            return written
        if problem is not None:
            raise CheckpointError(
                f"--resume: {file} {problem}, and {run_dir} holds no intact checkpoint with the config to "
                "resume with"
            )
        raise CheckpointError(
            f"--resume: {run_dir} has no config.yaml and no intact checkpoint; is it a run folder?"
        )
    config, folder = stored
    if written is None:
        if problem is None:
            log.warning("%s has no config.yaml: resuming with the config stored in %s", run_dir, folder.name)
        else:
            log.warning("%s %s: resuming with the config stored in %s", file, problem, folder.name)
        return config
    changed = differing_keys(written, config)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        log.warning(
            "%s differs from the config stored in %s (%s): resuming with the checkpoint's",
            file,
            folder.name,
            shown,
        )
    return config


def _read_config_file(file: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A run's ``config.yaml`` as a dict, or None and what is wrong with it (None too when it is absent)."""
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError:
        return None, "is not UTF-8 text (damaged)"
    if not text.strip():
        return None, "is empty"
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
        return None, f"does not parse ({reason}: cut short or damaged?)"
    if not isinstance(loaded, dict) or "task" not in loaded:
        return None, "does not hold a run's config (cut short or damaged?)"
    return loaded, None


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested dicts (``train.checkpoint_every``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return [d for k in keys for d in differing_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differing_keys(x, y, f"{prefix}{i}.")]
    return [] if a == b or (a != a and b != b) else [prefix.rstrip(".")]


def resume_schedule(config: Config, run_dir: Path, keep_schedule: bool) -> None:
    """Resuming with another ``train.steps`` moves the decay of a linear or cosine LR schedule (it is
    stretched over the new length): say so, or with ``keep_schedule`` keep it over the run's original steps
    (``train.schedule_steps``)."""
    train = config.train
    if train.schedule_steps is not None:  # kept before, or chosen with --set
        return
    saved = saved_config(run_dir).get("train", {})
    original = saved.get("schedule_steps") or saved.get("steps", train.steps)
    if keep_schedule:
        train.schedule_steps = original
        return
    if train.schedule not in STRETCHED or original == train.steps:
        return
    was, now = (decay_span(train.schedule, total, train.decay_steps) for total in (original, train.steps))
    log.warning(
        "--steps %d moves this run's %s LR decay to steps %d-%d (it was planned for steps %d-%d); "
        "--keep-schedule keeps it where it was",
        train.steps,
        train.schedule,
        *now,
        *was,
    )


def detected_data_layer(root: Path, dataset: str, domains: list[str] | None) -> dict[str, Any]:
    """Read the data root's layout so users rarely name a format: the domain folders, or a clear error
    when the folder holds data for another kind of method."""
    from translate.catalog.commands import suggested_command
    from translate.data.layout import detect_layout

    if domains is not None:
        return {}
    if dataset == "images":
        return {}  # flat, class folders or IDX: the dataset reads the layout itself
    layout = detect_layout(root)
    command = suggested_command(layout)
    hint = f" (try: {command})" if command else ""
    if dataset == "aligned":
        if layout.kind != "aligned":
            raise DataError(f"{root} holds {layout.description}, not A|B image pairs{hint}")
        return {}
    if dataset == "labelled":
        if layout.kind == "attributes" or "attributes" in layout.alternatives:
            return {}
        if layout.kind != "domains":
            raise DataError(
                f"{root} holds {layout.description}, not an attribute file or domain folders{hint}"
            )
        log.info(
            "found domain folders in %s: %s (choose others with --domains)", root, " ".join(layout.domains)
        )
        return {"data": {"domains": list(layout.domains)}}
    if layout.kind == "cyclegan":
        return {}
    if layout.kind != "domains":
        raise DataError(f"{root} holds {layout.description}, not two domain folders{hint}")
    if len(layout.domains) != 2:
        raise DataError(
            f"{root} holds {len(layout.domains)} domain folders ({', '.join(layout.domains)}); "
            f"choose two with --domains A B"
        )
    log.info("found domain folders in %s: A = %s, B = %s (reorder with --domains)", root, *layout.domains)
    return {"data": {"domains": list(layout.domains)}}


def prepare_demo_data(dataset: str, domains: list[str] | None) -> Path:
    from translate.catalog.demo import make_demo_dataset

    layout = "aligned" if dataset == "aligned" else "unaligned"
    names = tuple(domains or ["photo", "anime"])
    if len(names) != 2:
        raise ConfigError(f"the built-in demo data has two domains; got --domains {' '.join(names)}")
    name = "pairs" if layout == "aligned" else "-".join(names)
    return make_demo_dataset(demo_root(name), layout=layout, domains=names)


def demo_eval_command(run: str | Path) -> str | None:
    """The ``translate eval`` command that scores a run trained on the built-in two-domain demo data against
    its paired test scenes (with the data's real folder, wherever ``XDG_CACHE_HOME`` puts it); None for
    other runs."""
    config = load_yaml(Path(run) / CONFIG_FILE) if (Path(run) / CONFIG_FILE).is_file() else {}
    data = config.get("data") or {}
    root, domains = data.get("root"), data.get("domains") or []
    if root is None or len(domains) != 2 or Path(root).parent != demo_root("").parent:
        return None
    test = Path(root) / "test"
    if not all((test / domain).is_dir() for domain in domains):
        return None
    words = ["translate", "eval", "--run", str(run), "--inputs", str(test / domains[0])]
    return shlex.join([*words, "--targets", str(test / domains[1])])


def is_main_process() -> bool:
    """Whether this is the process that writes the run (rank 0 under torchrun, or the only one)."""
    return os.environ.get("RANK", "0") in ("0", "")


def default_run_dir(config: Config) -> Path:
    data_name = Path(config.data.root).name if config.data.root else Path.cwd().name
    return Path("runs") / f"{config.task}-{data_name}"


def train(
    method: str,
    config_file: str | Path | None = None,
    overrides: list[dict[str, Any]] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    keep_schedule: bool = False,
) -> Path:
    """Train ``method`` (``pix2pix``, ``cyclegan``, ...) and return the run folder.

    ``overrides`` are nested dicts applied last, e.g. ``[{"train": {"steps": 100}}]``.
    A run folder that already holds checkpoints is never overwritten: resume it or choose another.
    ``keep_schedule`` (with ``resume``): a new ``train.steps`` does not move the LR decay.

    Ctrl-C or SIGTERM stops after the current step with a checkpoint and raises TrainingInterrupted (its
    ``exit_code`` is 130 or 143); a NaN or infinite loss raises TrainingDiverged, a failed write
    StorageError; each message says how to resume.

    Run by each process of ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), it trains with all of
    them: ``train.batch_size`` is then the batch of one process.
    """
    from translate.engine import distributed

    with distributed.session():  # under torchrun: one process of several (a no-op otherwise)
        return _train(method, config_file, overrides, run_dir, resume, keep_schedule)


def _train(
    method: str,
    config_file: str | Path | None,
    overrides: list[dict[str, Any]] | None,
    run_dir: str | Path | None,
    resume: bool,
    keep_schedule: bool,
) -> Path:
    from translate.engine.trainer import Trainer
    from translate.evaluation import Evaluator

    if resume and run_dir is None:
        raise ConfigError("--resume needs --run-dir: the run folder to continue")
    if keep_schedule and not resume:
        raise ConfigError("--keep-schedule goes with --resume: it keeps a resumed run's LR schedule")
    resume_from = Path(run_dir) if resume else None
    if resume_from is not None and is_main_process():
        check_run_unlocked(resume_from)  # before reading the run: another process may be writing it
    config = resolve_config(method, config_file, overrides, resume_from)
    run_path = Path(run_dir or config.run_dir or default_run_dir(config))
    with run_lock(run_path) if is_main_process() else contextlib.nullcontext():  # one writer per run
        if not resume and latest_checkpoint(run_path) is not None:
            raise ConfigError(
                f"{run_path} already holds a run; pass --resume to continue it, or --run-dir for a new one"
            )
        if resume:
            resume_schedule(config, run_path, keep_schedule)
        config.run_dir = str(run_path)
        trainer = Trainer(config, run_path, resume=resume, evaluation=Evaluator.for_training)
        trainer.fit()
    if trainer.interrupted:
        signum = trainer.stop_signal or signal.SIGINT
        raise TrainingInterrupted(
            f"interrupted ({signum.name}) at step {trainer.step} of {config.train.steps}; checkpoint saved. "
            f"Continue with: {trainer.resume_command()}",
            signum,
        )
    return run_path
