"""The batched engine (issue 9): the simplex QPs of many runs against cvxpy, and a sweep run as one batched
run against the same preferences run one after another with `pa.solve`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import pareto_app as pa
from pareto_app import qp
from pareto_app.qp import min_norm_weights_batched, solve_simplex_qp_batched, wc_weights_batched
from tests.test_qp import _objective, _project, _scaled, _simplex_cases

OBJ_TOL = 1e-6  # relative to max(1, |f|) on the instance scaled to max |Q|, |c| = 1, as tests/test_qp.py
GAP_TOL = 1e-6  # the Frank-Wolfe certificate the batched solver returns, on the same scale


def _batch(cases: list, repeat: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    Q = torch.tensor(np.stack([c[1] for c in cases] * repeat))
    c = torch.tensor(np.stack([c[2] for c in cases] * repeat))
    return Q, c


@pytest.mark.parametrize("size", range(2, 11))
def test_batched_simplex_qp_matches_cvxpy(size):
    # Full-rank, rank-deficient, duplicated/collinear, zero and badly scaled gradients, with linear
    # terms from none to dominant: 50 instances per size, solved as one batch.
    cases = _simplex_cases(size)
    Q, c = _batch(cases)
    w, gap = solve_simplex_qp_batched(Q, c)
    assert w.shape == (len(cases), size) and float(w.min()) >= 0.0
    assert torch.allclose(w.sum(dim=1), torch.ones(len(cases), dtype=w.dtype), atol=1e-12)
    assert float(gap.max()) <= GAP_TOL
    for i, (_, Qi, ci, reference) in enumerate(cases):
        Qs, cs, _ = _scaled(Qi, ci)
        got, want = _objective(Qs, cs, w[i].numpy()), _objective(Qs, cs, _project(reference))
        assert got - want <= OBJ_TOL * max(1.0, abs(want)), (size, i)


def test_a_batch_of_256_mixed_instances_is_solved_at_once():
    cases = _simplex_cases(6) + _simplex_cases(6)[:14]
    Q, c = _batch(cases, repeat=4)
    perm = torch.randperm(len(Q), generator=torch.Generator().manual_seed(0))
    Q, c = Q[perm][:256], c[perm][:256]
    w, gap = solve_simplex_qp_batched(Q, c)
    assert w.shape == (256, 6) and float(gap.max()) <= GAP_TOL
    for i in range(0, 256, 17):  # each row as the exact CPU solver has it
        Qs, cs, _ = _scaled(Q[i].numpy(), c[i].numpy())
        exact = qp.solve_simplex_qp(Q[i].numpy(), c[i].numpy())
        assert _objective(Qs, cs, w[i].numpy()) - _objective(Qs, cs, exact) <= OBJ_TOL


def test_a_warm_start_reaches_the_same_minimum():
    Q, c = _batch(_simplex_cases(5))
    cold, _ = solve_simplex_qp_batched(Q, c)
    start = torch.distributions.Dirichlet(torch.ones(5, dtype=Q.dtype)).sample((len(Q),))
    warm, gap = solve_simplex_qp_batched(Q, c, start=start)
    assert float(gap.max()) <= GAP_TOL
    f = lambda w: 0.5 * torch.einsum("bi,bij,bj->b", w, Q, w) + (c * w).sum(1)  # noqa: E731
    scale = torch.maximum(Q.abs().amax((1, 2)), c.abs().amax(1))
    assert float(((f(warm) - f(cold)).abs() / scale).max()) <= OBJ_TOL


def test_eq5_and_min_norm_rules_agree_with_the_exact_cpu_solvers():
    rng = np.random.default_rng(3)
    G, R, PHI = [], [], []
    for _ in range(40):
        S = 4
        A = rng.standard_normal((int(rng.integers(1, 8)), S)) * 10.0 ** rng.uniform(-3, 3)
        G.append(A.T @ A)
        R.append(rng.dirichlet(np.ones(S)))
        PHI.append(rng.uniform(0.1, 5.0, S))
    G, R, PHI = (torch.tensor(np.stack(v)) for v in (G, R, PHI))
    lam, gap = wc_weights_batched(G, R, PHI, 10.0)
    mgda, _ = min_norm_weights_batched(G)
    for b in range(len(G)):
        g, r, phi = G[b].numpy(), R[b].numpy(), PHI[b].numpy()
        # Eq. 5's objective on qp.wc_weights' scaling; the direction ∇Φ w is unique, so compare values.
        exact = qp.wc_weights(g, r, phi, 10.0)
        scale = np.abs(g).max() * r.max() ** 2

        def eq5(v, g=g, r=r, phi=phi):
            return float((r * v) @ g @ (r * v) - 10.0 * v @ (r * phi))

        assert eq5(lam[b].numpy()) - eq5(exact) <= 1e-6 * max(scale, abs(eq5(exact)))
        w = mgda[b].numpy()
        assert w @ g @ w - qp.min_norm_weights(g) @ g @ qp.min_norm_weights(g) <= 1e-6 * np.abs(g).max()
    assert float(gap.max()) <= GAP_TOL


def _forum_step_instances(S: int, count: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Gram matrices of [∇F_1..∇F_S, ∇q̃] with π and φ_k as FORUM's step computes them (Eq. 10): full-rank,
    rank-deficient, ∇q̃ collinear with a ∇F_i, duplicated gradients, and badly scaled ∇q̃."""
    cases = []
    for i in range(count):
        kind, n = i % 4, S + 1
        A = rng.standard_normal((n + 2 if kind == 0 else int(rng.integers(1, n + 1)), n))
        if kind == 2:
            A[:, S] = rng.uniform(-2.0, 2.0) * A[:, 0]
        if kind == 3 and S > 2:
            A[:, 1] = A[:, 0]
        A[:, S] *= 10.0 ** rng.uniform(-3.0, 0.0)
        G = A.T @ A
        phi = 0.5 * [0.5, 1.0, 2.0, 10.0, 0.0][i % 5] * G[S, S]
        cases.append((G, (2.0 * phi - G[S, :S]) / G[S, S], phi))
    return cases


