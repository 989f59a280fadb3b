"""The task registry: names, typed parameters with their accepted ranges, and builders."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..problem import Problem, resolve_device


@dataclass(frozen=True)
class Param:
    """One parameter of a task: its default, its type, and what is accepted."""

    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None

    def check(self, task: str, name: str, value: Any) -> Any:
        kind = type(self.default)
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{task}: parameter {name}={value!r} must be true or false")
            return value
        if kind in (int, float) and isinstance(value, (bool, np.bool_)):  # int(True) would pass as 1
            raise ValueError(f"{task}: parameter {name}={value!r} must be a number, not a boolean")
        if kind in (int, float) and isinstance(value, (float, np.floating)) and not math.isfinite(value):
            raise ValueError(f"{task}: parameter {name}={value!r} must be a finite number")
        try:
            cast = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{task}: parameter {name}={value!r} must be a {kind.__name__}") from None
        if kind is float and not math.isfinite(cast):  # "nan", "inf", or an int beyond the float range
            raise ValueError(f"{task}: parameter {name}={value!r} must be a finite number")
        if kind is int and cast != value:
            raise ValueError(f"{task}: parameter {name}={value!r} must be a whole number")
        if self.choices is not None and cast not in self.choices:
            raise ValueError(f"{task}: parameter {name}={value!r} is not accepted; choose one of {list(self.choices)}")
        if (self.low is not None and cast < self.low) or (self.high is not None and cast > self.high):
            raise ValueError(f"{task}: parameter {name}={value!r} is out of range; accepted: {self.low} to {self.high}")
        return cast


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    build: Callable[..., Problem]
    params: dict[str, Param] = field(default_factory=dict)


_TASKS: dict[str, Task] = {}
DEFAULT_TASK = "toy-quadratic"


def register(task: Task) -> Task:
    _TASKS[task.name] = task
    return task


def names() -> list[str]:
    """The names of all registered tasks."""
    return list(_TASKS)


def spec(name: str) -> Task:
    """A task's description and parameters."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; accepted: {', '.join(_TASKS)}")
    return _TASKS[name]


def get(name: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64, **params: Any) -> Problem:
    """Build task `name` with `params` (defaults for the rest) on `device` in `dtype`."""
    task = spec(name)
    unknown = sorted(set(params) - set(task.params))
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; accepted: {sorted(task.params)}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype {dtype} is not supported; accepted: torch.float32, torch.float64")
    values = {key: p.check(name, key, params.get(key, p.default)) for key, p in task.params.items()}
    target = resolve_device(device)

    def rebuild(dev: torch.device, dt: torch.dtype) -> Problem:
        return get(name, device=dev, dtype=dt, **values)

    problem = task.build(device=target, dtype=dtype, **values)
    return replace(problem, name=name, params=values, rebuild=rebuild)
