"""A lock file per run directory, so that two processes never write one run at once.

The lock file holds the owner's host name and PID. A lock whose owner is a dead process on this
host (a run killed with SIGKILL, a crashed machine's leftover) is stale and taken over; a live
owner's lock makes the second process stop with :class:`RunLocked`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"
#: A lock file younger than this without a readable owner is being written, not stale.
FRESH_SECONDS = 5.0


class RunLocked(RuntimeError):
    """Another live process is writing this run directory."""


def _owner(lock: Path) -> tuple[str, int] | None:
    """``(host, pid)`` written in ``lock``, or None when it is unreadable or half-written."""
    try:
        host, pid = lock.read_text(encoding="utf-8").split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


def _age_seconds(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the body; raise :class:`RunLocked` if a live process does."""
    lock = run_dir / LOCK_FILE
    me = f"{socket.gethostname()} {os.getpid()}\n"
    for _ in range(3):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            if owner is not None and owner[0] != socket.gethostname():
                raise RunLocked(
                    f"{run_dir} is locked by process {owner[1]} on host {owner[0]}; wait for it "
                    f"to finish, or delete {lock} if that process is gone") from None
            if owner is None and _age_seconds(lock) < FRESH_SECONDS:
                owner = ("", -1)  # its owner is still writing it
            if owner is not None and (owner[1] < 0 or _alive(owner[1])):
                raise RunLocked(
                    f"another anomaly-box process (PID {owner[1]}) is writing {run_dir}; wait "
                    f"for it to finish or use another --log-dir") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its owner is dead (or never finished writing it)
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(me)
        break
    else:
        raise RunLocked(f"could not take the lock {lock}; another process keeps replacing it")
    try:
        yield
    finally:
        if _owner(lock) == (socket.gethostname(), os.getpid()):
            lock.unlink()