@pytest.mark.parametrize("S", [2, 3, 5, 10])
def test_the_batched_forum_qp_matches_cvxpy(S):
    # QP (12)'s minimum (λ is unique only where the gradients are independent: there it is the exact
    # solver's λ), for 24 instances per size solved as one batch.
    from pareto_app.qp import forum_weights_batched

    cases = _forum_step_instances(S, 24, np.random.default_rng(S))
    G, pi, phi = (torch.tensor(np.stack(v)) for v in zip(*cases))
    lam, gap = forum_weights_batched(G, pi, phi)
    assert float(lam.min()) >= 0.0 and torch.allclose(lam.sum(dim=1), torch.ones(len(cases), dtype=lam.dtype))
    assert float(gap.max()) <= GAP_TOL

    def value(Gi, phi_i, lam_i, gamma):
        z = np.concatenate((lam_i, [gamma]))
        return 0.5 * z @ Gi @ z - gamma * phi_i

    for i, (Gi, pi_i, phi_i) in enumerate(cases):
        reference, gamma_ref = qp.forum_weights_reference(Gi, pi_i, phi_i)
        got = lam[i].numpy()
        tau = max(np.abs(Gi).max(), abs(phi_i))
        want = value(Gi, phi_i, reference, gamma_ref) / tau
        assert value(Gi, phi_i, got, max(0.0, pi_i @ got)) / tau - want <= OBJ_TOL * max(1.0, abs(want)), (S, i)
        if i % 4 == 0:  # independent gradients: one minimiser
            np.testing.assert_allclose(got, qp.forum_weights(Gi, pi_i, phi_i)[0], atol=1e-8)


def test_a_batch_of_256_forum_qps_is_the_exact_solvers_answer():
    from pareto_app.qp import forum_weights_batched

    rng = np.random.default_rng(7)
    cases = [case for S in (4,) for case in _forum_step_instances(S, 256, rng)]
    G, pi, phi = (torch.tensor(np.stack(v)) for v in zip(*cases))
    lam, gap = forum_weights_batched(G, pi, phi)
    assert float(gap.max()) <= GAP_TOL
    for i in range(0, 256, 4):  # the full-rank ones
        np.testing.assert_allclose(lam[i].numpy(), qp.forum_weights(*cases[i])[0], atol=1e-8)


