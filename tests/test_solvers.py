"""Where each solver ends up, checked against analytic Pareto sets and cvxpy optima."""

import dataclasses

import numpy as np
import pytest
import torch

import pareto_app as pa
from pareto_app.batched_sweep import BATCHED

from .conftest import cuda_params
from .reference import random_llgc, toy_quadratic_distance

PREFERENCES = {2: ([0.5, 0.5], [0.8, 0.2]), 3: ([1 / 3, 1 / 3, 1 / 3], [0.6, 0.1, 0.3])}

# (solver, options, steps): default options throughout; steps within the 3000, about twice what
# the slowest of these cases needs to stay within 1e-3 (WC-MHGD 250 steps at S = 3, the others 120).
HYPERGRADIENT_RUNS = [
    ("wc-mhgd", {}, 400),
    ("wc-mhgd", {"hypergrad": "neumann"}, 400),
    ("mgda", {}, 250),
    ("moml", {}, 250),
    ("moco", {}, 250),
]


def _check_on_pareto_set(problem, result, tol=1e-3):
    dist_x, dist_y = toy_quadratic_distance(problem, result.x.cpu().numpy(), result.y.cpu().numpy())
    assert dist_x <= tol, f"x is {dist_x:.2e} from the Pareto set"
    assert dist_y <= tol, f"y is {dist_y:.2e} from y*(x)"
    stationarity = result.history["stationarity"].dropna()
    assert stationarity.iloc[-1] <= 1e-4 * stationarity.iloc[0], (
        f"stationarity fell only from {stationarity.iloc[0]:.2e} to {stationarity.iloc[-1]:.2e}")


@pytest.mark.parametrize("device", cuda_params())
@pytest.mark.parametrize("S", [2, 3])
@pytest.mark.parametrize("solver,options,steps", HYPERGRADIENT_RUNS, ids=lambda v: v if isinstance(v, str) else None)
def test_hypergradient_solvers_reach_the_pareto_set(solver, options, steps, S, device):
    for seed in (0, 1):
        problem = pa.tasks.get("toy-quadratic", S=S, seed=seed)
        preferences = PREFERENCES[S] if solver == "wc-mhgd" and not options else PREFERENCES[S][1:]
        # The batched solvers run their preferences as one batched sweep (each row is its pa.solve:
        # tests/test_batched.py), the others one after another.
        results = (pa.sweep(problem, solver, preferences, steps=steps, seed=seed, device=device, metrics_every=50,
                            **options).results if solver in BATCHED else
                   [pa.solve(problem, solver, r, steps=steps, seed=seed, device=device, metrics_every=50, **options)
                    for r in preferences])
        for result in results:
            assert result.status == "finished"
            _check_on_pareto_set(problem, result)


@pytest.mark.parametrize("S", [2, 3])
def test_forum_approaches_the_pareto_set_at_its_rate(S):
    """FORUM's guarantee is O(K^{-1/4}) on its KKT measure, and its iterates settle O(μ) from
    the Pareto set (next test). In 3000 steps it gets within a few 1e-2 of it, not 1e-3."""
    for seed in (0, 1):
        problem = pa.tasks.get("toy-quadratic", S=S, seed=seed)
        result = pa.solve(problem, "forum", steps=3000, seed=seed, device="cpu", metrics_every=500)
        dist_x, dist_y = toy_quadratic_distance(problem, result.x.numpy(), result.y.numpy())
        h = result.history
        assert dist_x <= 0.1 and dist_y <= 0.15
        assert h["constraint_violation"].iloc[-1] <= 0.2 * h["constraint_violation"].iloc[0]
        stationarity = h["stationarity"].dropna()
        assert stationarity.iloc[-1] <= 1e-2 * stationarity.iloc[0]


