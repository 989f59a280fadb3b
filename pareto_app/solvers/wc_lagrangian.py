"""The (augmented) Lagrangian of the WC problem, and the projected-gradient phases that minimise it.

Shared by `wc-penalty` (ecmo poster, Algorithm 1) and `wc-al` (the method of multipliers on the same
problem), for B runs at once: a single run is B = 1. With z = (x, y), h(z) = ∇_y g(x, y), slacks
δ ≥ 0 and c_s(θ) = λ_s f_s(z) + δ_s − ρ, θ = (ρ, z, δ) ∈ C = R × R^k × R^S_+:

    L(θ; ν̄, ω̄) = ρ + ν̄ᵀh(z) + (u/2) ‖h(z)‖² + ω̄ᵀc(θ) + (v/2) ‖c(θ)‖²

wc-penalty keeps ν̄ = ω̄ = 0 (then L is the penalty P(θ) of Algorithm 1); wc-al updates them.
With ν = ν̄ + u h and ω = ω̄ + v c (the multipliers of the KKT system K at θ):

    ∇_ρ L = 1 − Σ_s ω_s,   ∇_z L = J_hᵀ ν + Σ_s ω_s λ_s ∇f_s,   ∇_δ L = ω

One step is one gradient of L — S UL gradients, one LL gradient, one JVP and one HVP — at
the extrapolated point ξ, then line 4 of Algorithm 1 from there:

    ξ_t = θ_t + β_t (θ_t − θ_{t−1}),   β_t = k/(k+3)               Nesterov's momentum, k steps since a restart
    θ_{t+1} = P_C(ξ_t − ∇L(ξ_t) / L̂)                               P_C clips δ at zero
    k ← 0 where ⟨∇L(ξ_t), θ_{t+1} − θ_t⟩ > 0                         gradient restart [O'Donoghue & Candès 2015]
    L̂ ← max(L̂, ‖∇L(ξ_t) − ∇L(ξ_{t−1})‖ / ‖ξ_t − ξ_{t−1}‖)            the curvature seen along the path

A phase ends where the gradient mapping is small, ‖L̂ (ξ_t − θ_{t+1})‖ ≤ τ; then (Nocedal & Wright,
Framework 17.1 for the penalty, Algorithm 17.4 for the multipliers)

    wc-penalty:  u, v ← γ u, γ v                                     the bias ~ 1/v, ‖h‖ ~ ‖ν‖/u shrinks
    wc-al:       ν̄ ← ν̄ + u h,  ω̄ ← ω̄ + v c                           first-order multiplier update
                 u, v ← γ u, γ v only where ‖h‖ + ‖c‖/s fell by less than 10 % in the phase
    wc-penalty:  τ ← τ/γ;   wc-al: τ ← min(τ, (u‖h‖ + s v‖c‖)/10), a tenth of the multipliers' move
    τ ← max(τ, τ_min),  L̂ ← γ L̂ where u, v grew (∇²L scales with them),  k ← 0

and the next phase starts from (ρ, δ) ← argmin_{ρ, δ ≥ 0} L at its z (closed form, `settled_slacks`), as
does the first: the multipliers ω = ω̄ + v c then sum to 1 when a phase begins.

θ holds (ρ/s, z, δ/s) with s = max_s λ_s f_s(z_0), and u = 10 s, v = 10/s at the start: F → sF scales
ρ*, δ*, ν* by s and leaves z*, ω* alone, so in these coordinates L is s times one function and the
phases take the same steps whatever the units of F.

Algorithm 1 as printed (`schedule="theorem"`) is the special case with no momentum, no phases and
fixed u = v = c T^{1/4}, η = 1/L̂ = Θ(T^{-1/4}). Every decision is a `torch.where` over the runs:
nothing inside a step waits for the host.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from ..weighting import normalized_weights
from .base import Output, StepOutput
from .one_run import preference_row

DEFAULT_T = 10_000  # the horizon assumed for the theorem's defaults of an open-ended run
PENALTY_SCALE = 5.0  # c in the theorem's u = v = c T^{1/4}: small enough that T = 10^4 steps converge
START_PENALTY = 10.0  # u = 10 s, v = 10/s at the start of an adaptive schedule, s the scale of F
SCALE_FLOOR = 1e-6
GROWTH = 10.0  # γ
POWER_ITERATIONS = 30
CURVATURE_MARGIN = 1.25  # L̂ = 1.25 λ_max(∇²L(θ_0)): the estimate is a lower bound
FIRST_TOLERANCE = 0.1  # τ_0 = 0.1 ‖∇L(θ_0)‖
TOLERANCE_FLOOR = 1e-10  # τ_min = 1e-10 ‖∇L(θ_0)‖, near rounding
VIOLATION_FLOOR = 1e-9  # wc-al stops raising u, v once ‖h‖ + ‖c‖ is this small
STALLED = 0.9  # wc-al raises u, v only where a phase cut ‖h‖ + ‖c‖/s by less than 10 % (Alg. 17.4 uses 1/4)


def theorem_penalties(options: dict[str, Any], steps: int | None) -> tuple[int, float, float]:
    """(T, u, v) of the theorem's schedule: u = v = c T^{1/4} unless given."""
    T = steps or DEFAULT_T
    u = options["u"] if options.get("u") is not None else PENALTY_SCALE * T**0.25
    v = options["v"] if options.get("v") is not None else PENALTY_SCALE * T**0.25
    return T, float(u), float(v)


