"""WC-MHGD (mobl-wc-mhgd Algorithm 1), MGDA and linear scalarization for B runs at once (issue 9).

The loop of `wc_mhgd.py`, with every quantity carrying a leading run axis: X (B, p), Y (B, q), the
hypergradients (B, S, p), the Gram matrices (B, S, S), the preferences R (B, S). One batched oracle
call serves all runs, and the weighting QPs are solved together on the runs' device.

    for k = 0, 1, ...
        Y^t = Y^{t−1} − α ∇_y g(X, Y^{t−1}),  t ≤ D                 (lines 3-6, warm-started)
        ∇̂Φ = ∇_x F − ∇²_xy g V,  ∇²_yy g V = ∇_y F by CG (Eq. 3)    (lines 7-14; or Neumann, Eq. 4)
        λ = argmin_Δ ‖∇̂Φ(r ⊙ λ)‖² − u λᵀ(r ⊙ Φ)   per run          (line 15, Eq. 5)
        X ← X − β_b ∇̂Φ (r ⊙ λ)                                       (line 16)

The options (α, D, N, β or L̂_φ) are those the sequential solver resolves at its start: the problem's
start is the same for every run, so they are estimated once, and β follows each run's preference
exactly as it does in a sequential run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..hypergrad import batched_cg
from ..oracles import Oracles
from ..problem import Problem
from ..qp import min_norm_weights_batched, wc_weights_batched
from ..stepsize import weighted_step

if TYPE_CHECKING:
    from .wc_mhgd import HypergradientDescent


@dataclass(frozen=True)
class Config:
    """What the sequential init resolved, fixed for the whole run."""

    rule: str  # "chebyshev" | "min-norm" | "fixed"
    alpha: float
    D: int
    N: int
    neumann: bool
    u: float
    beta: float | None  # a given β; None: β_b = 1/(w_max(r_b) L̂_φ)
    lipschitz: float


@dataclass(frozen=True)
class State:
    X: torch.Tensor  # (B, p)
    Y: torch.Tensor  # (B, q): Y^D of the last step, the next warm start
    V: torch.Tensor | None  # (B, S, q): CG's warm start
    lam: torch.Tensor | None  # (B, S): the last QP solution, the next QP's warm start


@dataclass(frozen=True)
class Output:
    X: torch.Tensor  # the point where F was evaluated (before the update)
    Y: torch.Tensor
    objectives: torch.Tensor  # (B, S)
    weights: torch.Tensor  # (B, S), summing to 1 per run
    direction_norm: torch.Tensor  # (B,) ‖d‖²
    qp_gap: torch.Tensor  # (B,) the weighting QP's Frank-Wolfe certificate (0 for fixed weights)
    finite_weighting: torch.Tensor  # (B,) False where the QP's input was non-finite: that run has diverged
    multipliers: torch.Tensor | None = None  # (B, S) the KKT multipliers ω, where the solver has its own
    schedule: dict[str, torch.Tensor] | None = None  # (B,) each: what an adaptive solver set this step (step size, ...)


def config_of(solver: HypergradientDescent, options: dict[str, Any], lipschitz: float,
              given_beta: float | None) -> Config:
    """The resolved `options` of the sequential init; `given_beta` the user's β (None: estimated per run)."""
    given = None if given_beta is None else float(given_beta)
    return Config(rule=solver.weighting_name, alpha=float(options["alpha"]), D=int(options["D"]), N=int(options["N"]),
                  neumann=options["hypergrad"] == "neumann", u=float(options.get("u", 0.0)), beta=given,
                  lipschitz=lipschitz)


def step_sizes(config: Config, R: torch.Tensor) -> torch.Tensor:
    """β per run: the given one, or 1/(w_max L̂_φ) with w_max = max r_b (1 for the min-norm rule)."""
    if config.beta is not None:
        return torch.full(R.shape[:1], config.beta, dtype=R.dtype, device=R.device)
    if config.rule == "min-norm":
        return torch.full(R.shape[:1], weighted_step(config.lipschitz, 1.0), dtype=R.dtype, device=R.device)
    return 1.0 / (R.amax(dim=1) * max(config.lipschitz, 1e-300))


def start(algo: HypergradientDescent, problem: Problem, options: dict[str, Any], preferences: np.ndarray,
          steps: int, generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options): the sequential init, run once.

    The problem's start is the same for every run, so the estimates (α, D, N, L̂_φ) are too; β
    follows each run's preference as in its sequential run."""
    with torch.no_grad():
        first = algo.init(problem, preferences[0], dict(options, steps=steps), oracles, generator)
    resolved = {k: v for k, v in first.options.items() if k != "steps"}
    config = config_of(algo, resolved, first.lipschitz, given_beta=options.get("beta"))
    R = torch.as_tensor(preferences, dtype=torch.float64, device=problem.device)
    betas = step_sizes(config, R).cpu().numpy()
    B = len(preferences)
    state = State(X=problem.x0.expand(B, -1).clone(), Y=problem.y0.expand(B, -1).clone(), V=None, lam=None)
    per_run = [dict(resolved, beta=float(b)) if config.beta is None else dict(resolved) for b in betas]
    return config, state, per_run