@pytest.mark.parametrize("S", [2, 3])
def test_forum_started_on_the_pareto_set_leaves_it_by_a_distance_proportional_to_mu(S):
    """Why FORUM is not held to 1e-3: the Pareto set is not a fixed point of its iteration.

    On the feasible set ∇q̃ = 0 (the value-function constraint has no gradient there), so
    d_k = −Σ λ̃_i ∇F_i, whose y-part pushes y off y*(x); the ρ-term only pulls back once
    ‖∇q̃‖ has grown. Started exactly on the set, the iterates settle about 4μ from it, so a
    1e-3 end needs μ ≲ 2.5e-4 and tens of thousands of steps from a distant start.
    """
    problem = pa.tasks.get("toy-quadratic", S=S)
    x_star = torch.tensor(problem.data["m"].mean(axis=0))  # the middle of conv{m_s}
    y_star = torch.tensor(problem.data["B"] @ x_star.numpy() + problem.data["c"])
    start = dataclasses.replace(problem, x0=x_star, y0=y_star)
    assert max(toy_quadratic_distance(problem, x_star.numpy(), y_star.numpy())) <= 1e-8
    settled = {}
    for mu in (0.02, 0.005):
        result = pa.solve(start, "forum", steps=300, device="cpu", mu=mu, T=40, metrics_every=1000)
        settled[mu] = result.history["constraint_violation"].iloc[-100:].mean()  # ‖∇_y g‖ ∝ ‖y − y*(x)‖
        _, dist_y = toy_quadratic_distance(problem, result.x.numpy(), result.y.numpy())
        assert dist_y >= mu  # ≥ 5e-3: far above 1e-3, though it started on the set
    assert 2.5 <= settled[0.02] / settled[0.005] <= 6.0  # O(μ): a quarter of the step, a quarter of the gap


def test_wc_mhgd_balances_weighted_objectives_at_an_interior_preference():
    # For r inside the front's cone, the WC optimum equalises r_s f_s (all constraints active).
    problem = pa.tasks.get("toy-quadratic", S=2)
    result = pa.solve(problem, "wc-mhgd", [0.5, 0.5], steps=600, device="cpu")
    weighted = 0.5 * result.objectives
    assert abs(weighted[0] - weighted[1]) <= 1e-6 * weighted.max()


def test_float32_problems_converge_too():
    problem = pa.tasks.get("toy-quadratic", S=2, dtype=torch.float32)
    result = pa.solve(problem, "wc-mhgd", [0.6, 0.4], steps=400, device="cpu")
    assert result.x.dtype == torch.float32
    dist_x, dist_y = toy_quadratic_distance(problem, result.x.double().numpy(), result.y.double().numpy())
    assert dist_x <= 1e-3 and dist_y <= 1e-3


@pytest.mark.parametrize("S", [2, 3])
def test_preference_matters(S):
    problem = pa.tasks.get("toy-quadratic", S=S)
    favour = np.full((S, S), 0.2 / (S - 1))
    np.fill_diagonal(favour, 0.8)
    disfavour = np.full((S, S), 0.8 / (S - 1))
    np.fill_diagonal(disfavour, 0.2)
    F = pa.sweep(problem, "wc-mhgd", np.vstack([favour, disfavour]), steps=400, device="cpu").objectives
    for s in range(S):
        assert F[s, s] < F[S + s, s]


@pytest.mark.parametrize("device", cuda_params())
@pytest.mark.parametrize("S", [2, 3])
def test_stochastic_wc_mhgd_ends_near_the_pareto_set(S, device):
    # Within 0.035 of the set after 50 steps, and from there about 0.01 away (0.004 to 0.034 at steps 100, 150, ...
    # 400), where the minibatch noise keeps them: 200 steps end in that band.
    for seed in (0, 1):
        problem = pa.tasks.get("toy-quadratic", S=S, seed=seed)
        result = pa.solve(problem, "wc-mhgd-stochastic", PREFERENCES[S][0], steps=200, seed=seed, device=device,
                          metrics_every=200)
        dist_x, _ = toy_quadratic_distance(problem, result.x.cpu().numpy(), result.y.cpu().numpy())
        assert dist_x <= 5e-2


