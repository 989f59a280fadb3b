"""First- and second-order oracles of a problem, with the counters of Definition 4.2.

mobl-wc-mhgd Definition 4.2 measures an algorithm by its oracle calls: UL gradients
(∇_x f_s, ∇_y f_s), LL gradients (∇g), Jacobian-vector products ∇²_xy g v and
Hessian-vector products ∇²_yy g v. Every oracle bumps its counter by the number of
vectors it was handed, so solvers are compared at equal budget.

Second-order products are taken at a `LowerPoint`: the graph of ∇g(x, y) is built once
and each product is one backward pass through it (reverse-over-reverse), so the N products
of a CG solve share one forward pass. `second_order="forward"` uses torch.func's
forward-over-reverse instead; `python -m pareto_app bench hvp` compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch.func import grad, jvp, vmap

from .problem import Problem


@dataclass
class OracleCounts:
    """Oracle calls so far (Definition 4.2 of mobl-wc-mhgd)."""

    ul_grad: int = 0  # ∇f_s evaluations, one per objective
    ll_grad: int = 0  # ∇g evaluations
    jvp: int = 0  # ∇²_xy g v products
    hvp: int = 0  # ∇²_yy g v products

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def total(self) -> int:
        return self.ul_grad + self.ll_grad + self.jvp + self.hvp


def _count(V: torch.Tensor) -> int:
    return 1 if V.dim() == 1 else V.shape[0]


class LowerPoint:
    """Second-order products of g at one point (x, y), sharing one graph of ∇g."""

    def __init__(self, oracles: Oracles, x: torch.Tensor, y: torch.Tensor, batch: Any) -> None:
        self.counts = oracles.counts
        self.tick = oracles._tick
        self.forward = oracles.second_order == "forward"
        self.g = oracles.lower_fn(batch)
        self.x, self.y = x, y
        if not self.forward:
            with torch.enable_grad():
                self.xg = x.detach().requires_grad_(True)
                self.yg = y.detach().requires_grad_(True)
                gx, self.gy = torch.autograd.grad(self.g(self.xg, self.yg), (self.xg, self.yg), create_graph=True,
                                                  allow_unused=True)
                # A lower level that ignores x has no cross terms: ∇_x g = 0 (kept in the graph).
                self.gx = gx if gx is not None else self.xg * 0.0

    def _backward(self, outputs: tuple[torch.Tensor, ...], inputs: tuple[torch.Tensor, ...],
                  V: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        batched = V[0].dim() == 2
        with torch.enable_grad():
            out = torch.autograd.grad(outputs, inputs, V, retain_graph=True, allow_unused=True,
                                      is_grads_batched=batched)
        return tuple(torch.zeros(V[0].shape[:-1] + i.shape, dtype=i.dtype, device=i.device) if o is None
                     else o.detach() for o, i in zip(out, inputs))

    def _forward_both(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def both(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return jvp(lambda yy: grad(self.g, argnums=(0, 1))(self.x, yy), (self.y,), (v,))[1]

        return vmap(both)(V) if V.dim() == 2 else both(V)

    def hvp(self, V: torch.Tensor) -> torch.Tensor:
        """∇²_yy g V for V of shape [q] or [B, q]."""
        self.tick()
        self.counts.hvp += _count(V)
        if self.forward:
            return self._forward_both(V)[1]
        return self._backward((self.gy,), (self.yg,), (V,))[0]

    def jvp_xy(self, V: torch.Tensor) -> torch.Tensor:
        """∇²_xy g V (a p-vector per v)."""
        self.tick()
        self.counts.jvp += _count(V)
        if self.forward:
            return self._forward_both(V)[0]
        return self._backward((self.gy,), (self.xg,), (V,))[0]

    def jvp_and_hvp(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇²_xy g V, ∇²_yy g V) from one pass."""
        self.tick()
        self.counts.jvp += _count(V)
        self.counts.hvp += _count(V)
        if self.forward:
            return self._forward_both(V)
        return self._backward((self.gy,), (self.xg, self.yg), (V,))

    def constraint_jvp(self, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """J_h d = ∇²_yx g dx + ∇²_yy g dy, the derivative of h(z) = ∇_y g along d = (dx, dy)."""
        self.counts.jvp += _count(dx)
        self.counts.hvp += _count(dx)
        if self.forward:
            def one(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
                return jvp(lambda xx, yy: grad(self.g, argnums=1)(xx, yy), (self.x, self.y), (a, b))[1]

            return vmap(one)(dx, dy) if dx.dim() == 2 else one(dx, dy)
        # By symmetry of ∇²g, J_h d is the y-gradient of ⟨∇_z g, d⟩.
        return self._backward((self.gx, self.gy), (self.yg,), (dx, dy))[0]


class Oracles:
    """Counted oracles of one problem. `batch` arguments select the stochastic form."""

    def __init__(self, problem: Problem, second_order: str = "reverse") -> None:
        if second_order not in ("reverse", "forward"):
            raise ValueError(f"second_order={second_order!r}; accepted: 'reverse', 'forward'")
        self.problem = problem
        self.second_order = second_order
        self.counts = OracleCounts()
        # Called at every oracle call when set: a run's control channel, so a slow step can be
        # paused or stopped between its inner iterations (it may block, or raise to stop).
        self.poll: Any = None

    def _tick(self) -> None:
        if self.poll is not None:
            self.poll()

    def lower_fn(self, batch: Any) -> Any:
        if batch is None:
            return self.problem.lower
        lower = self.problem.minibatches.lower
        return lambda x, y: lower(x, y, batch)

    def _upper_fns(self, batches: Any) -> list[Any]:
        if batches is None:
            return list(self.problem.upper)
        return [(lambda x, y, f=f, b=b: f(x, y, b)) for f, b in zip(self.problem.minibatches.upper, batches)]

    # -- first order -------------------------------------------------------------------------
    def upper(self, x: torch.Tensor, y: torch.Tensor, batches: Any = None) -> tuple[torch.Tensor, ...]:
        """F(x, y) [S], ∇_x F [S, p] and ∇_y F [S, q]."""
        self._tick()
        fs = self._upper_fns(batches)
        S = len(fs)
        with torch.enable_grad():
            xg, yg = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
            values = torch.stack([f(xg, yg) for f in fs])
            eye = torch.eye(S, dtype=values.dtype, device=values.device)
            gx, gy = torch.autograd.grad(values, (xg, yg), eye, is_grads_batched=True, allow_unused=True)
        self.counts.ul_grad += S
        gx = torch.zeros(S, x.numel(), dtype=x.dtype, device=x.device) if gx is None else gx
        gy = torch.zeros(S, y.numel(), dtype=y.dtype, device=y.device) if gy is None else gy
        return values.detach(), gx.detach(), gy.detach()

    def upper_values(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """F(x, y) without gradients (not an oracle call in Definition 4.2's sense)."""
        with torch.no_grad():
            return torch.stack([f(x, y) for f in self.problem.upper])

    def lower_grad_y(self, x: torch.Tensor, y: torch.Tensor, batch: Any = None) -> torch.Tensor:
        """∇_y g(x, y)."""
        self._tick()
        self.counts.ll_grad += 1
        with torch.enable_grad():
            yg = y.detach().requires_grad_(True)
            return torch.autograd.grad(self.lower_fn(batch)(x, yg), yg)[0].detach()

    def lower_grad(self, x: torch.Tensor, y: torch.Tensor, batch: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇_x g, ∇_y g) in one pass."""
        self._tick()
        self.counts.ll_grad += 1
        with torch.enable_grad():
            xg, yg = x.detach().requires_grad_(True), y.detach().requires_grad_(True)
            gx, gy = torch.autograd.grad(self.lower_fn(batch)(xg, yg), (xg, yg), allow_unused=True)
        gx = torch.zeros_like(x) if gx is None else gx.detach()
        return gx, gy.detach()

    # -- second order ------------------------------------------------------------------------
    def at(self, x: torch.Tensor, y: torch.Tensor, batch: Any = None) -> LowerPoint:
        """The point (x, y) for second-order products of g."""
        self._tick()
        return LowerPoint(self, x, y, batch)

    def hvp(self, x: torch.Tensor, y: torch.Tensor, V: torch.Tensor, batch: Any = None) -> torch.Tensor:
        return self.at(x, y, batch).hvp(V)

    def jvp_xy(self, x: torch.Tensor, y: torch.Tensor, V: torch.Tensor, batch: Any = None) -> torch.Tensor:
        return self.at(x, y, batch).jvp_xy(V)

    def jvp_and_hvp(self, x: torch.Tensor, y: torch.Tensor, V: torch.Tensor,
                    batch: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.at(x, y, batch).jvp_and_hvp(V)
