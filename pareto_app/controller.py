"""Steering a running solver from another thread: preference, pause, resume, stop."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np


class Controller:
    """Thread-safe handle on a run. A new preference takes effect at the solver's next step.

    The preference is validated against the problem when the run picks it up; an invalid
    one raises ValueError here if the number of objectives is already known.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()
        self._stopped = False
        self._preference: np.ndarray | None = None
        self._version = 0
        self.num_objectives: int | None = None

    def set_preference(self, preference: Sequence[float] | np.ndarray) -> None:
        """Steer the run toward `preference` from its next step on."""
        from .preference import normalize_preference

        S = self.num_objectives
        if S is None:  # before the run starts: the length is checked when the run takes it up
            try:
                S = len(preference)
            except TypeError:
                raise ValueError(f"preference {preference!r:.80} is not a list of numbers; accepted: one "
                                 "non-negative number per objective, not all zero") from None
        r = normalize_preference(preference, S)
        with self._lock:
            self._preference = r
            self._version += 1

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._running.set()  # wake a paused run so it can end

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        with self._lock:
            return self._stopped

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True when the run may go on."""
        return self._running.wait(timeout)

    def take_preference(self, seen: int) -> tuple[int, np.ndarray | None]:
        """(version, preference) if the preference changed since version `seen`."""
        with self._lock:
            if self._version == seen:
                return seen, None
            return self._version, None if self._preference is None else self._preference.copy()
