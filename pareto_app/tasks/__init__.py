"""Tasks: `names()`, `get(name, **params)`, `spec(name)` for a task's parameters."""

from . import toy_llgc, toy_quadratic  # noqa: F401  (registration)
from .registry import DEFAULT_TASK, Param, Task, get, names, register, spec

__all__ = ["DEFAULT_TASK", "Param", "Task", "get", "names", "register", "spec"]
