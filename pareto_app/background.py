"""A run on a worker thread: the solver streams iterates into a queue the page drains.

The worker never touches the page; the page never computes gradients. Each browser
session owns its own BackgroundRun, so tabs do not share runs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from .api import Diverged, Run, prepare
from .controller import Controller
from .problem import Problem
from .result import Iterate


class BackgroundRun:
    """Start with `start()`; steer with `controller`; collect with `drain()`."""

    def __init__(self, problem: Problem, solver: str, preference: Sequence[float] | None, *, steps: int | None,
                 seed: int = 0, device: str = "auto", metrics_every: int = 10, abandon_after: float | None = None,
                 **options: Any) -> None:
        self.controller = Controller()
        self._queue: queue.Queue[Iterate] = queue.Queue()
        self.status = "starting"  # starting | running | finished | stopped | diverged | failed
        self.message = ""
        self.last: Iterate | None = None
        if steps is not None and (int(steps) != steps or steps < 1):
            raise ValueError(f"steps={steps!r} must be a whole number ≥ 1 (or None to run until stopped)")
        # Preparing validates everything, so bad input fails here, on the caller's thread.
        self._run = Run(prepare(problem, solver, preference, device, options), steps, int(seed), self.controller,
                        int(metrics_every))
        self._steps = steps
        # A page that stops draining (its tab was closed) must not leave the run going forever.
        self._abandon_after = abandon_after
        self._last_drain = time.monotonic()
        self._thread = threading.Thread(target=self._work, name=f"pareto-run-{solver}", daemon=True)

    def start(self) -> BackgroundRun:
        self.status = "running"
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            for it in self._run:
                self.last = it
                self._queue.put(it)
                if self._abandon_after is not None and time.monotonic() - self._last_drain > self._abandon_after:
                    self.message = f"stopped: nothing read its iterates for {self._abandon_after:.0f} s"
                    self.controller.stop()
            stopped = self.controller.stopped or (self._steps is not None and self.last is not None
                                                  and self.last.step < self._steps - 1)
            self.status = "stopped" if stopped else "finished"
        except Diverged as err:
            self.status, self.message = "diverged", str(err)
        except Exception as err:  # noqa: BLE001 - the page shows why, instead of a dead thread
            self.status, self.message = "failed", f"{type(err).__name__}: {err}"

    def drain(self, limit: int | None = None) -> list[Iterate]:
        """The iterates produced since the last call."""
        self._last_drain = time.monotonic()
        out: list[Iterate] = []
        while limit is None or len(out) < limit:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return out

    @property
    def options(self) -> dict[str, Any]:
        """The solver's options, estimated ones included once the run has started."""
        return dict(self._run.options)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


class BackgroundJob:
    """Any long library call (a sweep, a comparison) on a worker thread, with its progress.

    `work(progress)` is called with a `progress(done, total)` callback; its return value
    lands in `result`, a ValueError or any other error in `message`.
    """

    def __init__(self, work: Any, name: str = "job") -> None:
        self._work = work
        self.done, self.total = 0, 0
        self.status = "starting"  # starting | running | finished | failed
        self.message = ""
        self.result: Any = None
        self._thread = threading.Thread(target=self._run, name=f"pareto-{name}", daemon=True)

    def start(self) -> BackgroundJob:
        self.status = "running"
        self._thread.start()
        return self

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def _run(self) -> None:
        try:
            self.result = self._work(self._progress)
            self.status = "finished"
        except Exception as err:  # noqa: BLE001 - the page shows why, instead of a dead thread
            self.status, self.message = "failed", f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) \
                else str(err)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