@dataclass(frozen=True)
class Config:
    multipliers: bool  # wc-al: ν̄, ω̄ move between phases; wc-penalty: they stay zero
    adaptive: bool  # False: Algorithm 1 as printed (fixed u, v, η; no momentum, no phases)
    sizes: tuple[int, int, int]  # (p, q, S): θ = (ρ, x, y, δ) is laid out as 1 + p + q + S columns


@dataclass
class Core:
    """What the phases carry per run (B rows); tensors only, so a run checkpoints."""

    theta: torch.Tensor  # (B, n) the iterate θ_t
    theta_prev: torch.Tensor  # (B, n) θ_{t−1}, for the momentum
    start: torch.Tensor  # (B, n) θ_0, where a diverged run steps on from
    xi_prev: torch.Tensor  # (B, n) the previous gradient point, for the curvature seen along the path
    grad_prev: torch.Tensor  # (B, n)
    fresh: torch.Tensor  # (B,) bool: the function changed (new phase) since the previous gradient
    momentum: torch.Tensor  # (B,) k, steps since the last restart
    curvature: torch.Tensor  # (B,) L̂; the step size is 1/L̂
    u: torch.Tensor  # (B,)
    v: torch.Tensor  # (B,)
    nu: torch.Tensor  # (B, q) ν̄
    omega: torch.Tensor  # (B, S) ω̄
    tolerance: torch.Tensor  # (B,) τ
    tolerance_floor: torch.Tensor  # (B,) τ_min
    violation: torch.Tensor  # (B,) ‖h‖ + ‖c‖ at the end of the last phase
    phases: torch.Tensor  # (B,) phases completed
    scale: torch.Tensor  # (B,) s: θ holds ρ/s and δ/s (1 for the theorem's schedule)


