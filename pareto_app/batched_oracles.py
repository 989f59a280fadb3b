"""The oracles of Definition 4.2 for B runs at once: rows of X (B, p) and Y (B, q), one run per row.

The runs are independent, so the gradient of Σ_b g(x_b, y_b) with respect to the rows is each run's
own gradient: one autograd pass serves the whole batch. The values come from `torch.func.vmap` over
the problem's plain functions of one x and one y; a custom problem whose functions vmap cannot trace
(data-dependent Python branches, `.item()`) has its values stacked run by run instead — slower, the
same numbers — with a one-line warning saying so.

Second-order products are taken at a `BatchedPoint` (reverse-over-reverse, as `oracles.LowerPoint`):
the graph of ∇g is built once per point and each block of vectors V (B, S, q) — S per run — is one
backward pass through it. Counters are per run: each oracle adds what one run's call would add.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.func import vmap

from .oracles import LowerPoint, OracleCounts, Oracles
from .problem import Problem


class BatchedOracles:
    """Counted oracles of one problem for a batch of runs."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.counts = OracleCounts()
        self.looped = False  # True once vmap failed on this problem and the loop took over
        self.parent: Oracles | None = None  # a single run's own oracles (`single`)
        upper = list(problem.upper)
        self._lower = self._batched(problem.lower)
        self._upper = self._batched(lambda x, y: torch.stack([f(x, y) for f in upper]))

    @classmethod
    def single(cls, oracles: Oracles) -> BatchedOracles:
        """One run's oracles in the batched shape (B = 1): its plain functions (vmap only costs at B = 1), its
        counts, and its control channel between oracle calls (a slow step can be paused or stopped)."""
        single = cls(oracles.problem)
        single.looped = True
        single.counts = oracles.counts
        single.parent = oracles
        return single

    def _tick(self) -> None:
        if self.parent is not None:
            self.parent._tick()

    def _batched(self, one: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
        vmapped = vmap(one)

        def call(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
            if not self.looped:
                try:
                    return vmapped(X, Y)
                except Exception as err:  # vmap's errors have no common type; any of them means: loop
                    self.looped = True
                    warnings.warn(f"{self.problem.name}: its functions cannot be vmapped ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0][:120] if str(err) else ''}); the runs of this batch are "
                                  "evaluated one after another", stacklevel=3)
            if X.shape[0] == 1:  # a single run: a view of its row, not a copy
                return one(X.squeeze(0), Y.squeeze(0)).unsqueeze(0)
            return torch.stack([one(X[b], Y[b]) for b in range(X.shape[0])])

        return call

    def lower_fn(self, batch: Any = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """g per run, or its minibatch estimate G(·, ·; batch) — the same batch for every run (runs of one
        seed draw the same samples, as their sequential runs do)."""
        if batch is None:
            return self._lower
        lower = self.problem.minibatches.lower
        return self._batched(lambda x, y: lower(x, y, batch))

    def _upper_fn(self, batches: Sequence[Any] | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        if batches is None:
            return self._upper
        fs = list(self.problem.minibatches.upper)
        return self._batched(lambda x, y: torch.stack([f(x, y, b) for f, b in zip(fs, batches)]))

    def lower_values(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """g(x_b, y_b) per run (B,); not an oracle call in Definition 4.2's sense."""
        return self._lower(X, Y)

    def upper_values(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """F(x_b, y_b) per run (B, S), without gradients; not an oracle call in Definition 4.2's sense."""
        with torch.no_grad():
            return self._upper(X, Y)

    def upper_values_with_grad(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """F(x_b, y_b) per run (B, S), differentiable (unrolled hypergradients backpropagate through it)."""
        return self._upper(X, Y)

    def own_oracles(self, X: torch.Tensor) -> Oracles | None:
        """A single run's own oracles, where these are theirs (`single`) and B = 1: its plain graph, without the
        batch's reshapes and sums in every first-order call (1.7× the cost of a FORUM step on toy-quadratic)."""
        return self.parent if self.parent is not None and X.shape[0] == 1 else None

    def lower_grad_y(self, X: torch.Tensor, Y: torch.Tensor, batch: Any = None) -> torch.Tensor:
        """∇_y g(x_b, y_b) per run: (B, q); of G(·, ·; batch) where a minibatch is given."""
        if (one := self.own_oracles(X)) is not None:
            return one.lower_grad_y(X[0], Y[0], batch)[None]
        self._tick()
        self.counts.ll_grad += 1
        with torch.enable_grad():
            Yg = Y.detach().requires_grad_(True)
            return torch.autograd.grad(self.lower_fn(batch)(X.detach(), Yg).sum(), Yg)[0].detach()

    def lower_grad(self, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇_x g, ∇_y g) per run in one pass: (B, p), (B, q)."""
        if (one := self.own_oracles(X)) is not None:
            gx, gy = one.lower_grad(X[0], Y[0])
            return gx[None], gy[None]
        self._tick()
        self.counts.ll_grad += 1
        with torch.enable_grad():
            Xg, Yg = X.detach().requires_grad_(True), Y.detach().requires_grad_(True)
            gx, gy = torch.autograd.grad(self._lower(Xg, Yg).sum(), (Xg, Yg), allow_unused=True)
        return torch.zeros_like(X) if gx is None else gx.detach(), gy.detach()

    def upper(self, X: torch.Tensor, Y: torch.Tensor,
              batches: Sequence[Any] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """F (B, S), ∇_x F (B, S, p), ∇_y F (B, S, q); of F^(s)(·, ·; batches[s]) where minibatches are given."""
        if (one := self.own_oracles(X)) is not None:
            values, gx, gy = one.upper(X[0], Y[0], batches)
            return values[None], gx[None], gy[None]
        S = self.problem.num_objectives
        self._tick()
        self.counts.ul_grad += S
        with torch.enable_grad():
            Xg, Yg = X.detach().requires_grad_(True), Y.detach().requires_grad_(True)
            values = self._upper_fn(batches)(Xg, Yg)  # (B, S)
            eye = torch.eye(S, dtype=values.dtype, device=values.device)[:, None, :].expand(S, X.shape[0], S)
            gx, gy = torch.autograd.grad(values, (Xg, Yg), eye, is_grads_batched=True, allow_unused=True)
        gx = torch.zeros(S, *X.shape, dtype=X.dtype, device=X.device) if gx is None else gx
        gy = torch.zeros(S, *Y.shape, dtype=Y.dtype, device=Y.device) if gy is None else gy
        return values.detach(), gx.detach().transpose(0, 1), gy.detach().transpose(0, 1)

    def at(self, X: torch.Tensor, Y: torch.Tensor, batch: Any = None) -> BatchedPoint | OneRunPoint:
        """The points (x_b, y_b) for second-order products of g (of G(·, ·; batch) where a minibatch is given)."""
        if (one := self.own_oracles(X)) is not None:
            return OneRunPoint(one.at(X[0], Y[0], batch))
        self._tick()
        return BatchedPoint(self, X, Y, batch)


class OneRunPoint:
    """`BatchedPoint`'s products for B = 1, from the run's own `LowerPoint` (its plain graph of ∇g)."""

    def __init__(self, point: LowerPoint) -> None:
        self.point = point

    def hvp(self, V: torch.Tensor) -> torch.Tensor:
        return self.point.hvp(V[0])[None]

    def jvp_xy(self, V: torch.Tensor) -> torch.Tensor:
        return self.point.jvp_xy(V[0])[None]

    def jvp_and_hvp(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        jx, hy = self.point.jvp_and_hvp(V[0])
        return jx[None], hy[None]

    def constraint_jvp(self, DX: torch.Tensor, DY: torch.Tensor) -> torch.Tensor:
        return self.point.constraint_jvp(DX[0], DY[0])[None]


class BatchedPoint:
    """Second-order products of g at B points, sharing one graph of ∇g."""

    def __init__(self, oracles: BatchedOracles, X: torch.Tensor, Y: torch.Tensor, batch: Any = None) -> None:
        self.counts = oracles.counts
        with torch.enable_grad():
            self.Xg = X.detach().requires_grad_(True)
            self.Yg = Y.detach().requires_grad_(True)
            gx, self.gy = torch.autograd.grad(oracles.lower_fn(batch)(self.Xg, self.Yg).sum(), (self.Xg, self.Yg),
                                              create_graph=True, allow_unused=True)
            # A lower level that ignores x has no cross terms: ∇_x g = 0 (kept in the graph).
            self.gx = gx if gx is not None else self.Xg * 0.0

    def _backward(self, outputs: tuple[torch.Tensor, ...], inputs: tuple[torch.Tensor, ...],
                  V: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        # Each V is (B, S, ·); autograd batches over a leading axis of the vectors: (S, B, ·).
        with torch.enable_grad():
            out = torch.autograd.grad(outputs, inputs, tuple(v.transpose(0, 1) for v in V), retain_graph=True,
                                      allow_unused=True, is_grads_batched=True)
        return tuple(torch.zeros(V[0].shape[:2] + i.shape[1:], dtype=i.dtype, device=i.device) if o is None
                     else o.detach().transpose(0, 1) for o, i in zip(out, inputs))

    def hvp(self, V: torch.Tensor) -> torch.Tensor:
        """∇²_yy g V per run, V of shape (B, S, q)."""
        self.counts.hvp += V.shape[1]
        return self._backward((self.gy,), (self.Yg,), (V,))[0]

    def jvp_xy(self, V: torch.Tensor) -> torch.Tensor:
        """∇²_xy g V per run: (B, S, p)."""
        self.counts.jvp += V.shape[1]
        return self._backward((self.gy,), (self.Xg,), (V,))[0]

    def jvp_and_hvp(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both products from one pass."""
        self.counts.jvp += V.shape[1]
        self.counts.hvp += V.shape[1]
        jx, hy = self._backward((self.gy,), (self.Xg, self.Yg), (V,))
        return jx, hy

    def constraint_jvp(self, DX: torch.Tensor, DY: torch.Tensor) -> torch.Tensor:
        """J_h d = ∇²_yx g dx + ∇²_yy g dy per run and row, the derivative of h(z) = ∇_y g along d = (dx, dy)."""
        self.counts.jvp += DX.shape[1]
        self.counts.hvp += DX.shape[1]
        # By symmetry of ∇²g, J_h d is the y-gradient of ⟨∇_z g, d⟩.
        return self._backward((self.gx, self.gy), (self.Yg,), (DX, DY))[0]

