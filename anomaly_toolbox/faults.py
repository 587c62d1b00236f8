"""Faults of the machine, not of the toolbox or the input's content: a full disk, a path without
permission, a file name too long, memory that runs out. Python raises them as ``OSError`` and
``MemoryError``, TensorFlow as ``tf.errors.OpError`` whose message names the cause; here each
becomes one line that says what happened, where, and what to do.
"""

from __future__ import annotations

import errno
import re

#: errno -> what happened and what to do.
_OS_FAULTS = {
    errno.ENOSPC: ("the disk is full", "free some space (or write elsewhere) and run the same "
                                       "command again; a run resumes from its last good "
                                       "checkpoint"),
    errno.EDQUOT: ("the disk quota is used up", "free some space (or write elsewhere) and run "
                                                "the same command again"),
    errno.EACCES: ("permission denied", "make it readable/writable for this user or choose "
                                        "another path"),
    errno.EPERM: ("operation not permitted", "make it writable for this user or choose another "
                                             "path"),
    errno.EROFS: ("the file system is read-only", "choose a writable path"),
    errno.ENAMETOOLONG: ("a file name is too long for the file system", "use shorter names "
                                                                        "or paths"),
}
#: TensorFlow's messages for the same faults (its errors carry no errno).
_TF_PHRASES = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
               "Permission denied": errno.EACCES, "Read-only file system": errno.EROFS,
               "File name too long": errno.ENAMETOOLONG}
_OOM_SHAPE = re.compile(r"OOM when allocating tensor with shape\s*\[([\d,\s]*)\]")


class MachineFault(RuntimeError):
    """A run stopped by a fault of the machine (:func:`describe_fault` wrote the message)."""


def storage_fault(error: BaseException) -> str | None:
    """One line for a full disk, missing permission, read-only file system or too long a name
    (from Python or TensorFlow), else None."""
    code, where = None, ""
    if isinstance(error, OSError) and error.errno in _OS_FAULTS:
        code, where = error.errno, error.filename or ""
    elif type(error).__module__.startswith("tensorflow"):
        message = str(error)
        code = next((value for phrase, value in _TF_PHRASES.items() if phrase in message), None)
    if code is None:
        return None
    what, fix = _OS_FAULTS[code]
    return f"{what}{f' ({where})' if where else ''}: {fix}"


def memory_fault(error: BaseException) -> str | None:
    """One line for memory that ran out (Python's ``MemoryError``, TensorFlow's
    ``ResourceExhaustedError``), naming the tensor TensorFlow could not allocate, else None."""
    if isinstance(error, MemoryError):
        needed = ""
    elif type(error).__name__ == "ResourceExhaustedError":
        shape = _OOM_SHAPE.search(str(error))
        needed = ""
        if shape:
            dims = [int(d) for d in shape.group(1).replace(" ", "").split(",") if d]
            count = 1
            for dim in dims:
                count *= dim
            needed = f" (one tensor of shape {dims} alone needs {count * 4 / 2**30:,.1f} GiB)"
    else:
        return None
    return (f"out of memory{needed}: lower filters, latent_dim or batch_size (--set KEY=VALUE) "
            f"or use a machine with more memory")


def describe_fault(error: BaseException) -> str | None:
    """:func:`storage_fault` or :func:`memory_fault` of ``error``, else None."""
    return storage_fault(error) or memory_fault(error)
