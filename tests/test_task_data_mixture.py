"""`data-mixture`: shapes, parameters, derivatives, a convex-but-singular lower level, the trade-off,
and what WC-Penalty makes of it.

References are computed without the library's oracles: central finite differences of the
task's own functions, dense Hessians from torch.autograd.functional, and lower-level
solutions from numpy's least squares (`mixture_solution`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pareto_app as pa
from pareto_app.tasks.data_mixture import mixture_solution

from .conftest import cuda_params
from .reference import check_sampled_gradients

NAME = "data-mixture"
TINY = {"source_size": 20, "val_size": 40, "test_size": 20}
MASKED_PIXELS = 14  # inked in fewer than 5% of the digits


def _mixture(weights: list[float]) -> torch.Tensor:
    return torch.tensor(np.log(weights), dtype=torch.float64)


@pytest.fixture(scope="module")
def default() -> pa.Problem:
    return pa.tasks.get(NAME)


@pytest.fixture(scope="module")
def tiny() -> pa.Problem:
    return pa.tasks.get(NAME, **TINY)


def test_sizes_names_and_start(default):
    assert NAME in pa.tasks.names()
    assert default.num_objectives == 3
    assert default.dims == (4, 10 * 65)  # a logit per source; W of the least-squares model, with bias
    assert not default.strongly_convex
    assert default.labels == ["val loss: digits 0-4 (rel.)", "val loss: digits 5-9 (rel.)", "val loss: shifted (rel.)"]
    assert default.data["sources"] == ["digits 0-4", "digits 5-9", "shifted", "mislabelled"]
    start = default.objectives(default.x0, default.y0).numpy()
    assert start == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
    # The reference is the model that predicts nothing (loss 0.5 per image), in relative units.
    assert default.reference_point == pytest.approx([0.5 / b for b in default.data["baseline"]])
    assert all(r > 1.5 for r in default.reference_point)
    # The start is feasible: y0 solves the lower level for equal weights.
    assert float(torch.func.grad(default.lower, 1)(default.x0, default.y0).norm()) < 1e-10
    scores = default.evaluate(default.x0, default.y0)
    assert set(scores) == {"test acc: digits 0-4", "test acc: digits 5-9", "test acc: shifted", "test acc: mean"}
    assert all(0.5 < v <= 1.0 for v in scores.values())


@pytest.mark.parametrize("N,M", [(2, 2), (5, 4)])
def test_other_source_and_attribute_counts(N, M):
    problem = pa.tasks.get(NAME, N=N, M=M, source_size=60, val_size=100, test_size=100)
    assert problem.dims == (N, 650)
    assert problem.num_objectives == M == len(problem.reference_point)
    assert problem.labels[-1] == ("val loss: digits 5-9 (rel.)" if M == 2 else "val loss: noisy pixels (rel.)")
    raw = pa.tasks.get(NAME, N=N, M=M, source_size=60, val_size=100, test_size=100, relative=False)
    assert raw.labels[0] == "val loss: digits 0-4"
    assert raw.objectives(raw.x0, raw.y0).numpy() == pytest.approx(raw.data["baseline"], rel=1e-10)
    assert raw.reference_point == pytest.approx([0.5] * M)


@pytest.mark.parametrize("params", [
    {"N": 1}, {"N": 6}, {"M": 1}, {"M": 5}, {"N": 3.5}, {"source_size": 5}, {"source_size": 400},
    {"source_size": 300, "val_size": 600, "test_size": 600}, {"label_noise": 0.95}, {"pixel_noise": -0.1},
    {"relative": "yes"}, {"seed": -3}, {"l2": 0.1},
])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        pa.tasks.get(NAME, **params)


def test_gradients_match_central_differences(tiny):
    # The attributes see the mixture only through the model. Whitened pixels make some
    # y-gradients O(10): a relative tolerance for rounding.
    check_sampled_gradients(tiny, coords=60, rel_xy=1e-7)


def test_lower_level_is_convex_but_singular(tiny):
    gen = torch.Generator().manual_seed(1)
    for x in (tiny.x0, 2.0 * torch.randn(tiny.dims[0], generator=gen, dtype=torch.float64)):
        y = tiny.y0 + torch.randn(tiny.dims[1], generator=gen, dtype=torch.float64)
        H = torch.autograd.functional.hessian(lambda yy: tiny.lower(x, yy), y, vectorize=True)
        assert torch.allclose(H, H.T, atol=1e-12)
        eigs = torch.linalg.eigvalsh(H)
        assert float(eigs[0]) >= -1e-10  # convex
        assert abs(float(eigs[0])) < 1e-10  # not strongly convex
        # At least the masked pixels' weights (for each of the 10 outputs) are flat directions.
        assert int((eigs.abs() < 1e-10).sum()) >= 10 * MASKED_PIXELS
        assert float(eigs[-1]) > 0.5
    # g is quadratic in y: its Hessian does not depend on y.
    H1 = torch.autograd.functional.hessian(lambda yy: tiny.lower(tiny.x0, yy), tiny.y0, vectorize=True)
    H2 = torch.autograd.functional.hessian(lambda yy: tiny.lower(tiny.x0, yy), tiny.y0 + 1.0, vectorize=True)
    assert torch.allclose(H1, H2, atol=1e-12)


def test_mixture_solution_solves_the_lower_level(default):
    x = _mixture([0.4, 0.3, 0.2, 0.1])
    y = mixture_solution(default, x)
    assert float(torch.func.grad(default.lower, 1)(x, y).norm()) < 1e-10
    assert torch.allclose(mixture_solution(default, default.x0), default.y0, atol=1e-12)


def test_attributes_conflict_and_the_start_is_dominated(default):
    """Fixed mixtures, lower level solved exactly: each attribute has its own favourite source."""
    F = {}
    for name, w in {"0-4": [0.5, 0.25, 0.25, 1e-6], "5-9": [0.25, 0.5, 0.25, 1e-6],
                    "shifted": [0.25, 0.25, 0.5, 1e-6], "junk": [0.1, 0.1, 0.1, 0.7]}.items():
        x = _mixture(w)
        F[name] = default.objectives(x, mixture_solution(default, x)).numpy()
    assert F["0-4"][0] < F["5-9"][0] - 0.2 and F["0-4"][1] > F["5-9"][1] + 0.2
    assert F["shifted"][2] < min(F["0-4"][2], F["5-9"][2]) - 0.1
    assert F["shifted"][0] > F["0-4"][0] + 0.1
    # Less weight on the mislabelled source: every attribute beats equal weights (1, 1, 1).
    assert np.all(F["shifted"] < 0.99)
    # More weight on it: every attribute is worse.
    assert np.all(F["junk"] > 1.2)


def test_hypergradient_solvers_refuse_it_and_name_wc_penalty(tiny):
    for solver in ("wc-mhgd", "mgda"):
        with pytest.raises(ValueError, match="wc-penalty"):
            pa.solve(tiny, solver, steps=3, device="cpu")


def test_wc_penalty_improves_every_attribute(default):
    steps = 1000  # every check below holds from step 250 on (at 1000: re-solved F ≤ 0.94, α_4 = 0.075)
    result = pa.solve(default, "wc-penalty", [1 / 3] * 3, steps=steps, device="cpu", metrics_every=steps)
    assert result.status == "finished"
    h = result.history
    cols = ["f1", "f2", "f3"]
    first, last = h[cols].iloc[0].to_numpy(), h[cols].iloc[-1].to_numpy()
    assert np.all(last < first - 0.02), (first, last)
    # The iterate is near, not on, the lower level's solution set (a penalty method) ...
    assert h["constraint_violation"].iloc[0] < 1e-10 and h["constraint_violation"].iloc[-1] < 0.05
    # ... and its x is a better mixture in its own right: re-solved exactly, every attribute
    # still beats the start, because the mislabelled source lost weight.
    x = result.x.to(torch.float64)
    feasible = default.objectives(x, mixture_solution(default, x)).numpy()
    assert np.all(feasible < 0.995), feasible
    alpha = torch.softmax(x, 0).numpy()
    assert alpha[3] < 0.21 and alpha[3] == alpha.min()


def test_float32_matches_float64_and_runs():
    p64, p32 = pa.tasks.get(NAME, **TINY), pa.tasks.get(NAME, dtype=torch.float32, **TINY)
    assert p32.dtype == torch.float32 and p32.y0.dtype == torch.float32
    x = _mixture([0.4, 0.3, 0.2, 0.1])
    assert p32.objectives(x.float(), p32.y0).numpy() == pytest.approx(p64.objectives(x, p64.y0).numpy(), rel=1e-5)
    assert float(p32.lower(x.float(), p32.y0)) == pytest.approx(float(p64.lower(x, p64.y0)), rel=1e-5)
    assert mixture_solution(p32, x.float()).dtype == torch.float32
    result = pa.solve(p32, "wc-penalty", steps=20, device="cpu", metrics_every=1000)
    assert result.status == "finished" and np.all(np.isfinite(result.objectives))


@pytest.mark.parametrize("device", cuda_params())
def test_device_is_respected(device):
    problem = pa.tasks.get(NAME, device=device, **TINY)
    assert problem.device.type == device and problem.y0.device.type == device
    assert mixture_solution(problem, problem.x0).device.type == device
    assert set(problem.evaluate(problem.x0, problem.y0)) >= {"test acc: mean"}
    result = pa.solve(problem, "wc-penalty", steps=5, device=device, metrics_every=1000)
    assert result.status == "finished"