def test_degenerate_weighting_problems_get_the_exact_solvers_answers():
    zero = torch.zeros(2, 3, 3, dtype=torch.float64)
    w, gap = min_norm_weights_batched(zero)  # every point optimal: the barycentre, as pareto_app.qp
    assert torch.allclose(w, torch.full_like(w, 1 / 3)) and float(gap.max()) == 0.0
    G = torch.zeros(1, 2, 2, dtype=torch.float64)
    r, phi = torch.tensor([[0.5, 0.5]], dtype=torch.float64), torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    lam, gap = wc_weights_batched(G, r, phi, 10.0)  # a vanishing Gram: the linear term alone decides
    assert lam[0].tolist() == qp.wc_weights(G[0].numpy(), r[0].numpy(), phi[0].numpy(), 10.0).tolist()
    assert torch.isfinite(gap).all()
    lam, _ = wc_weights_batched(torch.eye(2, dtype=torch.float64)[None], torch.zeros(1, 2, dtype=torch.float64), phi,
                                10.0)
    assert lam[0].tolist() == [0.5, 0.5]


def _assert_same_runs(batched: pa.Sweep, sequential: pa.Sweep, tol: float = 1e-6) -> None:
    for got, want in zip(batched.results, sequential.results):
        assert got.status == want.status and len(got.history) == len(want.history)
        np.testing.assert_allclose(got.x.numpy(), want.x.numpy(), rtol=0, atol=tol)
        np.testing.assert_allclose(got.y.numpy(), want.y.numpy(), rtol=0, atol=tol)
        for column in ("f1", "f2", "w1", "direction_norm", "constraint_violation", "stationarity", "kkt_residual"):
            a, b = got.history[column].to_numpy(float), want.history[column].to_numpy(float)
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=column)
        # CG stops once every system of the batch has converged, a sequential run once its own have: a batched
        # run may count the few products its converged rows still took.
        spent, alone = got.history["oracle_total"].to_numpy(), want.history["oracle_total"].to_numpy()
        assert np.all(spent >= alone) and np.all(spent <= 1.05 * alone)
        assert got.options == pytest.approx(want.options)


@pytest.mark.parametrize("solver, options, S", [
    ("wc-mhgd", {}, 2), ("wc-mhgd", {}, 3), ("wc-mhgd", {"hypergrad": "neumann", "D": 20}, 3), ("mgda", {}, 2),
    ("mgda", {}, 3), ("linear", {}, 3), ("wc-mhgd", {"beta": 0.05, "u": 1.0}, 3), ("moml", {}, 3), ("moco", {}, 3),
    ("moco", {"gamma": 0.3, "rho": 0.1}, 2), ("forum", {}, 3), ("forum", {"rho": 2.0, "T": 5}, 2),
    ("wc-mhgd-stochastic", {"batch_lower": 8, "batch_hessian": 16}, 3)])
def test_each_row_of_a_batched_sweep_ends_where_its_sequential_run_ends(solver, options, S):
    # Where the runs end is the Pareto set: tests/test_solvers.py runs its wc-mhgd preferences as one
    # batched sweep for 600 steps; here every recorded value of every step must be the sequential run's.
    problem = pa.tasks.get("toy-quadratic", S=S)
    preferences = np.random.default_rng(S).dirichlet(np.ones(S), 4)
    if solver != "wc-mhgd-stochastic":  # (at a vertex its sampled f_1 may fall below 0: w = 0 or 1e-16, shown 1/S or 1)
        preferences[0] = np.eye(S)[0]  # a vertex of the simplex among them
    batched = pa.sweep(problem, solver, preferences, steps=40, device="cpu", **options)
    sequential = pa.sweep(problem, solver, preferences, steps=40, device="cpu", batched=False, **options)
    assert all(r.metadata.get("batched") == 4 for r in batched.results)
    assert all(r.metadata["qp_gap_max"] <= 1e-9 for r in batched.results)  # every step's weights certified
    _assert_same_runs(batched, sequential)


