"""Sweeps on Ray: every run of a benchmark or a grid is one Ray task (``--ray [ADDRESS]``).

Ray is an optional extra (``pip install "anomaly-toolbox[ray]"``) and is imported only here. The
driver loads the data once and puts it in Ray's object store; each task runs one ordinary
run (the caller's run function, :func:`~anomaly_toolbox.experiments.runner.run_experiment`) on a
worker and writes to the shared
``--log-dir`` exactly as a local run does, so finished runs are reused, interrupted ones resume
and the tables are the same. A task whose worker dies or that raises is retried once
(:data:`RETRIES`); after that its run is reported as failed and the sweep goes on.

On a cluster ``--log-dir`` must be a filesystem every worker shares with the driver: before
submitting anything a probe task writes a file there, and the driver checks that it sees it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import socket
import time
import uuid
from pathlib import Path
from collections.abc import Callable
from typing import Any

from anomaly_toolbox.datasets.sources import RawData, network_reachable
from anomaly_toolbox.timing import eta_text

#: One run: ``run(config, raw)`` -> its results (``runner.run_experiment``).
RunFunction = Callable[[Any, RawData], list[dict[str, Any]]]

#: Retries of a task after its first attempt failed (a dead worker or an exception).
RETRIES = 1
#: Seconds between progress lines while nothing finishes.
PROGRESS_EVERY_S = 30.0


class RayUnavailable(RuntimeError):
    """Ray is not installed, the cluster cannot be reached, or its workers cannot use the log
    directory; the message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class RaySettings:
    """Where to run and what one run asks for. ``address``: None or ``"local"`` starts a local
    Ray instance; ``"auto"`` or ``"ray://host:10001"`` joins a cluster. ``gpus_per_run`` None:
    one when the cluster has GPUs, else none."""

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float | None = None


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable('--ray needs Ray: pip install "anomaly-toolbox[ray]"') from None
    return ray


def connect(settings: RaySettings, log_dir: Path) -> float:
    """Start or join Ray and check that its workers write where the driver reads; returns the
    GPUs each run asks for."""
    ray = _ray()
    local = settings.address in (None, "local")
    endpoint = _host_and_port(settings.address)
    if endpoint is not None and not network_reachable(endpoint):
        raise RayUnavailable(f"nothing answers at {settings.address!r}; start the cluster with "
                             f"`ray start --head` there, or pass --ray without an address for "
                             f"a local instance")  # Ray itself retries for minutes
    try:
        if not ray.is_initialized():
            ray.init(address=None if local else settings.address, log_to_driver=False,
                     include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayUnavailable(f"cannot reach the Ray cluster at {settings.address!r} ({error}); "
                             f"start one with `ray start --head` or pass --ray without an "
                             f"address for a local instance") from None
    log_dir.mkdir(parents=True, exist_ok=True)
    probe = log_dir.resolve() / f".ray-probe-{uuid.uuid4().hex}"
    try:
        host = ray.get(ray.remote(_write_probe).options(num_cpus=0).remote(str(probe)))
    except Exception as error:  # noqa: BLE001 - a worker reports any failure to write
        raise RayUnavailable(f"a Ray worker cannot write to --log-dir {log_dir} ({error}); on "
                             f"a cluster it must be a filesystem every node shares") from None
    if not probe.exists():
        raise RayUnavailable(f"a Ray worker on {host} wrote to --log-dir {log_dir}, but this "
                             f"machine does not see the file: on a cluster --log-dir must be a "
                             f"filesystem every node shares (NFS, a mounted bucket)")
    probe.unlink()
    if settings.gpus_per_run is not None:
        return settings.gpus_per_run
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _host_and_port(address: str | None) -> tuple[str, int] | None:
    """``(host, port)`` of an explicit ``host:port`` or ``ray://host:port`` address; None for
    a local instance and ``auto`` (Ray finds that one itself)."""
    if address in (None, "local", "auto"):
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def _write_probe(path: str) -> str:
    Path(path).write_text(socket.gethostname(), encoding="utf-8")
    return socket.gethostname()


def _run_in_worker(run: RunFunction, config: Any, raw: RawData) -> list[dict[str, Any]]:
    """One run (or one grid set) on a worker, its console output dropped: the run's files hold
    everything."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.redirect_stdout(io.StringIO()):
        return run(config, raw)


def run_all(run: RunFunction, configs: list[Any], labels: list[str], raw: RawData,
            settings: RaySettings) -> list[list[dict[str, Any]] | BaseException]:
    """Run every config (a ``RunConfig``) as a Ray task calling ``run(config, raw)``; per
    config its results, or the error of its last attempt. Prints one progress line whenever a run ends (and every
    :data:`PROGRESS_EVERY_S` seconds): done, failed and still submitted, elapsed time and ETA."""
    ray = _ray()
    gpus = connect(settings, configs[0].log_dir)
    task = ray.remote(_run_in_worker).options(
        num_cpus=settings.cpus_per_run, num_gpus=gpus, max_retries=RETRIES,
        retry_exceptions=True)
    raw_ref = ray.put(raw)
    pending = {task.remote(run, dataclasses.replace(config, progress_bar=False), raw_ref): index
               for index, config in enumerate(configs)}
    outcomes: list[Any] = [None] * len(configs)
    started, failed = time.perf_counter(), 0
    print(f"Ray: {len(configs)} runs submitted ({settings.cpus_per_run:g} CPU, {gpus:g} GPU "
          f"each; cluster: {ray.cluster_resources()})")
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=PROGRESS_EVERY_S)
        for ref in ready:
            index = pending.pop(ref)
            try:
                outcomes[index] = ray.get(ref)
            except Exception as error:  # noqa: BLE001 - reported as this run's failure
                outcomes[index], failed = error, failed + 1
                print(f"Ray: {labels[index]} failed after {RETRIES + 1} attempts: "
                      f"{str(error).strip().splitlines()[-1][:300]}")
        done = len(configs) - len(pending)
        print(f"Ray: {done - failed} done, {failed} failed, {len(pending)} submitted "
              f"({eta_text(started, done, len(pending))})")
    return outcomes
