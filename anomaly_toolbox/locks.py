"""A lock file per run directory, so that two processes never write one run at once.

The owner holds an exclusive ``flock`` on the lock file for as long as it writes the run, and
writes its host name and PID into it for people to read. The kernel drops the lock when its
owner exits, however it ends (SIGKILL, a crash), so a leftover file is taken over and a PID
reused by another program never blocks a run. A lock file that names another host is refused
(locks do not reach across hosts on every shared file system).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"


class RunLocked(RuntimeError):
    """Another live process is writing this run directory."""


def _owner(lock: Path) -> tuple[str, int] | None:
    """``(host, pid)`` written in ``lock``, or None when it is unreadable or half-written."""
    try:
        host, pid = lock.read_text(encoding="utf-8").split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


def _command(pid: int) -> str:
    """The command line of process ``pid`` (Linux), or '' when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


def _same_file(descriptor: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``descriptor`` (not unlinked or replaced)."""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the body; raise :class:`RunLocked` if another process does."""
    lock = run_dir / LOCK_FILE
    here = socket.gethostname()
    for _ in range(3):
        descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            owner = _owner(lock)
            pid = owner[1] if owner else None
            command = _command(pid) if pid else ""
            raise RunLocked(
                f"another process{f' (PID {pid}: {command})' if command else ''} is writing "
                f"{run_dir}; wait for it to finish or use another --log-dir") from None
        if not _same_file(descriptor, lock):
            os.close(descriptor)  # its owner finished and removed it meanwhile: take a new one
            continue
        owner = _owner(lock)
        if owner is not None and owner[0] != here:
            os.close(descriptor)
            raise RunLocked(f"{run_dir} is locked by process {owner[1]} on host {owner[0]}; "
                            f"wait for it to finish, or delete {lock} if that process is gone")
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{here} {os.getpid()}\n".encode())
        break
    else:
        raise RunLocked(f"could not take the lock {lock}; another process keeps replacing it")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(descriptor)