@pytest.mark.parametrize("solver, task, S, options", [
    ("wc-penalty", "toy-llgc", 2, {}), ("wc-penalty", "toy-llgc", 3, {}),
    ("wc-penalty", "toy-llgc", 2, {"eta": 0.002, "u": 50.0, "v": 10.0}), ("wc-al", "toy-llgc", 3, {})])
def test_each_wc_penalty_row_ends_where_its_sequential_run_ends(solver, task, S, options):
    # η per run from the power iteration on ∇²P at its own θ_0, batched: each run's sequential η to rounding.
    problem = pa.tasks.get(task, S=S)
    preferences = np.random.default_rng(S).dirichlet(np.ones(S), 4)
    preferences[0] = np.eye(S)[-1]
    batched = pa.sweep(problem, solver, preferences, steps=60, device="cpu", **options)
    sequential = pa.sweep(problem, solver, preferences, steps=60, device="cpu", batched=False, **options)
    assert all(r.metadata.get("batched") == 4 for r in batched.results)
    _assert_same_runs(batched, sequential)
    assert [r.metadata["oracle_calls"] for r in batched.results] == [r.metadata["oracle_calls"]
                                                                     for r in sequential.results]


def test_a_batched_sweep_in_chunks_equals_one_chunk():
    problem = pa.tasks.get("toy-quadratic")
    preferences = np.random.default_rng(0).dirichlet(np.ones(2), 5)
    whole = pa.sweep(problem, "wc-mhgd", preferences, steps=30, device="cpu")
    chunked = pa.sweep(problem, "wc-mhgd", preferences, steps=30, device="cpu", batch_size=2)
    _assert_same_runs(chunked, whole, tol=1e-12)
    seen = []
    pa.sweep(problem, "wc-mhgd", preferences, steps=4, device="cpu", batch_size=2,
             progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (12, 12) and seen == sorted(seen)  # 3 chunks of 4 steps


def test_a_data_task_sweeps_batched_as_it_does_sequentially():
    problem = pa.tasks.get("hyper-cleaning")
    preferences = np.random.default_rng(1).dirichlet(np.ones(problem.num_objectives), 2)
    batched = pa.sweep(problem, "wc-mhgd", preferences, steps=3, device="cpu")
    sequential = pa.sweep(problem, "wc-mhgd", preferences, steps=3, device="cpu", batched=False)
    for got, want in zip(batched.results, sequential.results):
        np.testing.assert_allclose(got.x.numpy(), want.x.numpy(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(got.objectives, want.objectives, rtol=1e-8)


def test_a_problem_vmap_cannot_trace_runs_in_a_loop_and_says_so():
    def lower(x, y):
        if float(y.sum()) > 1e9:  # a data-dependent Python branch: vmap refuses it
            return y.sum()
        return ((y - x) ** 2).sum()

    problem = pa.Problem(upper=[lambda x, y: (y - 1.0).square().sum() + x.square().sum(),
                                lambda x, y: (y + 1.0).square().sum() + x.square().sum()],
                         lower=lower, x0=torch.zeros(2, dtype=torch.float64), y0=torch.zeros(2, dtype=torch.float64))
    preferences = [[0.8, 0.2], [0.3, 0.7]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batched = pa.sweep(problem, "wc-mhgd", preferences, steps=40, device="cpu")
    assert any("cannot be vmapped" in str(w.message) for w in caught)
    assert all(r.metadata["vmap"] is False for r in batched.results)
    _assert_same_runs(batched, pa.sweep(problem, "wc-mhgd", preferences, steps=40, device="cpu", batched=False))


def test_diverging_rows_end_as_their_sequential_runs_do():
    problem = pa.tasks.get("toy-quadratic")
    preferences = [[0.5, 0.5], [0.9, 0.1]]
    batched = pa.sweep(problem, "linear", preferences, steps=30, device="cpu", beta=3.0)
    sequential = pa.sweep(problem, "linear", preferences, steps=30, device="cpu", batched=False, beta=3.0)
    assert [r.status for r in batched.results] == [r.status for r in sequential.results]
    assert "diverged" in [r.status for r in batched.results]
    for got, want in zip(batched.results, sequential.results):
        assert got.message.split("(")[0] == want.message.split("(")[0] and len(got.history) == len(want.history)


def test_batched_sweeps_name_bad_arguments():
    problem = pa.tasks.get("toy-quadratic")
    with pytest.raises(ValueError, match="batch_size=0"):
        pa.sweep(problem, "wc-mhgd", [[0.5, 0.5]], steps=2, batch_size=0)
    with pytest.raises(ValueError, match=r"preferences row 1: preference \[-1.0, 2.0\] has a negative entry"):
        pa.sweep(problem, "wc-mhgd", [[0.5, 0.5], [-1, 2]], steps=2)


@pytest.mark.parametrize("solver, options", [("wc-mhgd", {}), ("wc-mhgd", {"hypergrad": "neumann", "D": 5}),
                                             ("mgda", {}), ("linear", {})])
def test_a_batched_step_reads_nothing_on_the_host(solver, options):
    """Issue 9: no `.item()`, `float()`, `.cpu()`, `.numpy()`, `.tolist()` or Python branch on a tensor's value
    inside a step. Counted on the CPU with the CPU-only shortcuts (`pareto_app.sync.may_read`) turned off."""
    from pareto_app.batched_oracles import BatchedOracles
    from pareto_app.solvers import wc_mhgd_batched as hgd
    from pareto_app.solvers.linear import SOLVER as LINEAR
    from pareto_app.solvers.mgda import SOLVER as MGDA
    from pareto_app.solvers.wc_mhgd import SOLVER

    algo = {"wc-mhgd": SOLVER, "mgda": MGDA, "linear": LINEAR}[solver]
    problem = pa.tasks.get("toy-quadratic", S=3)
    config = hgd.config_of(algo, {"alpha": 0.25, "D": 5, "N": 5, "hypergrad": "cg", "u": 10.0, **options}, 1.0, None)
    R = torch.tensor(np.random.default_rng(0).dirichlet(np.ones(3), 8))
    state = hgd.State(X=problem.x0.expand(8, -1).clone(), Y=problem.y0.expand(8, -1).clone(), warm=None, memory=None)
    _assert_steps_read_nothing_on_the_host(hgd.step, config, state, R, BatchedOracles(problem))


@pytest.mark.parametrize("solver", ["wc-penalty", "wc-al"])
def test_a_batched_wc_penalty_or_al_step_reads_nothing_on_the_host(solver):
    from pareto_app.batched_oracles import BatchedOracles
    from pareto_app.solvers import wc_lagrangian

    problem = pa.tasks.get("toy-llgc", S=3)
    preferences = np.random.default_rng(0).dirichlet(np.ones(3), 8)
    algo = pa.solvers.get(solver)
    options = pa.solvers.check_options(algo, {})
    config, state, _ = wc_lagrangian.start(algo, problem, options, preferences, 100,
                                           torch.Generator().manual_seed(0), pa.oracles.Oracles(problem))
    _assert_steps_read_nothing_on_the_host(wc_lagrangian.step, config, state,
                                           torch.tensor(preferences), BatchedOracles(problem))


@pytest.mark.parametrize("solver", ["moml", "moco", "forum", "wc-mhgd-stochastic"])
def test_the_baselines_and_the_stochastic_batched_steps_read_nothing_on_the_host(solver):
    from pareto_app.batched_oracles import BatchedOracles
    from pareto_app.batched_sweep import ENGINES

    problem = pa.tasks.get("toy-quadratic", S=3)
    preferences = np.random.default_rng(0).dirichlet(np.ones(3), 8)
    algo = pa.solvers.get(solver)
    engine = ENGINES[solver]
    config, state, _ = engine.start(algo, problem, pa.solvers.check_options(algo, {"T": 5} if solver != "wc-mhgd-stochastic"
                                                                            else {"D": 5, "Q": 5}),
                                    preferences, 100, torch.Generator().manual_seed(0), pa.oracles.Oracles(problem))
    _assert_steps_read_nothing_on_the_host(engine.step, config, state, torch.tensor(preferences),
                                           BatchedOracles(problem))


def _assert_steps_read_nothing_on_the_host(step, config, state, R, oracles) -> None:
    from pareto_app.bench_engine import counted_host_reads

    step(config, state, R, oracles)  # vmap's first call traces: not what a step costs
    with torch.no_grad(), counted_host_reads() as reads:
        for _ in range(3):
            state, out = step(config, state, R, oracles)
    assert reads == [], f"host reads inside a batched step: {reads}"
    assert torch.isfinite(out.objectives).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the GPU variant is skipped")
def test_the_batched_qp_and_step_never_wait_for_the_host_on_a_gpu():
    Q, c = _batch(_simplex_cases(5))
    Q, c = Q.cuda(), c.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        w, gap = solve_simplex_qp_batched(Q, c)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert float(gap.max()) <= GAP_TOL
    problem = pa.tasks.get("toy-quadratic")
    preferences = np.random.default_rng(0).dirichlet(np.ones(2), 4)
    on_gpu = pa.sweep(problem, "wc-mhgd", preferences, steps=60, device="cuda")
    on_cpu = pa.sweep(problem, "wc-mhgd", preferences, steps=60, device="cpu")
    _assert_same_runs(on_gpu, on_cpu, tol=1e-6)


def test_a_batch_too_large_for_the_device_memory_is_halved_not_crashed(monkeypatch):
    import pareto_app.api as api

    problem = pa.tasks.get("toy-quadratic")
    preferences = np.random.default_rng(0).dirichlet(np.ones(2), 5)
    real = api.sweep_chunk
    sizes = []

    def small_device(problem, solver, rows, **kwargs):
        sizes.append(len(rows))
        if len(rows) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
        return real(problem, solver, rows, **kwargs)

    monkeypatch.setattr(api, "sweep_chunk", small_device)
    with pytest.warns(UserWarning, match="runs does not fit in the device.s memory"):
        halved = pa.sweep(problem, "wc-mhgd", preferences, steps=20, device="cpu")
    assert sizes == [5, 3, 2, 1, 2] and len(halved.results) == 5
    monkeypatch.setattr(api, "sweep_chunk", real)
    _assert_same_runs(halved, pa.sweep(problem, "wc-mhgd", preferences, steps=20, device="cpu", batched=False))
    monkeypatch.setattr(api, "sweep_chunk", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors are not taken for memory
        pa.sweep(problem, "wc-mhgd", preferences, steps=2, device="cpu")


@pytest.mark.parametrize("task, solver", [("toy-quadratic", "wc-mhgd"), ("toy-llgc", "wc-penalty")])
def test_a_batched_sweep_copies_to_the_host_once_per_recorded_step(task, solver):
    """Issue 9: the steps between recorded ones never wait for the device; a recorded step copies each of
    its fields once for all B runs (and every step since the last copy), not once per run."""
    from pareto_app.bench_engine import host_reads_per_step

    counted = host_reads_per_step(task, solver, B=16, steps=40, metrics_every=10)
    assert counted["recorded steps"] == 5
    assert counted["reads per recorded step"] <= 24, counted  # 16 runs: per-run reads would be ≥ 16 × 5


def test_a_single_runs_batched_oracles_poll_its_control_channel_between_oracle_calls():
    # A single WC-Penalty run is B = 1 of the batched loop: a slow step still hears pause and stop between
    # its oracle calls, as the sequential solvers' do (the worker's control channel is `Oracles.poll`).
    problem = pa.tasks.get("toy-llgc")
    algo = pa.solvers.get("wc-penalty")
    oracles = pa.oracles.Oracles(problem)
    polls = []
    oracles.poll = lambda: polls.append(1)
    r = np.array([0.5, 0.5])
    state = algo.init(problem, r, dict(pa.solvers.check_options(algo, {}), steps=10), oracles,
                      torch.Generator().manual_seed(0))
    before = len(polls)
    with torch.no_grad():
        algo.step(state, r)
    assert len(polls) - before >= 2

    def stop() -> None:
        raise RuntimeError("stopped by the control channel")

    oracles.poll = stop
    with pytest.raises(RuntimeError, match="stopped by the control channel"), torch.no_grad():
        algo.step(state, r)
