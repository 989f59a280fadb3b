"""`few-shot`: shapes, parameters, derivatives, convexity, the trade-off, and what wc-mhgd makes of it.

References are computed without the library's oracles: central finite differences of the
task's own functions, dense Hessians from torch.autograd.functional, and lower-level
solutions from torch's L-BFGS.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pareto_app as pa
from pareto_app.oracles import Oracles

from .conftest import cuda_params
from .reference import central_differences, first_and_last_objectives, grads, solve_lower

DT = torch.float64
TINY = {"S": 2, "hidden": 3, "query": 2}


@pytest.fixture(scope="module")
def default() -> pa.Problem:
    return pa.tasks.get("few-shot")


@pytest.fixture(scope="module")
def uniform_run(default: pa.Problem) -> pa.Result:
    # metrics_every above the step count: the ECMO metrics would cost as much as the run.
    return pa.solve(default, "wc-mhgd", [0.2] * 5, steps=200, device="cpu", metrics_every=1000)


def test_sizes_names_and_start(default):
    assert "few-shot" in pa.tasks.names()
    assert default.num_objectives == 5
    assert default.dims == (32 * (64 + 1), 5 * 5 * (32 + 1))  # shared W, c; five 5-way heads V_s, b_s
    assert default.strongly_convex
    assert len(set(default.labels)) == 5
    assert default.reference_point == pytest.approx([1.1 * math.log(5)] * 5)
    # y0 = 0: every head is the uniform 5-way predictor.
    assert default.objectives(default.x0, default.y0).numpy() == pytest.approx([math.log(5)] * 5, rel=1e-12)
    classes = default.data["classes"]
    assert classes.shape == (5, 5) and all(len(set(row)) == 5 for row in classes.tolist())
    assert len({tuple(sorted(row)) for row in classes.tolist()}) > 1  # the tasks differ
    assert pa.tasks.get("few-shot", seed=1).data["classes"].tolist() != classes.tolist()
    assert pa.tasks.get("few-shot", S=3, hidden=7).dims == (7 * 65, 3 * 5 * 8)


@pytest.mark.parametrize("params,needle", [
    ({"S": 1}, "out of range"),
    ({"S": 11}, "out of range"),
    ({"hidden": 1}, "out of range"),
    ({"query": 0}, "out of range"),
    ({"query": 150}, "out of range"),
    ({"l2": -1.0}, "out of range"),
    ({"hidden": 8.5}, "whole number"),
    ({"shots": 1}, "unknown parameter"),
])
def test_bad_parameters_raise_value_error(params, needle):
    with pytest.raises(ValueError, match=needle):
        pa.tasks.get("few-shot", **params)


def test_gradients_matchcentral_differences():
    problem = pa.tasks.get("few-shot", **TINY)
    p, q = problem.dims
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(p, generator=gen, dtype=DT) * 0.3
    y = torch.randn(q, generator=gen, dtype=DT)
    for fun in [problem.lower, *problem.upper]:
        gx, gy = grads(fun, x, y)
        torch.testing.assert_close(gx, central_differences(lambda z: fun(z, y), x), rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(gy, central_differences(lambda z: fun(x, z), y), rtol=1e-6, atol=1e-8)
    # f_s reads only head s: the other head's gradient is exactly zero.
    head = q // 2
    assert grads(problem.upper[0], x, y)[1][head:].abs().max() == 0
    assert grads(problem.upper[1], x, y)[1][:head].abs().max() == 0


def test_second_order_products_agree_between_reverse_and_forward_mode():
    # Forward mode runs g through torch.func: this fails if g uses in-place ops or .item().
    problem = pa.tasks.get("few-shot", **TINY)
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(problem.dims[0], generator=gen, dtype=DT), torch.randn(problem.dims[1], generator=gen, dtype=DT)
    V = torch.randn(3, problem.dims[1], generator=gen, dtype=DT)
    reverse = Oracles(problem, "reverse").at(x, y).jvp_and_hvp(V)
    forward = Oracles(problem, "forward").at(x, y).jvp_and_hvp(V)
    for a, b in zip(reverse, forward):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_lower_level_is_l2_strongly_convex():
    problem = pa.tasks.get("few-shot", l2=0.05, **TINY)
    gen = torch.Generator().manual_seed(3)
    for scale in (0.0, 3.0):  # at y = 0 and at random heads, both at random features
        x = torch.randn(problem.dims[0], generator=gen, dtype=DT)
        y = scale * torch.randn(problem.dims[1], generator=gen, dtype=DT)
        H = torch.autograd.functional.hessian(lambda v: problem.lower(x, v), y)
        eig = torch.linalg.eigvalsh(H)
        assert eig.min() >= 0.05 * (1 - 1e-9), f"min eigenvalue {eig.min():.3e} below l2 = 0.05"
        assert eig.max() > 0.1  # the data term, not only the ridge
        # The heads of different tasks do not interact: ∇²_yy g is block diagonal.
        head = problem.dims[1] // 2
        assert H[:head, head:].abs().max() == 0


def test_linear_scalarization_follows_the_preference():
    problem = pa.tasks.get("few-shot", S=2)
    runs = [pa.solve(problem, "linear", r, steps=60, device="cpu", metrics_every=1000) for r in ([0.95, 0.05], [0.05, 0.95])]
    first, second = runs[0].objectives, runs[1].objectives
    # The preferred task's query loss ends several times lower than when the other is preferred.
    assert first[0] < 0.5 * second[0] and second[1] < 0.5 * first[1], f"{first} vs {second}"


def test_wc_mhgd_improves_every_query_loss(uniform_run):
    assert uniform_run.status == "finished", uniform_run.message
    start, end = first_and_last_objectives(uniform_run)
    assert np.all(end < 0.5 * start), f"from {start} to {end}"


def test_evaluate_reports_held_out_accuracy(default, uniform_run):
    metrics = default.evaluate(uniform_run.x, uniform_run.y)
    assert set(metrics) == ({f"acc_{s}" for s in range(1, 6)} | {"acc_mean"}
                            | {f"held_out_loss_{s}" for s in range(1, 6)})
    assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k.startswith("acc"))
    # The held-out loss is the objective's loss on other images: close to, but not, the query loss.
    held_out = np.array([metrics[f"held_out_loss_{s}"] for s in range(1, 6)])
    assert np.all(held_out > 0) and np.all(np.abs(held_out - uniform_run.objectives) < 1.0)
    start = default.evaluate(default.x0, solve_lower(default, default.x0))
    assert metrics["acc_mean"] > 0.85
    assert metrics["acc_mean"] > start["acc_mean"] + 0.03, f"{start} -> {metrics}"


def test_float32_works_too():
    problem = pa.tasks.get("few-shot", S=2, dtype=torch.float32)
    assert problem.x0.dtype == problem.y0.dtype == torch.float32
    assert problem.lower(problem.x0, problem.y0).dtype == torch.float32
    result = pa.solve(problem, "wc-mhgd", [0.5, 0.5], steps=60, device="cpu", metrics_every=1000)
    start, end = first_and_last_objectives(result)
    assert result.status == "finished" and np.all(end < 0.7 * start), f"from {start} to {end}"
    assert result.x.dtype == torch.float32


@pytest.mark.parametrize("device", cuda_params())
def test_builds_on_the_device(device):
    problem = pa.tasks.get("few-shot", device=device, **TINY)
    assert problem.x0.device.type == device and problem.y0.device.type == device
    assert problem.objectives(problem.x0, problem.y0).device.type == device
    result = pa.solve(problem, "wc-mhgd", [0.5, 0.5], steps=2, device=device, metrics_every=1000)
    assert np.isfinite(result.objectives).all()
    assert set(problem.evaluate(result.x, result.y)) == {"acc_1", "acc_2", "acc_mean", "held_out_loss_1",
                                                        "held_out_loss_2"}
