"""The CPU a run is on, and the one switch the toolbox sets before TensorFlow starts: oneDNN.

TensorFlow (2.9 and later, x86 Linux) turns its oneDNN kernels on by itself only on CPUs with
neural-network instructions (AVX-512 VNNI or BF16, AVX-VNNI, AMX). On a CPU with AVX2 and FMA but
none of those (an AMD EPYC of our machine kind, many desktop CPUs) it leaves them off, and
measured there (issue 42, batch 64) a GANomaly train step took 552 ms without them and 274 ms
with them; a 2048x2048 matmul ran at 85 against 159 GFLOP/s. So, when the package is imported
before TensorFlow, the toolbox sets ``TF_ENABLE_ONEDNN_OPTS=1`` on such a CPU, unless the user
set the variable themselves (any value: theirs is never overridden). ``onednn_state`` says what
happened, for ``results.json`` and the benchmark headers.
"""

from __future__ import annotations

import os
import platform
import sys
from functools import cache
from typing import Any

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
#: CPU flags with which TensorFlow turns oneDNN on by itself (its port.cc, TF >= 2.9).
TENSORFLOW_ONEDNN_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16",
                           "amx_int8")
#: What oneDNN's fast x86 kernels need.
ONEDNN_NEEDS = ("avx2", "fma")
#: Instruction sets named in benchmark headers, in this order.
SHOWN_FLAGS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512F", "avx512_vnni": "AVX-512 VNNI",
               "avx512_bf16": "AVX-512 BF16", "avx_vnni": "AVX-VNNI", "amx_tile": "AMX"}

#: Who decided oneDNN's state in this process: 'user', 'toolbox', 'tensorflow default' or
#: 'tensorflow imported first' (set by :func:`enable_onednn_where_off`).
_decided_by = "tensorflow default"


@cache
def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """The CPU's model name and instruction-set flags (Linux ``/proc/cpuinfo``; elsewhere the
    platform's processor name and no flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return (fields.get("model name") or platform.processor() or platform.machine(),
            frozenset(fields.get("flags", "").split()))


def onednn_setting(flags: frozenset[str], environ: dict[str, str] | Any,
                   tensorflow_imported: bool) -> tuple[str | None, str]:
    """``(value to set or None, who decides)`` for ``TF_ENABLE_ONEDNN_OPTS``: the user's own
    value always stands; an imported TensorFlow cannot change any more; on a CPU with AVX2 and
    FMA where TensorFlow leaves oneDNN off, '1'; else TensorFlow's default."""
    if ONEDNN_VARIABLE in environ:
        return None, "user"
    if tensorflow_imported:
        return None, "tensorflow imported first"
    if all(flag in flags for flag in ONEDNN_NEEDS) and not any(
            flag in flags for flag in TENSORFLOW_ONEDNN_FLAGS):
        return "1", "toolbox"
    return None, "tensorflow default"


def enable_onednn_where_off() -> None:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` where :func:`onednn_setting` says so (x86 Linux, before
    TensorFlow is imported); remember who decided."""
    global _decided_by
    value, _decided_by = onednn_setting(cpu_model_and_flags()[1], os.environ,
                                        "tensorflow" in sys.modules)
    if value is not None:
        os.environ[ONEDNN_VARIABLE] = value


def onednn_state() -> dict[str, Any]:
    """Whether TensorFlow runs its oneDNN kernels in this process, and who decided."""
    from tensorflow.python.util import _pywrap_util_port

    return {"enabled": bool(_pywrap_util_port.IsMklEnabled()), "decided_by": _decided_by}


def describe_cpu() -> str:
    """``model (architecture; instruction sets) with N cores``, e.g. for benchmark headers."""
    model, flags = cpu_model_and_flags()
    shown = " ".join(name for flag, name in SHOWN_FLAGS.items() if flag in flags)
    return (f"{model} ({platform.machine()}{'; ' + shown if shown else ''}) with "
            f"{os.cpu_count()} CPU cores")
