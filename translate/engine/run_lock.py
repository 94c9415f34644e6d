"""One writer per run folder: ``RUN/.lock``.

Training holds ``RUN/.lock`` (``run_lock``: an ``flock`` on the file, which holds the pid, host and start
time) from before it reads a checkpoint to resume from until it ends, however it ends; a second
``translate train`` on the folder is a ``RunLockedError`` naming the process that holds it. The kernel
drops the ``flock`` of a process that dies (``kill -9``), so a lock left behind by a dead process of this
host is taken over with one log line; one that names another host is refused with the command that removes
it (a network file system may not share locks between hosts).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from translate.errors import RunLockedError, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid check alone
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("translate")

LOCK_FILE = ".lock"
"""``RUN/.lock``: JSON ``{"pid", "host", "since"}`` of the process training the run (``run_lock``)."""


@dataclass
class _HeldLock:
    fd: int
    inode: int
    count: int
    created_folder: bool
    """The lock made the run folder: removed again at release when nothing else was written there."""


_held: dict[Path, _HeldLock] = {}
"""The run folders this process holds, by resolved path (``run_lock`` is re-entrant within a process)."""
_held_guard = threading.Lock()


def _this_host() -> str:
    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """What ``RUN/.lock`` says: ``{"pid", "host", "since"}``, ``{}`` for a file that does not parse, None
    when there is no lock file (that the file exists does not mean its process still runs)."""
    try:
        text = (Path(run_dir) / LOCK_FILE).read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    return _parse_holder(text)


def _parse_holder(text: str) -> dict[str, Any]:
    try:
        holder = json.loads(text)
        if isinstance(holder, dict) and isinstance(holder.get("pid"), int):
            return {
                "pid": holder["pid"],
                "host": str(holder.get("host", "")),
                "since": holder.get("since", ""),
            }
    except ValueError:
        pass
    return {}


def _describe(holder: dict[str, Any]) -> str:
    since = f" since {holder['since']}" if holder.get("since") else ""
    return f"process {holder['pid']} on {holder['host'] or 'an unnamed host'}{since}"


def _read_fd(fd: int) -> dict[str, Any]:
    try:
        return _parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    except OSError:
        return {}


def _flock(fd: int) -> bool | None:
    """Try to take the ``flock`` of ``fd``: True when taken, False when another holds it, None where
    the file system has no such locks (the pid check alone then decides)."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return None
        raise
    return True


def _take_lock(folder: Path) -> tuple[int, int]:
    """Open and lock ``folder/.lock`` for this process: ``(fd, inode)``; RunLockedError when another
    process holds it, or when it names another host."""
    path = folder / LOCK_FILE
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = _flock(fd)
            holder = _read_fd(fd)
            if locked is False:
                raise RunLockedError(
                    f"{folder} is being trained by {_describe(holder) if holder else 'another process'}: "
                    f"one training process per run folder (wait for it to end, or stop it; "
                    f"--run-dir another folder for a new run)"
                )
            inode = os.fstat(fd).st_ino
            try:
                if os.stat(path).st_ino != inode:  # released (and removed) by its holder meanwhile
                    os.close(fd)
                    continue
            except FileNotFoundError:
                os.close(fd)
                continue
            if holder and holder["host"] != _this_host():
                raise RunLockedError(
                    f"{path} says {_describe(holder)} trains this run; a lock of another host cannot be "
                    f"checked from here: if nothing trains this run there any more, remove it "
                    f"(rm {path}) and start again"
                )
            if holder and holder["pid"] != os.getpid():
                alive = _pid_alive(holder["pid"])
                if locked is None and alive:  # no flock on this file system: the pid decides
                    raise RunLockedError(
                        f"{folder} is being trained by {_describe(holder)}: one training process per "
                        f"run folder (wait for it to end, or stop it; if it trains no run, remove {path})"
                    )
                state = "is no longer running" if not alive else "no longer holds it"
                log.warning("%s: taking over the lock of %s, which %s", folder, _describe(holder), state)
            mine = {"pid": os.getpid(), "host": _this_host(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(mine) + "\n").encode(), 0)
            os.fsync(fd)
            return fd, inode
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
    raise RunLockedError(f"could not take the lock {path}: other processes keep taking and releasing it")


def acquire_run_lock(run_dir: str | Path) -> None:
    """Take ``RUN/.lock`` for this process (making the folder if needed), or raise RunLockedError.
    Re-entrant: each acquire needs its release; the lock goes at the last one (or at exit)."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            held.count += 1
            return
        created = not run_dir.exists()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"could not make the run folder {run_dir}: {exc.strerror or exc}") from None
        try:
            fd, inode = _take_lock(key)
        except BaseException:
            if created:
                with contextlib.suppress(OSError):
                    (key / LOCK_FILE).unlink(missing_ok=True)
                    key.rmdir()
            raise
        _held[key] = _HeldLock(fd, inode, 1, created)


def release_run_lock(run_dir: str | Path) -> None:
    """Undo one ``acquire_run_lock``; the last removes ``RUN/.lock`` and drops the lock."""
    key = Path(run_dir).resolve()
    with _held_guard:
        held = _held.get(key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _held[key]
        _drop(key, held)


def _drop(folder: Path, held: _HeldLock) -> None:
    path = folder / LOCK_FILE
    try:
        if os.stat(path).st_ino == held.inode:
            path.unlink()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.close(held.fd)
    if held.created_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty: a run that failed before writing anything leaves no folder


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``RUN/.lock`` inside the block (``acquire_run_lock``), released however the block ends."""
    acquire_run_lock(run_dir)
    try:
        yield
    finally:
        release_run_lock(run_dir)


def check_run_unlocked(run_dir: str | Path) -> None:
    """RunLockedError when another live process holds ``RUN/.lock`` (nothing is taken: a quick check
    before reading a run to resume it)."""
    run_dir = Path(run_dir)
    if run_dir.resolve() in _held or not (run_dir / LOCK_FILE).is_file():
        return
    acquire_run_lock(run_dir)
    release_run_lock(run_dir)


def _release_all() -> None:
    with _held_guard:
        for key, held in list(_held.items()):
            del _held[key]
            _drop(key, held)


def _forget_in_child() -> None:
    """A forked child (a data loader worker) closes its copies of the lock files: the lock goes with
    the training process, not with a worker left behind it."""
    global _held_guard
    _held_guard = threading.Lock()
    for held in list(_held.values()):
        with contextlib.suppress(OSError):
            os.close(held.fd)
    _held.clear()


atexit.register(_release_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