def split(config: Config, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ρ, X, Y, δ) of θ (B, 1 + p + q + S)."""
    p, q, _ = config.sizes
    return theta[:, 0], theta[:, 1:1 + p], theta[:, 1 + p:1 + p + q], theta[:, 1 + p + q:]


def gradient(o: BatchedOracles, config: Config, theta: torch.Tensor, lam: torch.Tensor, nu_bar: torch.Tensor,
             omega_bar: torch.Tensor, u: torch.Tensor, v: torch.Tensor, scale: torch.Tensor,
             settle: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """(∇L (B, n) in the coordinates (ρ/s, z, δ/s), F (B, S), h (B, q), c (B, S), ν, ω, θ) at θ.

    Rows where `settle` holds first move (ρ, δ) to their exact minimiser at this z (`settled_slacks`);
    the θ returned is the point the gradient was taken at."""
    rho_s, X, Y, delta_s = split(config, theta)
    rho, delta = scale * rho_s, scale[:, None] * delta_s
    f, gx, gy = o.upper(X, Y)  # (B, S), (B, S, p), (B, S, q)
    if settle is not None:
        rho_new, delta_new = settled_slacks(lam * f, omega_bar, v)
        rho = torch.where(settle, rho_new, rho)
        delta = torch.where(settle[:, None], delta_new, delta)
        theta = torch.cat([(rho / scale)[:, None], X, Y, delta / scale[:, None]], dim=1)
    h = o.lower_grad_y(X, Y)
    nu = nu_bar + u[:, None] * h
    jx, jy = o.at(X, Y).jvp_and_hvp(nu[:, None, :])  # J_hᵀ ν = (∇²_xy g ν, ∇²_yy g ν)
    c = lam * f + delta - rho[:, None]
    omega = omega_bar + v[:, None] * c
    coeff = omega * lam
    g = torch.cat([(scale * (1.0 - omega.sum(dim=1)))[:, None], jx[:, 0] + torch.einsum("bs,bsp->bp", coeff, gx),
                   jy[:, 0] + torch.einsum("bs,bsq->bq", coeff, gy), scale[:, None] * omega], dim=1)
    return g, f, h, c, nu, omega, theta


def settled_slacks(a: torch.Tensor, omega_bar: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """argmin over ρ and δ ≥ 0 of ρ + ω̄ᵀc + (v/2)‖c‖², c = a + δ − ρ, a = λ ⊙ F(z) at a fixed z: (ρ (B,), δ (B, S)).

    For a given ρ the best δ_s gives c_s = max(a_s − ρ, −ω̄_s/v), so ω_s = max(ω̄_s + v(a_s − ρ), 0), and
    ∇_ρ = 0 is Σ_s ω_s = 1: with b = a + ω̄/v, ρ = (Σ_{s∈A} b_s − 1/v)/|A| over the |A| largest b_s that
    stay above it (water filling, exact in S sorted numbers). A new phase starts from there because
    raising v would otherwise scale the multipliers ω = ω̄ + v c of the last phase's c by γ: their sum,
    1 at the end of a phase, would jump to about γ."""
    b = a + omega_bar / v[:, None]
    top, _ = torch.sort(b, dim=1, descending=True)
    count = torch.arange(1, b.shape[1] + 1, dtype=b.dtype, device=b.device)
    candidates = (torch.cumsum(top, dim=1) - (1.0 / v)[:, None]) / count
    active = (top > candidates).sum(dim=1, keepdim=True).clamp_min(1)  # top_1 > candidate_1 always (v > 0)
    rho = candidates.gather(1, active - 1)[:, 0]
    delta = (rho[:, None] - b).clamp_min(0.0)
    return rho, delta


def start(algo: Any, problem: Problem, options: dict[str, Any], preferences: np.ndarray, steps: int,
          generator: torch.Generator, oracles: Oracles) -> tuple[Config, Core, list[dict[str, Any]]]:
    """(config, θ_0 and its schedule, each run's resolved options): `algo`'s start for the rows of
    `preferences` (B×S), its oracle calls counted in `oracles` as one run's."""
    batched = BatchedOracles(problem)
    lam = torch.as_tensor(preferences, dtype=problem.x0.dtype, device=problem.x0.device)
    config, core, per_run = _start(problem, lam, options, steps, algo.multipliers, batched, generator)
    for name, value in batched.counts.as_dict().items():
        setattr(oracles.counts, name, getattr(oracles.counts, name) + value)
    return config, core, per_run


def _start(problem: Problem, lam: torch.Tensor, options: dict[str, Any], steps: int | None, multipliers: bool,
           oracles: BatchedOracles, generator: torch.Generator) -> tuple[Config, Core, list[dict[str, Any]]]:
    """(config, θ_0 and its schedule, each run's resolved options) for the preferences `lam` (B, S).

    θ_0 = (max_s λ_s f_s(z_0), z_0, ρ_0 − λ ⊙ F(z_0)): every WC constraint holds with its slack."""
    x0, y0 = problem.x0, problem.y0
    B, dtype, device = lam.shape[0], x0.dtype, x0.device
    lam = lam.to(dtype)
    adaptive = options.get("schedule", "adaptive") == "adaptive"
    config = Config(multipliers=multipliers, adaptive=adaptive, sizes=(x0.numel(), y0.numel(), lam.shape[1]))
    X, Y = x0.expand(B, -1).clone(), y0.expand(B, -1).clone()
    f = oracles.upper_values(X, Y)
    rho = (lam * f).amax(dim=1)
    full = torch.full((B,), 1.0, dtype=dtype, device=device)
    resolved: dict[str, Any] = {}
    if adaptive:
        # F → sF leaves z* and ω* unchanged and scales ρ*, δ*, ν* by s. In the coordinates (ρ/s, z, δ/s),
        # with u = 10 s and v = 10/s, L is s times the same function: the phases are scale-free.
        scale = rho.abs().clamp_min(SCALE_FLOOR)
        u = options["u"] * full if options.get("u") is not None else START_PENALTY * scale
        v = options["v"] * full if options.get("v") is not None else START_PENALTY / scale
    else:
        T, u0, v0 = theorem_penalties(options, steps)
        resolved["T"] = T
        scale, u, v = full.clone(), u0 * full, v0 * full
    theta = torch.cat([(rho / scale)[:, None], X, Y, (rho[:, None] - lam * f) / scale[:, None]], dim=1)
    nu, omega = torch.zeros_like(Y), torch.zeros_like(lam)
    if options.get("eta") is not None:
        curvature = full / float(options["eta"])
    else:
        curvature = CURVATURE_MARGIN * _largest_curvature(oracles, config, theta, lam, nu, omega, u, v, scale,
                                                          generator)
    g0, _, h0, c0, _, _, _ = gradient(oracles, config, theta, lam, nu, omega, u, v, scale)
    g0_norm = g0.norm(dim=1)
    core = Core(theta=theta, theta_prev=theta.clone(), start=theta.clone(), xi_prev=theta.clone(),
                grad_prev=g0, fresh=torch.ones(B, dtype=torch.bool, device=device),
                momentum=torch.zeros_like(full), curvature=curvature, u=u, v=v, nu=nu, omega=omega,
                tolerance=FIRST_TOLERANCE * g0_norm, tolerance_floor=TOLERANCE_FLOOR * g0_norm,
                violation=h0.norm(dim=1) + c0.norm(dim=1) / scale, phases=torch.zeros_like(full), scale=scale)
    per_run = [{**options, **resolved, "schedule": "adaptive" if adaptive else "theorem", "u": float(ub),
                "v": float(vb), "eta": float(1.0 / L)}
               for ub, vb, L in zip(*(t.double().cpu().numpy() for t in (u, v, curvature)), strict=True)]
    return config, core, per_run


def _largest_curvature(o: BatchedOracles, config: Config, theta: torch.Tensor, lam: torch.Tensor, nu: torch.Tensor,
                       omega: torch.Tensor, u: torch.Tensor, v: torch.Tensor, scale: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor:
    """|λ_max(∇²L(θ_0))| per run: power iteration on central differences of ∇L, from one random start."""
    eps = (1e-5 * theta.norm(dim=1).clamp_min(1.0))[:, None]
    w = torch.randn(theta.shape[1], generator=generator, dtype=theta.dtype).to(theta.device).expand_as(theta)
    w = w / w.norm(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    value = torch.zeros(len(theta), dtype=theta.dtype, device=theta.device)
    going = torch.ones_like(value, dtype=torch.bool)
    for _ in range(POWER_ITERATIONS):
        hw = (gradient(o, config, theta + eps * w, lam, nu, omega, u, v, scale)[0]
              - gradient(o, config, theta - eps * w, lam, nu, omega, u, v, scale)[0]) / (2 * eps)
        value = torch.where(going, (w * hw).sum(dim=1), value)
        norm = hw.norm(dim=1)
        # A run whose product vanished or went non-finite keeps its value.
        going = going & torch.isfinite(norm) & (norm > 0)
        w = torch.where(going[:, None], hw / torch.where(going, norm, 1.0)[:, None], w)
    return value.abs().clamp_min(torch.finfo(theta.dtype).eps)


def step(config: Config, core: Core, R: torch.Tensor, oracles: BatchedOracles) -> tuple[Core, Output]:
    """One step of every run at its preference (row of R)."""
    lam = R.to(core.theta.dtype)
    theta, L = core.theta, core.curvature
    n_delta = config.sizes[2]
    if config.adaptive:
        beta = (core.momentum / (core.momentum + 3.0))[:, None]
        xi = theta + beta * (theta - core.theta_prev)
    else:
        xi = theta
    # A fresh phase (its momentum is reset, so ξ = θ) starts with (ρ, δ) settled for its u, v, ν̄, ω̄. Settling
    # them at every step instead was tried: it slowed the phases several-fold on random LLGC instances.
    settle = core.fresh if config.adaptive else None
    g, f, h, c, nu, omega, xi = gradient(oracles, config, xi, lam, core.nu, core.omega, core.u, core.v, core.scale,
                                         settle)
    if settle is not None:
        theta = torch.where(settle[:, None], xi, theta)  # the momentum and the restart test see the settled θ
    # Line 4 of Algorithm 1: θ_{t+1} = P_C(ξ_t − η ∇L(ξ_t)), η = 1/L̂.
    new = xi - g / L[:, None]
    new = torch.cat([new[:, :-n_delta], new[:, -n_delta:].clamp_min(0.0)], dim=1)
    out = _output(config, xi, f, g, omega, lam, core)
    if not config.adaptive:
        return dataclasses.replace(core, theta=new, theta_prev=theta), out
    restart = (g * (new - theta)).sum(dim=1) > 0
    momentum = torch.where(restart, 0.0, core.momentum + 1.0)
    moved = (xi - core.xi_prev).norm(dim=1)
    seen = (g - core.grad_prev).norm(dim=1) / torch.where(moved > 0, moved, 1.0)
    curvature = torch.where(core.fresh | (moved == 0) | ~torch.isfinite(seen), L, torch.maximum(L, seen))
    mapping = L * (xi - new).norm(dim=1)
    done = mapping <= core.tolerance
    violation = h.norm(dim=1) + c.norm(dim=1) / core.scale
    if config.multipliers:
        nu_bar = torch.where(done[:, None], nu, core.nu)
        omega_bar = torch.where(done[:, None], omega, core.omega)
        grow = done & (violation > STALLED * core.violation) & (violation > VIOLATION_FLOOR)
    else:
        nu_bar, omega_bar, grow = core.nu, core.omega, done
    factor = torch.where(grow, GROWTH, 1.0).to(L.dtype)
    if config.multipliers:
        # The next phase solves to a tenth of the multipliers' last move: no finer than the outer loop needs.
        step_of_multipliers = core.u * h.norm(dim=1) + core.scale * core.v * c.norm(dim=1)
        next_tolerance = torch.minimum(core.tolerance, 0.1 * step_of_multipliers)
    else:
        next_tolerance = core.tolerance / GROWTH
    core = Core(theta=new, theta_prev=torch.where(done[:, None], new, theta), start=core.start, xi_prev=xi,
                grad_prev=g, fresh=done, momentum=torch.where(done, 0.0, momentum), curvature=curvature * factor,
                u=core.u * factor, v=core.v * factor, nu=nu_bar, omega=omega_bar,
                tolerance=torch.where(done, torch.maximum(next_tolerance, core.tolerance_floor), core.tolerance),
                tolerance_floor=core.tolerance_floor, violation=torch.where(done, violation, core.violation),
                phases=core.phases + done.to(L.dtype), scale=core.scale)
    return core, out


def _output(config: Config, xi: torch.Tensor, f: torch.Tensor, g: torch.Tensor, omega: torch.Tensor,
            lam: torch.Tensor, core: Core) -> Output:
    _, X, Y, _ = split(config, xi)
    # The weight on ∇f_s is ω_s λ_s (∇_z L), normalised; none positive: uniform.
    weights = (omega.clamp_min(0.0) * lam).double()
    total = weights.sum(dim=1, keepdim=True)
    weights = torch.where(total > 0, weights / torch.where(total > 0, total, 1.0), 1.0 / weights.shape[1])
    d2 = (g * g).sum(dim=1)
    return Output(X=X, Y=Y, objectives=f, weights=weights, direction_norm=d2, qp_gap=torch.zeros_like(d2),
                  finite_weighting=torch.ones_like(d2, dtype=torch.bool), multipliers=omega,
                  schedule={"penalty_u": core.u, "penalty_v": core.v, "step_size": 1.0 / core.curvature})


def restart(config: Config, core: Core, dead: torch.Tensor, problem: Problem, R: torch.Tensor) -> Core:
    """Diverged runs step on from θ_0 with no momentum (harmlessly: their rows are no longer recorded)."""
    back = dead[:, None]
    return dataclasses.replace(core, theta=torch.where(back, core.start, core.theta),
                               theta_prev=torch.where(back, core.start, core.theta_prev),
                               momentum=torch.where(dead, 0.0, core.momentum), fresh=core.fresh | dead)


# A single run: the phases with B = 1, its oracles counted as the run's own.

@dataclass
class State(Core):
    x: torch.Tensor  # θ_t's x and y, flat: what a checkpoint restarts from
    y: torch.Tensor
    t: int
    options: dict[str, Any]
    oracles: Oracles
    config: Config
    batched: BatchedOracles


def init_run(algo: Any, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
    batched = BatchedOracles.single(oracles)
    lam = torch.as_tensor(np.asarray(preference)[None], dtype=problem.x0.dtype, device=problem.x0.device)
    config, core, per_run = _start(problem, lam, options, options.get("steps"), algo.multipliers, batched, generator)
    return _state(config, core, 0, per_run[0], oracles, batched)


def _state(config: Config, core: Core, t: int, options: dict[str, Any], oracles: Oracles,
           batched: BatchedOracles) -> State:
    _, X, Y, _ = split(config, core.theta)
    fields = {f.name: getattr(core, f.name) for f in dataclasses.fields(Core)}
    return State(**fields, x=X[0], y=Y[0], t=t, options=options, oracles=oracles, config=config, batched=batched)


def step_run(state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
    core = Core(**{f.name: getattr(state, f.name) for f in dataclasses.fields(Core)})
    R = preference_row(preference, state.theta, state.theta.dtype)
    core, out = step(state.config, core, R, state.batched)
    omega = out.multipliers.double()
    new = _state(state.config, core, state.t + 1, state.options, state.oracles, state.batched)
    # The weights on ∇f_s are ω_s λ_s, normalised (DESIGN.md's KKT residual reads ω back from them).
    return new, StepOutput(x=out.X[0], y=out.Y[0], objectives=out.objectives[0],
                           weights=normalized_weights(omega.clamp_min(0.0) * R.double())[0],
                           direction_norm=out.direction_norm[0], multipliers=omega[0],
                           schedule={k: v[0] for k, v in out.schedule.items()}, finite_weighting=out.finite_weighting[0])