# Random LLGC instances built by the test (tests/reference.py), not by a task: flat directions in y,
# S = 2 and 3, objectives in units from 0.03 to 30. Issue 11: wc-penalty within 1 % of the exact WC
# optimum with ‖∇_y g‖ ≤ 1e-3, wc-al within 0.1 %, in ≤ 10,000 steps (one gradient of L each).
LLGC_CASES = {
    "wc-penalty": [((2, 4, 5, 2, 14, 30.0), 3000), ((3, 5, 8, 3, 12, 1.0), 6000)],  # within tolerance from 1533, 4211
    "wc-al": [((3, 3, 6, 1, 15, 0.03), 4000), ((2, 10, 6, 2, 13, 1.0), 4000)],
}
LLGC_PREFERENCES = {2: [[0.5, 0.5], [0.15, 0.85], [0.9, 0.1]], 3: [[1 / 3] * 3, [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]}
LLGC_TOLERANCE = {"wc-penalty": 1e-2, "wc-al": 1e-3}


@pytest.mark.parametrize("solver,case,steps", [(solver, case, steps) for solver, cases in LLGC_CASES.items()
                                               for case, steps in cases])
def test_penalty_and_al_reach_the_exact_wc_optimum_of_random_llgc_instances(solver, case, steps):
    problem, wc_optimum_of = random_llgc(*case)
    preferences = LLGC_PREFERENCES[case[0]]
    # The preferences run as one batched sweep; each row is its pa.solve (tests/test_batched.py).
    sweep = pa.sweep(problem, solver, preferences, steps=steps, device="cpu", metrics_every=steps)
    for r, result in zip(preferences, sweep.results, strict=True):
        rho_star = wc_optimum_of(r)
        achieved = float(np.max(np.array(r) * result.objectives))
        assert abs(achieved - rho_star) <= LLGC_TOLERANCE[solver] * rho_star, (r, achieved, rho_star)
        assert result.history["constraint_violation"].iloc[-1] <= 1e-3
        assert result.metadata["oracle_calls"]["ll_grad"] <= 10_000
        # The schedule each step used is in the history.
        assert {"penalty_u", "penalty_v", "step_size"} <= set(result.history.columns)
    if solver == "wc-al":  # no penalty bias: its multipliers solve the KKT system K
        assert max(result.history["kkt_residual"].iloc[-1] for result in sweep.results) <= 1e-5


def test_the_theorem_schedule_is_algorithm_1_as_printed():
    # u = v = 5 T^{1/4} and η fixed for the T steps, with no momentum: the step is θ − η∇P(θ), clipped.
    problem = pa.tasks.get("toy-llgc")
    result = pa.solve(problem, "wc-penalty", [0.5, 0.5], steps=40, device="cpu", schedule="theorem")
    assert result.options["u"] == result.options["v"] == pytest.approx(5 * 40**0.25)
    h = result.history
    assert (h["penalty_u"] == result.options["u"]).all() and (h["step_size"] == result.options["eta"]).all()
    adaptive = pa.solve(problem, "wc-penalty", [0.5, 0.5], steps=40, device="cpu")
    assert adaptive.options["schedule"] == "adaptive" and not np.allclose(adaptive.x.numpy(), result.x.numpy())


@pytest.mark.parametrize("solver", ["wc-mhgd", "wc-mhgd-stochastic", "forum", "moml", "moco", "mgda", "linear"])
def test_hypergradient_solvers_refuse_a_merely_convex_lower_level(solver):
    problem = pa.tasks.get("toy-llgc")
    with pytest.raises(ValueError, match="wc-penalty"):
        pa.solve(problem, solver, [0.5, 0.5], steps=5)


@pytest.mark.parametrize("seed", range(6))
def test_each_phase_starts_from_the_exact_minimiser_over_rho_and_the_slacks(seed):
    """`settled_slacks` against cvxpy: argmin over ρ and δ ≥ 0 of ρ + ω̄ᵀc + (v/2)‖c‖², c = a + δ − ρ."""
    import cvxpy as cp

    from pareto_app.solvers.wc_lagrangian import settled_slacks

    rng = np.random.default_rng(seed)
    S = int(rng.integers(2, 6))
    a = rng.uniform(0.0, 3.0, size=S)
    omega_bar = rng.uniform(0.0, 1.0, size=S) * rng.integers(0, 2, size=S)  # some rows without multipliers
    v = float(10 ** rng.uniform(-1, 2))
    rho, delta = cp.Variable(), cp.Variable(S, nonneg=True)
    c = a + delta - rho
    cp.Problem(cp.Minimize(rho + omega_bar @ c + v / 2 * cp.sum_squares(c))).solve(solver=cp.CLARABEL)
    got_rho, got_delta = settled_slacks(torch.tensor(a)[None], torch.tensor(omega_bar)[None],
                                          torch.tensor([v], dtype=torch.float64))
    assert abs(float(got_rho[0]) - float(rho.value)) <= 1e-6 * max(1.0, abs(float(rho.value)))
    np.testing.assert_allclose(got_delta[0].numpy(), delta.value, atol=1e-6)
    # At the minimiser the multipliers ω = ω̄ + v c are ≥ 0 and sum to 1 (∇_ρ L = 0).
    omega = omega_bar + v * (a + got_delta[0].numpy() - float(got_rho[0]))
    assert omega.min() >= -1e-9 and abs(omega.sum() - 1.0) <= 1e-9
