"""What a worker process runs, as plain data it reads from the archive.

A `RunSpec` names a registry task (the worker rebuilds the problem from its name and
parameters), a solver and its options, a preference, and when to stop. `kind` says what the
worker does with it: one `run`, a `sweep` (one child run per row of `preferences`) or a
`compare` (one child run per solver of `arms`, at an equal budget).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .api import BACKENDS, DIVERGENCE_FACTOR
from .termination import Termination

KINDS = ("run", "sweep", "compare")
# A run nobody watches (no page has looked at it for this long) stops itself; None: never.
DEFAULT_IDLE_LIMIT_S = 600.0


@dataclass(frozen=True)
class RunSpec:
    task: str
    task_params: dict[str, Any] = field(default_factory=dict)
    solver: str = "wc-mhgd"
    options: dict[str, Any] = field(default_factory=dict)
    preference: list[float] | None = None
    seed: int = 0
    device: str = "auto"
    metrics_every: int = 10
    divergence_factor: float = DIVERGENCE_FACTOR
    termination: Termination = field(default_factory=lambda: Termination(steps=500))
    idle_limit: float | None = DEFAULT_IDLE_LIMIT_S
    kind: str = "run"
    preferences: list[list[float]] | None = None  # a sweep's rows
    arms: list[tuple[str, dict[str, Any]]] | None = None  # a comparison's (solver, options)
    backend: str = "local"  # a sweep's: its runs one after another in the worker, or its chunks on Ray
    address: str | None = None  # backend "ray": a cluster's host:port; None starts a local Ray instance

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}; accepted: {', '.join(KINDS)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r}; accepted: {', '.join(BACKENDS)}")
        if self.backend == "ray" and self.kind != "sweep":
            raise ValueError(f"backend='ray' is for a sweep; a {self.kind!r} runs in its own worker process")
        if self.backend == "ray" and (self.termination.steps is None or self.termination.oracle_budget is not None
                                      or self.termination.wall_time is not None):
            raise ValueError(f"a sweep on Ray stops each run after a number of steps; {self.termination} "
                             f"is accepted only on this machine")
        if self.idle_limit is not None and not self.idle_limit > 0:
            raise ValueError(f"idle_limit={self.idle_limit!r}; accepted: a positive number of seconds, or None")

    @property
    def steps(self) -> int | None:
        return self.termination.steps

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["termination"] = self.termination.to_dict()
        data["steps"] = self.steps  # for the archive's listing
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["termination"] = Termination.from_dict(data.get("termination") or {"steps": data.get("steps")})
        if known.get("arms") is not None:
            known["arms"] = [(str(a[0]), dict(a[1])) for a in known["arms"]]
        return cls(**known)

    def child(self, **changes: Any) -> RunSpec:
        """One run of a sweep or comparison."""
        return replace(self, kind="run", preferences=None, arms=None, backend="local", address=None, **changes)
