"""Bad input to the public entry points: a ValueError that names the argument, the value and what is
accepted — never a TypeError, OverflowError or ZeroDivisionError from deep inside (issue 10)."""

import math

import numpy as np
import pytest

import pareto_app as pa

TOY = pa.tasks.get("toy-quadratic")


@pytest.mark.parametrize("call, says", [
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, u=None), "u=None is not accepted"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, hypergrad=None), "hypergrad=None is not accepted"),
    (lambda: pa.solve(TOY, "forum", steps=2, rho=None), "rho=None is not accepted"),
    (lambda: pa.solve(TOY, "moco", steps=2, beta=None), "beta=None is not accepted"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, u=True), "u=True must be a number, not a boolean"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, u=10**400), "u=1000"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, seed=2**64), "seed=18446744073709551616; accepted: a whole number"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, metrics_every=-10**25), "metrics_every=-1000"),
    (lambda: pa.tasks.get("toy-llgc", p=float("-inf")), "p=-inf must be a finite number"),
    (lambda: pa.tasks.get("toy-llgc", p=True), "p=True must be a number, not a boolean"),
    (lambda: pa.tasks.get("toy-llgc", gamma=float("nan")), "gamma=nan must be a finite number"),
    (lambda: pa.tasks.get("toy-quadratic", seed=10**400), "seed=1000"),
])
def test_bad_values_are_clear_value_errors(call, says):
    with pytest.raises(ValueError, match="^.*" + says.replace("(", r"\(").replace("+", r"\+")):
        call()


def test_options_estimated_from_the_problem_still_take_none():
    result = pa.solve(TOY, "forum", steps=2, mu=None, eta=None, T=None)
    assert result.status == "finished" and result.options["mu"] > 0


def test_a_preference_near_the_float_limit_is_a_direction_like_any_other():
    huge = pa.solve(TOY, "wc-mhgd", [1e308, 1e308], steps=3)
    plain = pa.solve(TOY, "wc-mhgd", [1.0, 1.0], steps=3)
    assert huge.preference == [0.5, 0.5]
    assert np.array_equal(huge.objectives, plain.objectives)
    assert pa.solve(TOY, "wc-mhgd", [1e308, 1e-300], steps=1).preference[0] == pytest.approx(1.0)
    assert all(math.isfinite(v) for v in huge.objectives)


@pytest.mark.parametrize("device, says", [
    (None, "device=None is not a device name"),
    (0, "device=0 is not a device name"),
    ("gpu", "unknown device 'gpu'"),
    ("cuda:x", "device='cuda:x' is not a device name"),
])
def test_bad_devices_are_named(device, says):
    import torch

    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        pa.solve(TOY, "wc-mhgd", steps=1, device=device)
    with pytest.raises(ValueError, match="unknown device 'meta'"):
        pa.solve(TOY, "wc-mhgd", steps=1, device=torch.device("meta"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            pa.solve(TOY, "wc-mhgd", steps=1, device=torch.device("cuda"))


@pytest.mark.parametrize("solver", ["moml", "moco"])
@pytest.mark.parametrize("eta", [0.7, 1.9])
def test_a_lower_level_step_beyond_two_over_l_is_refused_before_the_run(solver, eta):
    # toy-quadratic's lower-level Hessian has largest eigenvalue 4 (condition 4, smallest 1): 2/L = 0.5.
    with pytest.raises(ValueError, match=r"eta=.* is too large .* eta ≥ 2/L_g ≈ 0\.5"):
        pa.solve(TOY, solver, steps=5, eta=eta)
    assert pa.solve(TOY, solver, steps=5, eta=0.45).status == "finished"


def test_moco_weights_turning_non_finite_end_the_run_as_diverged():
    from pareto_app.solvers.moco import project_simplex

    with pytest.raises(ValueError, match="non-finite"):
        project_simplex(np.array([np.inf, 0.0]))
    assert project_simplex(np.array([2.0, 0.0])).tolist() == [1.0, 0.0]
