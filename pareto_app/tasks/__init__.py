"""Tasks: `names()`, `get(name, **params)`, `spec(name)` for a task's parameters.

Every module in this package that defines a `TASK` registers itself on import; a new task
is a new module, nothing else to edit.
"""

import importlib
import pkgutil

from .registry import DEFAULT_TASK, Param, Task, get, names, register, spec

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in ("registry", "quadratic_common", "dataset") and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["DEFAULT_TASK", "Param", "Task", "get", "names", "register", "spec"]
