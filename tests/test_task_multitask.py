"""`multitask-weighting`: shapes, parameters, derivatives, convexity, the trade-off, and what WC-MHGD makes of it.

References are computed without the library's oracles: central finite differences of the
task's own functions, dense Hessians from torch.autograd.functional, exact hypergradients
from dense linear solves, and lower-level solutions from torch's L-BFGS.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pareto_app as pa
from pareto_app.qp import min_norm_weights
from pareto_app.tasks.multitask_weighting import lower_solution

from .conftest import cuda_params
from .reference import check_sampled_gradients

NAME = "multitask-weighting"
TINY = {"S": 3, "train_size": 30, "aux_fraction": 0.5, "val_size": 20, "test_size": 20}
FEATURES = 65


def _q(classes: list[int]) -> int:
    # Z (10×65) and one head per auxiliary task (c_t×65).
    return FEATURES * (10 + sum(classes[1:]))


def _logits_x(weights: list[float]) -> torch.Tensor:
    return torch.tensor(np.log(weights), dtype=torch.float64)


def _hypergradients(problem: pa.Problem, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """∇φ_t(x) = ∇_x f_t − ∇²_xy g [∇²_yy g]⁻¹ ∇_y f_t, with dense matrices (f_t has no x part)."""
    H = torch.autograd.functional.hessian(lambda yy: problem.lower(x, yy), y, vectorize=True)
    J = torch.autograd.functional.jacobian(lambda xx: torch.func.grad(problem.lower, 1)(xx, y), x,
                                           vectorize=True)  # [q, p] = ∇²_yx g
    rows = []
    for f in problem.upper:
        gy = torch.func.grad(f, 1)(x, y)
        rows.append(-(J.T @ torch.linalg.solve(H, gy)))
    return torch.stack(rows).numpy()


def _min_norm(G: np.ndarray) -> float:
    gram = G @ G.T
    w = min_norm_weights(gram)
    return float(np.sqrt(max(w @ gram @ w, 0.0)))


@pytest.fixture(scope="module")
def default() -> pa.Problem:
    return pa.tasks.get(NAME)


@pytest.fixture(scope="module")
def tiny() -> pa.Problem:
    return pa.tasks.get(NAME, **TINY)


def test_sizes_names_and_start(default):
    assert NAME in pa.tasks.names()
    assert default.num_objectives == 3
    assert default.dims == (3, _q([10, 2, 2]))
    assert default.strongly_convex
    assert default.labels == ["val loss: digit (rel.)", "val loss: parity (rel.)", "val loss: digit ≥ 5 (rel.)"]
    # Relative units: every objective is 1 at the start, and the reference is 20% above it.
    start = default.objectives(default.x0, default.y0).numpy()
    assert start == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
    assert default.reference_point == pytest.approx([1.2] * 3)
    # y0 solves the lower level at x0.
    assert float(torch.func.grad(default.lower, 1)(default.x0, default.y0).abs().max()) < 1e-8
    scores = default.evaluate(default.x0, default.y0)
    assert set(scores) == {"test acc: digit", "test acc: parity", "test acc: digit ≥ 5", "test acc: mean"}
    assert all(0.5 < v <= 1.0 for v in scores.values())  # far above chance (0.1 and 0.5) at the start


@pytest.mark.parametrize("S,classes", [(2, [10, 2]), (4, [10, 2, 2, 3])])
def test_other_task_counts(S, classes):
    problem = pa.tasks.get(NAME, S=S, train_size=60, val_size=30, test_size=30)
    assert problem.dims == (S, _q(classes))
    assert problem.num_objectives == S == len(problem.reference_point)
    assert problem.labels[-1] == ("val loss: parity (rel.)" if S == 2 else "val loss: digit mod 3 (rel.)")
    raw = pa.tasks.get(NAME, S=S, train_size=60, val_size=30, test_size=30, relative=False)
    assert raw.labels[1] == "val loss: parity"
    # Raw cross-entropies: the units differ by the start's values, nothing else.
    ratio = raw.objectives(raw.x0, raw.y0) / problem.objectives(problem.x0, problem.y0)
    assert ratio.numpy() == pytest.approx(raw.data["baseline"], rel=1e-10)


@pytest.mark.parametrize("params", [
    {"S": 1}, {"S": 5}, {"S": 2.5}, {"l2": 0.0}, {"l2": -1.0}, {"aux_fraction": 0.0}, {"aux_fraction": 1.5},
    {"train_size": 1500, "val_size": 300}, {"train_size": 20, "aux_fraction": 0.05}, {"relative": 1},
    {"seed": -1}, {"nonsense": 1},
])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        pa.tasks.get(NAME, **params)


def test_gradients_match_central_differences(tiny):
    # The upper level reaches x only through y; the lower level through the weights.
    check_sampled_gradients(tiny, coords=40, rel_xy=None)


def test_lower_level_is_l2_strongly_convex(tiny):
    l2 = tiny.params["l2"]
    gen = torch.Generator().manual_seed(1)
    for scale in (0.0, 3.0):  # equal weights, and weights far from them
        x = scale * torch.randn(tiny.dims[0], generator=gen, dtype=torch.float64)
        y = tiny.y0 + torch.randn(tiny.dims[1], generator=gen, dtype=torch.float64)
        H = torch.autograd.functional.hessian(lambda yy: tiny.lower(x, yy), y, vectorize=True)
        assert torch.allclose(H, H.T, atol=1e-12)
        eigs = torch.linalg.eigvalsh(H)
        # ∇²g = Σ α_t ∇²L_t + l2·I with every ∇²L_t ⪰ 0, and singular data directions exist
        # (always-blank pixels), so the smallest eigenvalue is l2 itself.
        assert float(eigs[0]) == pytest.approx(l2, rel=1e-6)
        assert float(eigs[-1]) > 2 * l2


def test_weights_trade_the_tasks_off(default):
    """Favouring parity against digit ≥ 5 (or digit against parity) moves y*(x) and the losses oppositely."""
    q = default.dims[1]
    points = {name: _logits_x(w) for name, w in {
        "parity": [0.89, 0.10, 0.01], "high": [0.89, 0.01, 0.10], "digit": [0.98, 0.01, 0.01],
        "balanced": [0.6, 0.2, 0.2]}.items()}
    sols = {name: lower_solution(default.lower, x, q) for name, x in points.items()}
    F = {name: default.objectives(points[name], sols[name]).numpy() for name in points}
    assert float((sols["parity"] - sols["high"]).norm()) > 0.1 * float(sols["parity"].norm())
    assert F["parity"][1] < F["high"][1] - 0.02 and F["parity"][2] > F["high"][2] + 0.02
    assert F["digit"][0] < F["parity"][0] - 0.01 and F["digit"][1] > F["parity"][1] + 0.02
    # Equal weights are dominated: shifting weight to the digit task helps every task.
    assert np.all(F["balanced"] < 0.98)


def test_equal_weights_are_dominated_only_because_auxiliary_labels_are_scarce(default):
    """The mechanism of the docstring, on exact hypergradients at x0 (y0 = y*(x0))."""
    G = _hypergradients(default, default.x0, default.y0)
    norms = np.linalg.norm(G, axis=1)
    assert _min_norm(G) > 0.2 * norms.min()  # a common descent direction exists
    full = pa.tasks.get(NAME, aux_fraction=1.0)
    G_full = _hypergradients(full, full.x0, full.y0)
    assert _min_norm(G_full) < 1e-6 * np.linalg.norm(G_full, axis=1).min()  # Pareto stationary


def test_wc_mhgd_improves_every_validation_loss(default):
    # Every check below holds from step 25 on (at 75: each loss 0.04 lower, α_1 = 0.74).
    result = pa.solve(default, "wc-mhgd", [1 / 3] * 3, steps=75, device="cpu", metrics_every=1000)
    assert result.status == "finished"
    cols = ["f1", "f2", "f3"]
    first, last = result.history[cols].iloc[0].to_numpy(), result.history[cols].iloc[-1].to_numpy()
    assert np.all(last < first - 0.02), (first, last)
    alpha = torch.softmax(result.x, 0).numpy()
    assert alpha[0] > 0.5  # weight moved to the fully labelled digit task
    before, after = default.evaluate(default.x0, default.y0), default.evaluate(result.x, result.y)
    assert after["test acc: mean"] >= before["test acc: mean"]


def test_minibatches_are_unbiased_and_exact_on_full_batches(default):
    mb = default.minibatches
    x = _logits_x([0.5, 0.3, 0.2])
    y = default.y0
    gen = torch.Generator().manual_seed(0)
    idx = mb.sample_lower(16, gen)
    labelled = default.data["labelled"]
    assert idx.shape == (3, 16)
    assert all(labelled[t, idx[t].numpy()].all() for t in range(3))  # row t draws from task t's labels
    # Each task's whole labelled set, tiled to a common length: the batch value is g itself.
    members = [np.flatnonzero(labelled[t]) for t in range(3)]
    n = len(members[0])
    full = torch.tensor(np.stack([np.resize(m, n) for m in members]))
    assert n % len(members[1]) == 0 and n % len(members[2]) == 0
    assert float(mb.lower(x, y, full)) == pytest.approx(float(default.lower(x, y)), rel=1e-12)
    every = torch.arange(default.params["val_size"])
    for s in range(3):
        assert float(mb.upper[s](x, y, every)) == pytest.approx(float(default.upper[s](x, y)), rel=1e-12)
        assert mb.sample_upper(s, 8, gen).shape == (8,)
    # Unbiased: the mean over many batches approaches g.
    values = [float(mb.lower(x, y, mb.sample_lower(32, gen))) for _ in range(400)]
    assert np.mean(values) == pytest.approx(float(default.lower(x, y)), rel=0.02)


def test_float32_matches_float64_and_runs():
    p64, p32 = pa.tasks.get(NAME, **TINY), pa.tasks.get(NAME, dtype=torch.float32, **TINY)
    assert p32.dtype == torch.float32 and p32.y0.dtype == torch.float32
    x = _logits_x([0.5, 0.3, 0.2])
    f64 = p64.objectives(x, p64.y0).numpy()
    f32 = p32.objectives(x.float(), p32.y0).numpy()
    assert f32 == pytest.approx(f64, rel=1e-5)
    assert float(p32.lower(x.float(), p32.y0)) == pytest.approx(float(p64.lower(x, p64.y0)), rel=1e-5)
    result = pa.solve(p32, "wc-mhgd", steps=5, device="cpu", metrics_every=1000)
    assert result.status == "finished" and np.all(np.isfinite(result.objectives))


@pytest.mark.parametrize("device", cuda_params())
def test_device_is_respected(device):
    problem = pa.tasks.get(NAME, device=device, **TINY)
    assert problem.device.type == device and problem.y0.device.type == device
    idx = problem.minibatches.sample_lower(4, torch.Generator().manual_seed(0))
    assert idx.device.type == device
    value = problem.minibatches.lower(problem.x0, problem.y0, idx)
    assert value.device.type == device
    moved = problem.to("cpu")
    assert moved.device.type == "cpu"
    assert moved.objectives(moved.x0, moved.y0).numpy() == pytest.approx(
        problem.objectives(problem.x0, problem.y0).cpu().numpy(), rel=1e-10)
