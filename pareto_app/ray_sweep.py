"""`pa.sweep(..., backend="ray")`: the local sweep's chunks, each run as one Ray task.

Why a module of its own: Ray is an optional dependency (`pip install 'pareto-app[ray]'`), imported
only here and only when asked for, and the Ray-specific concerns — connecting, shipping the problem
once, gathering in order, unwrapping task errors — stay out of `api.sweep`.

Each task runs exactly what the local sweep runs for its chunk of `chunk_size` rows (one batched run,
or one `solve` per row; the same seed and options), so the gathered results are the local sweep's,
bit for bit, where both run on the CPU. Ray hides GPUs from tasks that reserve none, so
`device="auto"` runs on the workers' CPUs. A problem from the task registry travels as its name and
parameters and is rebuilt in the task (a data task's arrays are not shipped); any other problem is
pickled once into the object store (cloudpickle carries lambdas and closures). Workers must be able to
import `pareto_app` (and read a data task's files) — true on a local instance, to arrange on a cluster.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .problem import Problem
from .result import Result

INSTALL = ("backend='ray' needs Ray, which is not installed: install it with pip install 'pareto-app[ray]' "
           "(or pip install ray), or use backend='local'")
ACCEPTED_ADDRESS = ("accepted: the \"host:port\" of a running Ray cluster's head (e.g. started by `ray start --head`), "
                    "'ray://host:port' for Ray Client, 'auto' for the cluster started on this machine, "
                    "or None for a local Ray instance")
DISCARD_WAIT_S = 2.0  # after an error, how long the cancelled chunks may take to end
TICK_S = 0.5  # while chunks run, `tick` (a heartbeat, a stop check) is called at least this often
CONNECT_TIMEOUT_S = 5.0  # a quick TCP check first: Ray itself retries a dead address for many minutes


@dataclass(frozen=True)
class RegisteredTask:
    """A registry problem as what rebuilds it: a few numbers instead of its data."""

    name: str
    params: dict[str, Any]
    dtype: torch.dtype
    x0: torch.Tensor  # the start travels too: a registry problem may have been given another one
    y0: torch.Tensor

    def build(self) -> Problem:
        from . import tasks

        problem = tasks.get(self.name, device="cpu", dtype=self.dtype, **self.params)
        return replace(problem, x0=self.x0.to(problem.dtype), y0=self.y0.to(problem.dtype))


def ray_sweep(problem: Problem, solver: str, P: np.ndarray, *, chunk_size: int, address: str | None,
              progress: Callable[[int, int], None] | None, run_args: dict[str, Any],
              on_chunk: Callable[[int, list[Result]], None] | None = None,
              tick: Callable[[], bool] | None = None) -> list[Result]:
    """The results of `api.sweep(problem, solver, P, **run_args)` run locally, one Ray task per chunk.

    Rows [0:c], [c:2c], ... (c = `chunk_size`) are the local sweep's chunks; results come back in row
    order. `progress(done_rows, total_rows)` is called as chunks finish, and `on_chunk(first_row,
    results)` with each chunk's results (the app archives them as they come). `tick()`, called at
    least every `TICK_S` while waiting, may say stop (True): the chunks not yet finished are
    cancelled and the results of those that were are returned. Ray is started (address None: a local
    instance) or connected to (`address`) unless this process is already connected, in which case that
    connection is used whatever `address` says. A task's ValueError (or Diverged) is raised as itself.
    """
    ray = _ray()
    _connect(ray, address)
    payload = ray.put(_payload(problem))  # once: every task reads the same object
    task = ray.remote(num_cpus=1)(_run_chunk)
    chunks = [P[i:i + chunk_size] for i in range(0, len(P), chunk_size)]
    refs = [task.remote(payload, solver, chunk, run_args) for chunk in chunks]
    index = {ref: i for i, ref in enumerate(refs)}
    gathered: list[list[Result] | None] = [None] * len(chunks)
    pending, done = list(refs), 0
    try:
        while pending:
            if tick is not None and tick():
                break
            ready, pending = ray.wait(pending, num_returns=1, timeout=TICK_S)
            for ref in ready:
                i = index[ref]
                gathered[i] = _get(ray, ref)
                done += len(chunks[i])
                if on_chunk is not None:
                    on_chunk(i * chunk_size, gathered[i])
                if progress is not None:
                    progress(done, len(P))
    finally:
        if pending:  # an error or an interrupt: the other chunks are not wanted any more
            _discard(ray, pending)
    return [result for chunk in gathered for result in chunk or ()]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError(INSTALL) from None
    return ray


def _connect(ray: Any, address: str | None) -> None:
    """Start or join Ray, unless already connected; ValueError naming an address that cannot be joined."""
    if ray.is_initialized():
        return
    if address is None or address == "local":
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        return
    if not isinstance(address, str):
        raise ValueError(f"address={address!r:.60}; {ACCEPTED_ADDRESS}")
    if address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as err:
        ray.shutdown()  # nothing half-connected left behind for the next try
        raise ValueError(f"cannot connect to a Ray cluster at address={address!r} ({err}); {ACCEPTED_ADDRESS}") from None


def _check_reachable(address: str) -> None:
    """ValueError unless `address` is host:port (or ray://host:port) with something listening there."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address={address!r:.60} is not host:port; {ACCEPTED_ADDRESS}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ValueError(f"no Ray cluster answers at address={address!r} ({err}); {ACCEPTED_ADDRESS}") from None


def _payload(problem: Problem) -> Problem | RegisteredTask:
    from . import tasks

    if problem.rebuild is not None and problem.name in tasks.names() and isinstance(problem.params, dict):
        return RegisteredTask(problem.name, dict(problem.params), problem.dtype, problem.x0.detach().cpu(),
                              problem.y0.detach().cpu())
    return problem


def _run_chunk(payload: Problem | RegisteredTask, solver: str, rows: np.ndarray, run_args: dict[str, Any]) -> list[Result]:
    """One Ray task: what the local sweep runs for these rows (already normalised), on one core.

    `api.sweep_chunk`, not `api.sweep(rows)`: that would normalise the rows again, and r / Σr of an r
    that sums to one is not always r to the last bit, so the runs would differ from the local sweep's."""
    from .api import sweep_chunk

    torch.set_num_threads(1)  # the task reserved one CPU; more threads would fight the other tasks
    problem = payload.build() if isinstance(payload, RegisteredTask) else payload
    return sweep_chunk(problem, solver, rows, **run_args)


def _discard(ray: Any, refs: list[Any]) -> None:
    """Cancel these chunks, and read what the ended ones raised, so Ray does not log it as an unhandled error."""
    for ref in refs:
        ray.cancel(ref)
    ended, _ = ray.wait(refs, num_returns=len(refs), timeout=DISCARD_WAIT_S)
    for ref in ended:
        with contextlib.suppress(Exception):
            ray.get(ref)


def _get(ray: Any, ref: Any) -> list[Result]:
    """`ray.get`, with a task's ValueError (or Diverged) raised as itself, as the local sweep raises it."""
    from .api import Diverged

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, (ValueError, Diverged)):
            raise err.cause from None
        raise
