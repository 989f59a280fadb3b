"""What `bench sweep` prints after its speedups (issue 9): host reads per step, and peak memory
against the number of inner steps.

Host reads: every `.item()`, `.tolist()`, `.numpy()`, `.cpu()`, `bool()`, `float()`, `int()` or
index taken of a tensor while a batched sweep runs, counted with the CPU-only shortcuts
(`pareto_app.sync.may_read`) turned off, so the count is what a GPU would wait for. Steps read
nothing; what is left is the recording of iterates, once per recorded step.

Peak memory: the most tensor memory held at once during a few steps, on CUDA from the caching
allocator's statistics, on the CPU from torch's profiler (its allocation events, summed in time
order). The inner loops keep only what their estimator needs, so CG's memory is flat in the number
of inner steps and Neumann's grows with the trajectory it keeps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from . import sync, tasks
from .api import stream, sweep

HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")


@contextlib.contextmanager
def counted_host_reads() -> Iterator[list[str]]:
    """Inside: every host read of a tensor is appended (by name) to the list yielded."""
    reads: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}
    may_read = sync.may_read

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def method(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            reads.append(name)
            return original(self, *args, **kwargs)
        return method

    try:
        sync.may_read = lambda t: False
        for name, original in originals.items():
            setattr(torch.Tensor, name, counting(name, original))
        yield reads
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
        sync.may_read = may_read


def host_reads_per_step(task: str, solver: str, device: str = "cpu", B: int = 16, steps: int = 40,
                        metrics_every: int = 10, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Host reads per step of a batched sweep of B preferences (the start and its estimates not included)."""
    problem = tasks.get(task, device=device, **(params or {}))
    preferences = np.random.default_rng(0).dirichlet(np.ones(problem.num_objectives), B)
    sweep(problem, solver, preferences, steps=2, device=device, metrics_every=metrics_every)  # traced, warm
    with counted_host_reads() as reads:
        sweep(problem, solver, preferences, steps=1, device=device, metrics_every=metrics_every)
    start = len(reads)
    with counted_host_reads() as reads:
        sweep(problem, solver, preferences, steps=steps + 1, device=device, metrics_every=metrics_every)
    recorded = len(range(0, steps + 1, metrics_every))
    return {"task": problem.name, "solver": solver, "device": device, "B": B, "steps": steps,
            "reads per step": (len(reads) - start) / steps, "recorded steps": recorded,
            "reads per recorded step": (len(reads) - start) / recorded}


def peak_memory_bytes(run: Callable[[], Any], device: str) -> int:
    """The most tensor memory `run()` held at once, over what was held before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - before)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    # An operator's self memory is what it allocated and kept; "[memory]" events are frees outside operators.
    changes = sorted((e.time_range.start, e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage)
                     for e in prof.events())
    held = np.cumsum([change for _, change in changes]) if changes else np.zeros(1)
    return int(max(held.max(), 0))


def inner_steps_memory(task: str = "hyper-cleaning", device: str = "cpu", inner: tuple[int, int] = (16, 128),
                       steps: int = 1, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Peak memory of a few steps with `inner` lower-level (and CG) steps per step, per estimator
    (wc-mhgd and forum: the task's lower level must be strongly convex)."""
    problem = tasks.get(task, device=device, **(params or {}))
    # Fixed small step sizes: the memory of a step does not depend on them, and the start then skips its
    # curvature estimates (power iterations), which would take longer than the steps measured.
    steps_wc, steps_forum = {"alpha": 1e-3, "beta": 1e-3}, {"eta": 1e-3, "mu": 1e-3}
    cases = {"wc-mhgd (CG)": ("wc-mhgd", lambda n: {"hypergrad": "cg", "D": n, "N": n, **steps_wc}),
             "wc-mhgd (Neumann)": ("wc-mhgd", lambda n: {"hypergrad": "neumann", "D": n, **steps_wc}),
             "forum": ("forum", lambda n: {"T": n, **steps_forum})}
    rows = []
    for label, (solver, options) in cases.items():
        peaks = []
        for n in inner:
            # The start (its curvature estimates) and the first step run before the measured steps, and a last
            # step after them: a run's end measures its final metrics, which are not a step's memory.
            iterates = stream(problem, solver, None, steps=steps + 2, device=device, metrics_every=10**9, **options(n))
            next(iterates)
            peaks.append(peak_memory_bytes(lambda iterates=iterates: [next(iterates) for _ in range(steps)], device))
            iterates.close()
        rows.append({"task": problem.name, "solver": label, "device": device,
                     **{f"peak MB, {n} inner": p / 2**20 for n, p in zip(inner, peaks, strict=True)},
                     f"ratio {inner[-1]}/{inner[0]}": peaks[-1] / max(peaks[0], 1)})
    return rows