def restart(config: Config, state: State, dead: torch.Tensor, problem: Problem, R: torch.Tensor) -> State:
    """The runs marked `dead` (diverged) step on from the start, harmlessly, so that no non-finite
    value of theirs reaches the batch's QPs and metrics."""
    return State(X=torch.where(dead[:, None], problem.x0, state.X), Y=torch.where(dead[:, None], problem.y0, state.Y),
                 V=None if state.V is None else torch.where(dead[:, None, None], 0.0, state.V),
                 lam=None if state.lam is None else torch.where(dead[:, None], 1.0 / R.shape[1], state.lam))


def step(config: Config, state: State, R: torch.Tensor, oracles: BatchedOracles) -> tuple[State, Output]:
    X = state.X
    # Lines 3-6: D warm-started gradient steps on g(x_b, ·). Neumann needs the trajectory; CG only its
    # end, so its memory stays flat in D.
    Y = state.Y
    ys = [Y]
    for _ in range(config.D):
        Y = Y - config.alpha * oracles.lower_grad_y(X, Y)
        if config.neumann:
            ys.append(Y)
    # Lines 7-14: S hypergradients per run, one batch.
    phi, GX, GY = oracles.upper(X, Y)
    if config.neumann:
        hyper, V = _neumann(config.alpha, oracles, X, ys, GX, GY), None
    else:
        point = oracles.at(X, Y)
        V = batched_cg(point.hvp, GY, state.V, config.N)
        hyper = GX - point.jvp_xy(V)  # Eq. (3)
    # Line 15: the weights from the Gram matrices; a run whose values went non-finite (it has diverged
    # and its rows are ignored) must not break the others' QP.
    gram = (hyper @ hyper.transpose(1, 2)).double()
    finite = torch.isfinite(gram).all(dim=(1, 2)) & torch.isfinite(phi).all(dim=1)
    if config.rule == "fixed":  # no QP: only the direction itself must stay finite
        finite = torch.ones_like(finite)
    eye = torch.eye(gram.shape[1], dtype=gram.dtype, device=gram.device).expand_as(gram)
    gram = torch.where(finite[:, None, None], gram, eye)
    phi_qp = torch.where(finite[:, None], phi.double(), 0.0)
    Rd = R.double()
    lam = state.lam
    if config.rule == "chebyshev":
        lam, gap = wc_weights_batched(gram, Rd, phi_qp, config.u, start=state.lam)
        w = Rd * lam
    elif config.rule == "min-norm":
        lam, gap = min_norm_weights_batched(gram)
        w = lam
    else:
        w, gap = Rd, torch.zeros_like(Rd[:, 0])
    # Line 16: x_{k+1} = x_k − β ∇̂Φ (r ⊙ λ).
    d = torch.einsum("bs,bsp->bp", w.to(hyper.dtype), hyper)
    beta = step_sizes(config, Rd).to(X.dtype)
    new = State(X=X - beta[:, None] * d, Y=Y, V=V, lam=lam)
    return new, Output(X=X, Y=Y, objectives=phi, weights=normalized_weights(w), direction_norm=(d * d).sum(dim=1),
                       qp_gap=gap, finite_weighting=finite)


def normalized_weights(w: torch.Tensor) -> torch.Tensor:
    """As `base.normalized`, per row: weights summing to 1, uniform where the rule put none anywhere."""
    weights = w.clamp_min(0.0)
    total = weights.sum(dim=1, keepdim=True)
    return torch.where(total > 0, weights / torch.where(total > 0, total, 1.0), 1.0 / weights.shape[1])


def _neumann(alpha: float, oracles: BatchedOracles, X: torch.Tensor, ys: list[torch.Tensor], GX: torch.Tensor,
             GY: torch.Tensor) -> torch.Tensor:
    """Eq. 4 with α inside the product (the correction `hypergrad.Neumann` documents), for B runs."""
    w = GY
    acc = torch.zeros_like(GX)
    for t in range(len(ys) - 2, -1, -1):
        point = oracles.at(X, ys[t])
        if t > 0:
            jw, hw = point.jvp_and_hvp(w)
            acc = acc + jw
            w = w - alpha * hw
        else:
            acc = acc + point.jvp_xy(w)
    return GX - alpha * acc
