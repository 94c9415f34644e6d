"""The run folder: where a run keeps its files, which of its checkpoints to load, and ``RunFolder``, which
writes the files of a training run that are not checkpoints.

::

    RUN/.lock                    the training process's pid and host while it runs (one writer per run)
        config.yaml              the resolved config (written atomically at each start)
        log.jsonl                a JSON line per log interval and per evaluation
        tensorboard/             the same numbers for TensorBoard (train.tensorboard)
        samples/step_N.png       sample grids; loss_curves.png is redrawn after each
        checkpoints/step_N/      model.safetensors, state.safetensors, SHA256SUMS (engine.checkpoint)
        checkpoints/best/        the best by train.best_metric, with best.json

With several processes rank 0 writes, and what it raises reaches every process (``World.on_main``).

Training holds ``RUN/.lock`` while it runs (``translate.engine.run_lock``: one writer per run folder).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import yaml

from translate.engine.run_lock import acquire_run_lock, release_run_lock
from translate.errors import CheckpointError, ConfigError, StorageError

if TYPE_CHECKING:
    from translate.engine.distributed import World

log = logging.getLogger("translate")

T = TypeVar("T")

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
SUMS_FILE = "SHA256SUMS"
"""``<sha256>  <file name>`` per line, as ``sha256sum`` writes it."""
BEST = "best"
"""The folder (under ``checkpoints/``) of the best checkpoint by ``train.best_metric``."""
BEST_FILE = "best.json"
LOG_FILE = "log.jsonl"
CONFIG_FILE = "config.yaml"


# ------------------------------------------------------------------------------------ checkpoints
def checkpoint_step(folder: Path) -> int | None:
    """The step of a checkpoint folder ``step_N`` (``step_0001000``: 1000; ``step_12345678``: past the
    seven digits of the name's padding), or None for any other name."""
    digits = Path(folder).name.removeprefix("step_")
    if digits == Path(folder).name or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first: ordered by their step number, not by name (the names
    are padded to seven digits, so ``step_10000000`` sorts before ``step_9999999`` as text)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("step_*"):
        step = checkpoint_step(path)
        if step is not None and (path / MODEL_FILE).is_file() and (path / STATE_FILE).is_file():
            found.append((step, path.name, path))
    return [path for _, _, path in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoint_dirs(run_dir)
    return found[-1] if found else None


def select_checkpoint(run_dir: str | Path, which: str | int) -> Path:
    """The checkpoint folder of a run that ``which`` names: ``best`` (``checkpoints/best``), ``latest``
    or a step number (``2000`` or ``step_0002000``); one the run lacks is a CheckpointError listing those
    it has."""
    run_dir = Path(run_dir)
    text = str(which).strip().lower()
    found = checkpoint_dirs(run_dir)
    best = run_dir / "checkpoints" / BEST
    has_best = (best / MODEL_FILE).is_file()
    steps = [checkpoint_step(p) for p in found]
    listed = (["best"] if has_best else []) + (["latest"] if found else []) + [str(s) for s in steps]
    holds = f"; {run_dir} holds: {', '.join(listed)}" if listed else f"; {run_dir} holds no checkpoint"
    if text == BEST:
        if not has_best:
            raise CheckpointError(
                f"{run_dir} has no best checkpoint (kept when training with train.eval_every and "
                f"train.best_metric){holds}"
            )
        return best
    if text == "latest":
        if not found:
            raise CheckpointError(f"{run_dir} holds no checkpoint (expected checkpoints/step_*/{MODEL_FILE})")
        return found[-1]
    try:
        step = int(text.removeprefix("step_"))
    except ValueError:
        raise CheckpointError(f"--checkpoint takes best, latest or a step number; got {which!r}") from None
    if step not in steps:
        raise CheckpointError(f"{run_dir} has no checkpoint of step {step}{holds}")
    return found[steps.index(step)]


def resolve_model_file(path: str | Path, checkpoint: str | int | None = None) -> Path:
    """A run folder, a checkpoint folder or a ``model.safetensors`` file -> the weights file to load.
    ``checkpoint`` (``best``, ``latest``, a step) picks one of a run folder's checkpoints (default:
    the latest); given with a checkpoint folder or file it is an error unless it is ``latest``."""
    path = Path(path)
    if checkpoint is not None and str(checkpoint).strip().lower() != "latest":
        run = path.parent if path.name == "checkpoints" and path.is_dir() else path
        if not (run / "checkpoints").is_dir():
            kind = (
                "file" if path.is_file() else "checkpoint folder" if (path / MODEL_FILE).is_file() else None
            )
            what = f"is a {kind}" if kind else "is not a run folder"
            raise CheckpointError(
                f"--checkpoint {checkpoint} picks a checkpoint of a run folder; {path} {what} (give the run "
                f"folder, or leave --checkpoint out)"
            )
        return select_checkpoint(run, checkpoint) / MODEL_FILE
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path} is a file, not a run folder, checkpoint folder or {MODEL_FILE}")
        if path.name == STATE_FILE:
            raise CheckpointError(
                f"{path} is the training state (optimizers, random state), not the model: give "
                f"{path.parent / MODEL_FILE} or the folder {path.parent}"
            )
        return path
    if (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    if path.is_dir() and path.name == "checkpoints":  # a run's checkpoint folder: its newest
        path = path.parent
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(
                f"{path} holds no checkpoint (expected {path}/checkpoints/step_*/{MODEL_FILE})"
            )
        return latest / MODEL_FILE
    raise CheckpointError(f"no run folder or checkpoint at {path}")


def older_checkpoints_hint(file: Path) -> str:
    """``; older checkpoints: RUN/checkpoints/step_N ...`` when ``file`` is in a run's checkpoint folder."""
    folder = file.parent
    if folder.parent.name != "checkpoints":
        return ""
    step = checkpoint_step(folder)
    found = checkpoint_dirs(folder.parent.parent) if step is not None else []
    older = [p for p in found if checkpoint_step(p) < step]
    return f"; older checkpoints: {', '.join(map(str, reversed(older)))}" if older else ""


def keep_as_best(run_dir: Path, step: int, info: dict[str, Any]) -> Path:
    """Make ``checkpoints/best`` the checkpoint of ``step`` (written before), with ``info`` (metric, value,
    step, mode) in ``best.json``: its files hard-linked (copied where links fail) into a temporary folder,
    flushed and renamed into place, as checkpoints are. A failed write is a StorageError that
    leaves the previous best as it was."""
    folder = Path(run_dir) / "checkpoints"
    source, final = folder / f"step_{step:07d}", folder / BEST
    tmp = folder / f".tmp-{BEST}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name in (MODEL_FILE, STATE_FILE, SUMS_FILE):
            try:
                os.link(source / name, tmp / name)
            except OSError:
                shutil.copyfile(source / name, tmp / name)
                fsync(tmp / name)
        (tmp / BEST_FILE).write_text(json.dumps(info) + "\n")
        fsync(tmp / BEST_FILE)
        fsync(tmp)
        put_in_place(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(
            f"could not write the best checkpoint {final}: {exc.strerror or exc}; the earlier ones are intact"
        ) from None
    return final


def best_info(run_dir: Path) -> dict[str, Any] | None:
    """``best.json`` of a run's best checkpoint (metric, value, step, mode), or None."""
    try:
        return json.loads((Path(run_dir) / "checkpoints" / BEST / BEST_FILE).read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------ atomic writes
def fsync(path: Path) -> None:
    """Flush a file or folder (its entries) to disk, so a power cut cannot undo a completed rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def put_in_place(tmp: Path, final: Path) -> None:
    """Rename the complete folder ``tmp`` to ``final`` (replacing an older one) and flush the rename."""
    if final.exists():
        old = final.with_name(f".old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    fsync(final.parent)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a temporary file beside it, flushed, renamed over it.
    A failed write (disk full) removes the temporary file and leaves the old ``path`` as it was."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync(path.parent)


# ------------------------------------------------------------------------------------ writing
class RunFolder:
    """The files of a training run besides its checkpoints: ``config.yaml``, ``log.jsonl``, TensorBoard,
    sample grids and ``loss_curves.png``. Every process calls the writing methods; rank 0 writes.

    Args:
        path: the run folder.
        world: the training processes.
        tensorboard: also log to TensorBoard (``train.tensorboard``); a missing package is a ConfigError
            here, before training starts.
        resume_command: the command that resumes the run (named when a write fails).
    """

    def __init__(
        self, path: Path, world: World, tensorboard: bool, resume_command: Callable[[], str]
    ) -> None:
        self.path = Path(path)
        self.world = world
        self._resume_command = resume_command
        self._writer_class = _tensorboard_writer_class() if tensorboard and world.is_main else None
        self._writer: Any = None
        """The TensorBoard writer, made at the first log line (inside the run folder)."""
        self._locks = 0
        """How many times this object holds the run's lock (``lock``, ``prepare``)."""

    def write(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action`` on rank 0, a failed write of it (disk full) being a StorageError that says how to
        resume; its result (or error) reaches every process.

        Args:
            what: what ``action`` writes, for the error (``a checkpoint``).
            action: the write.

        Returns:
            What ``action`` returned on rank 0.
        """

        def guarded() -> T:
            with self.storage(what):
                return action()

        return self.world.on_main(guarded)

    @contextlib.contextmanager
    def storage(self, what: str) -> Iterator[None]:
        """A failed write of a run's file inside the block becomes one StorageError that says how to resume.

        Args:
            what: what the block writes (``log.jsonl``).
        """
        try:
            yield
        except (OSError, StorageError) as exc:
            if isinstance(exc, StorageError):
                reason = str(exc)
            else:
                reason = f"could not write {what} in {self.path}: {exc.strerror or exc}"
            latest = latest_checkpoint(self.path) if self.path.is_dir() else None
            hint = f"; then resume with: {self._resume_command()}" if latest is not None else ""
            raise StorageError(f"{reason}{hint}") from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock (``RUN/.lock``, ``run_lock``) inside the block, released however it ends
        (an error, Ctrl-C, SIGTERM's stop); a folder another process trains is a RunLockedError on every
        process. Rank 0 holds it for all."""
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def _acquire(self) -> None:
        self.world.on_main(lambda: acquire_run_lock(self.path))
        self._locks += 1

    def _release(self) -> None:
        if self._locks:
            self._locks -= 1
            if self.world.is_main:
                release_run_lock(self.path)

    def prepare(self, config: dict[str, Any], step: int) -> None:
        """Take the run's lock (unless held: ``lock``), make the folder, write ``config.yaml`` (atomically)
        and drop the log lines after ``step``.

        Args:
            config: the resolved config.
            step: the step training starts from.
        """
        if not self._locks:  # held until ``lock`` ends or the process exits
            self._acquire()

        def prepare() -> None:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "samples").mkdir(exist_ok=True)
            write_text_atomically(self.path / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
            self._truncate_log(step)

        self.write("the run folder", prepare)

    def append_log(self, record: dict[str, Any]) -> None:
        """Append ``record`` to log.jsonl (and its numbers to TensorBoard).

        Args:
            record: ``{"step": N, name: value, ...}``.
        """
        self.world.on_main(lambda: self._append_log(record))

    def _append_log(self, record: dict[str, Any]) -> None:
        with self.storage("log.jsonl"), open(self.path / LOG_FILE, "a") as log_file:
            log_file.write(json.dumps(record) + "\n")
        if self._writer_class is not None:
            with self.storage("the TensorBoard log"):
                if self._writer is None:
                    self._writer = self._writer_class(str(self.path / "tensorboard"))
                for name, value in record.items():
                    if name != "step" and isinstance(value, int | float):
                        self._writer.add_scalar(name, value, record["step"])
                self._writer.flush()

    def truncate_log(self, step: int) -> None:
        """Drop the log lines after ``step`` (and any line cut short by a kill): they are trained again,
        so after resuming (or a rollback) every step appears once.

        Args:
            step: the last step to keep.
        """
        self.write("log.jsonl", lambda: self._truncate_log(step))

    def _truncate_log(self, step: int) -> None:
        path = self.path / LOG_FILE
        if not path.is_file():
            return
        kept, undecodable = [], 0
        lines = path.read_bytes().splitlines()
        for raw in lines:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:  # a damaged line: dropped, with one warning for all of them
                undecodable += 1
                continue
            try:
                if int(json.loads(line)["step"]) <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        if undecodable:
            log.warning("%s: dropped %d line(s) that are not UTF-8 text (damaged)", path, undecodable)
        if len(kept) < len(lines):
            write_text_atomically(path, "".join(line + "\n" for line in kept))
            log.info("log.jsonl: dropped %d lines after step %d", len(lines) - len(kept), step)

    def write_samples(self, visuals: dict[str, torch.Tensor] | None, step: int) -> Path:
        """Write the sample grid of ``step``, then redraw ``loss_curves.png`` from log.jsonl (curves that
        cannot be drawn: a debug note).

        Args:
            visuals: the grid's columns, ``{name: (N, C, H, W) in [-1, 1]}`` (None on processes other than
                rank 0).
            step: the step, in the file name.

        Returns:
            The grid's path.
        """
        path = self.path / "samples" / f"step_{step:07d}.png"
        return self.write("a sample grid", lambda: self._write_samples(visuals, path))

    def _write_samples(self, visuals: dict[str, torch.Tensor], path: Path) -> Path:
        from translate.engine.grid import save_grid, visuals_grid
        from translate.engine.report import write_loss_curves

        images, columns = visuals_grid(visuals)
        save_grid(images, path, columns, labels=list(visuals))
        try:
            write_loss_curves(self.path)
        except OSError:
            raise
        except Exception as exc:  # a picture must never stop training
            log.debug("loss_curves.png not drawn: %s", exc)
        return path


def _tensorboard_writer_class() -> Any:
    """``SummaryWriter``; a missing package is a ConfigError."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            'train.tensorboard needs the tensorboard package: pip install "translate-gan[tensorboard]"'
        ) from None
    return SummaryWriter
