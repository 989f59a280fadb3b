"""The multi-objective bilevel problem: S upper functions, one lower function, a start.

    min_{x,y} F(x, y) = [f_1(x, y), ..., f_S(x, y)]   s.t.  y in argmin_y g(x, y)

Functions take flat tensors x (R^p) and y (R^q) and return a scalar tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

Scalar = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BatchScalar = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


@dataclass(frozen=True)
class Minibatches:
    """The stochastic form of a problem (mobl-wc-mhgd §3): F^(s)(x, y; ξ) and G(x, y; ζ).

    `upper[s](x, y, batch)` and `lower(x, y, batch)` are unbiased estimates of f_s and g
    on a batch drawn by `sample_upper(s, size, generator)` / `sample_lower(size, generator)`.
    """

    upper: Sequence[BatchScalar]
    lower: BatchScalar
    sample_upper: Callable[[int, int, torch.Generator], Any]
    sample_lower: Callable[[int, torch.Generator], Any]


@dataclass(frozen=True)
class Problem:
    """A multi-objective bilevel problem over flat tensors.

    Attributes:
        upper: the S upper-level functions f_s(x, y).
        lower: the lower-level function g(x, y).
        x0, y0: the start (1-D tensors; their dtype and device are the problem's).
        strongly_convex: whether g(x, .) is strongly convex for every x; solvers built on
            hypergradients need it and refuse a problem without it.
        name: a label for plots and exports.
        objective_names: one label per objective.
        minibatches: the stochastic form, where the problem has one.
        reference_point: for the hypervolume (objective space, S numbers).
        pareto_set: for toy problems, a function `n -> (n, p)` array of points x on the
            analytic Pareto set (with y = y*(x)); None where it is unknown.
        pareto_distance: for toy problems, `x -> distance` from x to the Pareto set.
        pareto_front: for toy problems, `n -> (n, S)` array of points of the Pareto front.
        data: a task's own constants (numpy), for references such as cvxpy's WC optimum.
        evaluate: for data tasks, `(x, y) -> {metric: value}` on held-out data (test accuracy,
            F1, ... per objective), shown beside the objectives and in reports.
        params: the parameters that built it (recorded in exports).
        rebuild: `(device, dtype) -> Problem` for problems made by the task registry, so a
            solver can move one to another device.
    """

    upper: Sequence[Scalar]
    lower: Scalar
    x0: torch.Tensor
    y0: torch.Tensor
    strongly_convex: bool = True
    name: str = "custom"
    objective_names: Sequence[str] | None = None
    minibatches: Minibatches | None = None
    reference_point: Sequence[float] | None = None
    pareto_set: Callable[[int], np.ndarray] | None = None
    pareto_distance: Callable[[torch.Tensor], float] | None = None
    pareto_front: Callable[[int], np.ndarray] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    evaluate: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    rebuild: Callable[[torch.device, torch.dtype], Problem] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.upper, (str, bytes)) or not isinstance(self.upper, Sequence):
            raise ValueError(f"Problem.upper must be a list of functions f_s(x, y); got {type(self.upper).__name__}")
        if len(self.upper) == 0:
            raise ValueError("Problem needs at least one upper-level function; got none")
        for s, f in enumerate(self.upper):
            if not callable(f):
                raise ValueError(f"Problem.upper[{s}] must be a function f(x, y) -> scalar tensor; got {f!r:.80}")
        if not callable(self.lower):
            raise ValueError(f"Problem.lower must be a function g(x, y) -> scalar tensor; got {self.lower!r:.80}")
        if not isinstance(self.strongly_convex, (bool, np.bool_)):
            raise ValueError(f"Problem.strongly_convex must be True or False; got {self.strongly_convex!r:.80}")
        if not isinstance(self.name, str):
            raise ValueError(f"Problem.name must be a string; got {self.name!r:.80}")
        for name, value in (("x0", self.x0), ("y0", self.y0)):
            if not isinstance(value, torch.Tensor) or value.dim() != 1:
                raise ValueError(f"Problem.{name} must be a 1-D torch tensor; got {value!r:.80}")
            if not value.is_floating_point():
                raise ValueError(f"Problem.{name} must be floating point; got {value.dtype}")
        if self.x0.dtype != self.y0.dtype or self.x0.device != self.y0.device:
            raise ValueError(
                f"x0 and y0 must share dtype and device; got {self.x0.dtype}/{self.x0.device} "
                f"and {self.y0.dtype}/{self.y0.device}"
            )
        names = self.objective_names
        if names is not None and (isinstance(names, str) or not isinstance(names, Sequence)
                                  or len(names) != len(self.upper)):
            raise ValueError(f"objective_names={names!r:.80}; accepted: {len(self.upper)} labels, one per objective")
        ref = self.reference_point
        if ref is not None:
            try:
                point = np.asarray(ref, dtype=float).reshape(-1)
            except (TypeError, ValueError):
                point = np.array([np.nan])
            if point.size != len(self.upper) or not np.all(np.isfinite(point)):
                raise ValueError(f"reference_point={ref!r:.80}; accepted: {len(self.upper)} finite numbers, one per "
                                 "objective")

    @property
    def num_objectives(self) -> int:
        """S, the number of upper-level objectives."""
        return len(self.upper)

    @property
    def dims(self) -> tuple[int, int]:
        """(p, q): the sizes of x and y."""
        return self.x0.numel(), self.y0.numel()

    @property
    def dtype(self) -> torch.dtype:
        return self.x0.dtype

    @property
    def device(self) -> torch.device:
        return self.x0.device

    @property
    def labels(self) -> list[str]:
        """One label per objective."""
        return list(self.objective_names or [f"f{s + 1}" for s in range(self.num_objectives)])

    def to(self, device: str | torch.device = "auto", dtype: torch.dtype | None = None) -> Problem:
        """This problem on another device (`auto`, `cpu`, `cuda`) or dtype."""
        target = resolve_device(device)
        dtype = dtype or self.dtype
        if target == self.device and dtype == self.dtype:
            return self
        if self.rebuild is not None:
            return self.rebuild(target, dtype)
        if target != self.device:
            raise ValueError(
                f"this custom problem was built on {self.device}; its functions cannot be moved to "
                f"{target}: build it there, or use device='{self.device.type}'"
            )
        return replace(self, x0=self.x0.to(dtype), y0=self.y0.to(dtype))

    def objectives(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """F(x, y) as a tensor of S numbers."""
        return torch.stack([f(x, y) for f in self.upper])


def resolve_device(device: str | torch.device) -> torch.device:
    """`auto` means CUDA when there is a GPU, the CPU otherwise; ValueError for anything else than
    'auto', 'cpu', 'cuda' or 'cuda:N' of a GPU this machine has (a str or a torch.device)."""
    accepted = "accepted: 'auto', 'cpu', 'cuda', 'cuda:N' (or the torch.device of one)"
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device
    else:
        raise ValueError(f"device={device!r} is not a device name; {accepted}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index = name[len("cuda:"):] if name.startswith("cuda:") else "0"
        if not index.isdigit():
            raise ValueError(f"device={device!r} is not a device name; {accepted}")
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
        if int(index) >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}; {accepted}")
