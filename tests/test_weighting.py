"""The weighting rules of `pareto_app.weighting` against the CPU's exact QP solvers (themselves checked against
cvxpy in tests/test_qp.py), and the guard that keeps a diverged run's values out of the others' QPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pareto_app import qp
from pareto_app.weighting import Chebyshev, Fixed, MinNorm, MocoMemory, MocoTracking, combine

B, S, P = 6, 3, 5


def _inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    hyper = torch.tensor(rng.standard_normal((B, S, P)))
    R = torch.tensor(rng.dirichlet(np.ones(S), B))
    phi = torch.tensor(rng.uniform(0.5, 2.0, (B, S)))
    return hyper, R, phi


@pytest.mark.parametrize("rule", [Chebyshev(u=3.0), MinNorm(), Fixed()])
def test_each_rule_combines_its_exact_weights(rule):
    hyper, R, phi = _inputs()
    out = combine(rule, hyper, R, phi, None)
    for b in range(B):
        G = (hyper[b] @ hyper[b].T).numpy()
        if isinstance(rule, Chebyshev):  # Eq. 5's λ, applied as r ⊙ λ
            w = R[b].numpy() * qp.wc_weights(G, R[b].numpy(), phi[b].numpy(), 3.0)
        elif isinstance(rule, MinNorm):
            w = qp.min_norm_weights(G)
        else:
            w = R[b].numpy()
        np.testing.assert_allclose(out.weights[b].numpy(), w, atol=1e-9)
        np.testing.assert_allclose(out.direction[b].numpy(), w @ hyper[b].numpy(), atol=1e-9)
    assert out.finite.all()
    largest = rule.max_weight(R)
    assert torch.all(out.weights <= largest[:, None] + 1e-12)  # what makes β = 1/(w_max L̂) stable


@pytest.mark.parametrize("rule", [Chebyshev(u=3.0), MinNorm(), MocoTracking(beta=0.5, gamma=None, rho=0.0)])
def test_a_diverged_run_is_flagged_and_leaves_the_others_alone(rule):
    hyper, R, phi = _inputs(1)
    memory = MocoMemory(tracked=None, lam=torch.full((B, S), 1.0 / S, dtype=torch.float64), gamma=None) \
        if isinstance(rule, MocoTracking) else None
    clean = combine(rule, hyper, R, phi, memory)
    poisoned = hyper.clone()
    poisoned[2, 1, 0] = float("nan")
    out = combine(rule, poisoned, R, phi, memory)
    assert out.finite.tolist() == [b != 2 for b in range(B)]
    others = [b for b in range(B) if b != 2]
    np.testing.assert_array_equal(out.weights[others].numpy(), clean.weights[others].numpy())


def test_mocos_tracking_moves_its_vectors_and_one_projected_step_its_weights():
    hyper, R, phi = _inputs(2)
    rule = MocoTracking(beta=0.25, gamma=0.1, rho=0.5)
    lam = torch.tensor(np.random.default_rng(3).dirichlet(np.ones(S), B))
    tracked = torch.zeros_like(hyper)
    out = combine(rule, hyper, R, phi, MocoMemory(tracked=tracked, lam=lam, gamma=None))
    V = 0.75 * tracked + 0.25 * hyper
    np.testing.assert_allclose(out.memory.tracked.numpy(), V.numpy(), atol=1e-15)
    for b in range(B):
        G = (V[b] @ V[b].T).numpy()
        moved = lam[b].numpy() - 0.1 * (G + 0.5 * np.eye(S)) @ lam[b].numpy()
        # The Euclidean projection onto the simplex: the minimiser of ½‖w − moved‖² there.
        expected = qp.solve_simplex_qp(np.eye(S), -moved)
        np.testing.assert_allclose(out.weights[b].numpy(), expected, atol=1e-9)
        np.testing.assert_allclose(out.direction[b].numpy(), expected @ V[b].numpy(), atol=1e-9)
