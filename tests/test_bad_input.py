"""Bad input to the public entry points: a ValueError that names the argument, the value and what is
accepted — never a TypeError, OverflowError or ZeroDivisionError from deep inside (issue 10)."""

import math

import numpy as np
import pytest
import torch

import pareto_app as pa

TOY = pa.tasks.get("toy-quadratic")


@pytest.mark.parametrize("call, says", [
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, u=None), "u=None is not accepted"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, hypergrad=None), "hypergrad=None is not accepted"),
    (lambda: pa.solve(TOY, "forum", steps=2, rho=None), "rho=None is not accepted"),
    (lambda: pa.solve(TOY, "moco", steps=2, beta=None), "beta=None is not accepted"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, u=True), "u=True must be a number, not a boolean"),
    (lambda: pa.solve(TOY, "wc-mhgd", steps=2, hypergrad=np.array([1.0, 2.0])), "hypergrad=array.* is not accepted"),
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


def test_moco_weights_turning_non_finite_end_the_run_as_diverged(monkeypatch):
    # The step says so on the device (it waits for nothing); api.Run turns it into "diverged", the last good
    # iterate kept.
    import dataclasses

    from pareto_app.oracles import Oracles

    moco = pa.solvers.get("moco")
    r = np.array([0.5, 0.5])
    options = {name: option.default for name, option in moco.options.items()}
    state = moco.init(TOY, r, options, Oracles(TOY), torch.Generator().manual_seed(0))
    state, out = moco.step(state, r)
    assert bool(out.finite_weighting)
    poisoned = dataclasses.replace(state, lam=torch.tensor([[np.inf, 0.0]], dtype=torch.float64))
    _, out = moco.step(poisoned, r)
    assert not bool(out.finite_weighting)

    real = type(moco).step

    def poisoned_at_step_3(self, state, preference):
        if state.k == 3:
            state = dataclasses.replace(state, lam=torch.tensor([[np.inf, 0.0]], dtype=torch.float64))
        return real(self, state, preference)

    monkeypatch.setattr(type(moco), "step", poisoned_at_step_3)
    result = pa.solve(TOY, "moco", r, steps=10)
    assert result.status == "diverged" and "step 3" in result.message and "non-finite" in result.message
    assert result.history["step"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("solver", ["mgda", "moml", "moco", "forum", "wc-mhgd", "linear"])
def test_an_all_zero_preference_is_refused_by_every_solver(solver):
    # Issue 10, item 4: mgda, moml, moco and forum used to run with r = (0, 0).
    with pytest.raises(ValueError, match=r"preference \[0.0, 0.0\] is all zeros"):
        pa.solve(TOY, solver, [0, 0], steps=2)


@pytest.mark.parametrize("rows, says", [
    ([{"a": 1}, [0.5, 0.5]], r"preference \{'a': 1\} is not a list of numbers"),
    ([[True, False]], r"preference \[True, False\] is not a list of numbers"),
    ([], "preferences=.*accepted: a non-empty"),
    ([[0.5, 0.5], [1, 2, 3]], "has 3 entries; this problem has 2 objectives"),
])
def test_a_sweep_names_a_bad_row_as_solve_would(rows, says):
    with pytest.raises(ValueError, match=says):
        pa.sweep(TOY, "linear", rows, steps=2)


def test_an_exploding_run_stops_early_and_keeps_an_iterate_near_its_start():
    # Issue 10, item 12: beta=1e3 kept an iterate with objectives ~1.4e7 (the start: 0.47 and 4.85).
    result = pa.solve(TOY, "wc-mhgd", steps=50, beta=1e3)
    start = result.history[["f1", "f2"]].to_numpy()[0]
    assert result.status == "diverged" and "divergence_factor=1000" in result.message
    assert np.all(np.abs(result.objectives) <= 1e3 * (np.abs(start) + 1))
    # The user sets the factor: a looser one lets the same run go further before it stops.
    loose = pa.solve(TOY, "wc-mhgd", steps=50, beta=1e3, divergence_factor=1e9)
    assert len(loose.history) > len(result.history) and np.max(loose.objectives) > 1e6
    with pytest.raises(ValueError, match=r"divergence_factor=0.5; accepted: a finite number > 1"):
        pa.solve(TOY, "wc-mhgd", steps=2, divergence_factor=0.5)


def test_a_healthy_run_is_not_taken_for_a_diverging_one():
    for solver in ("wc-mhgd", "forum", "moco", "mgda"):
        assert pa.solve(TOY, solver, steps=60).status == "finished", solver


@pytest.mark.parametrize("content, says", [
    (b"{", "not JSON"),
    (b"\xff\xfe\x00", "not UTF-8 text"),
    (b"[1, 2]", "it holds a list"),
    (b'{"a": 1}', "it lacks solver, task, preference, objectives, x, y"),
    (b'{"format": "something else"}', "its format is 'something else'"),
])
def test_a_file_that_is_not_a_result_says_so(tmp_path, content, says):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=says):
        pa.Result.load(path)


def test_a_result_file_from_a_newer_version_or_with_bad_fields_is_named(tmp_path):
    import json

    from pareto_app.exports import export_json

    data = json.loads(export_json(pa.solve(TOY, "linear", steps=3)))
    assert data["format"] == "pareto-app result" and data["version"] == 1
    for change, says in [({"version": 2}, "written by a newer pareto-app .* version 2"),
                         ({"x": "abc"}, "x is a str; expected a list of numbers"),
                         ({"history": []}, "history must be a non-empty list"),
                         ({"status": "weird"}, "status 'weird' is not one of"),
                         ({"objectives": [1.0]}, "preference has 2 entries for 1 objectives")]:
        path = tmp_path / "r.json"
        path.write_text(json.dumps(dict(data, **change)))
        with pytest.raises(ValueError, match=says):
            pa.Result.load(path)
    legacy = {k: v for k, v in data.items() if k not in ("format", "version")}  # written before versions
    path.write_text(json.dumps(legacy))
    assert pa.Result.load(path).objectives.tolist() == data["objectives"]


@pytest.mark.parametrize("path, says", [
    ("missing.json", "cannot read"),
    ("r.txt", "suffix '.txt'.*accepted: .json, .pt"),
    ("r.pt", "not a torch file"),
])
def test_unreadable_paths_are_named(tmp_path, path, says):
    (tmp_path / "r.pt").write_bytes(b"not a torch file at all")
    (tmp_path / "r.txt").write_text("x")
    with pytest.raises(ValueError, match=says):
        pa.Result.load(tmp_path / path)


def test_controller_and_problem_name_bad_arguments():
    import torch

    with pytest.raises(ValueError, match="preference .* is not a list of numbers"):
        pa.Controller().set_preference({"a": 1})
    with pytest.raises(ValueError, match="is empty"):
        pa.Controller().set_preference([])
    zero = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"Problem.upper\[1\] must be a function"):
        pa.Problem(upper=[lambda x, y: x.sum(), 3], lower=lambda x, y: y.sum(), x0=zero, y0=zero)
    with pytest.raises(ValueError, match="Problem.lower must be a function"):
        pa.Problem(upper=[lambda x, y: x.sum()], lower=None, x0=zero, y0=zero)
    with pytest.raises(ValueError, match="reference_point=.*accepted: 1 finite numbers"):
        pa.Problem(upper=[lambda x, y: x.sum()], lower=lambda x, y: y.sum(), x0=zero, y0=zero, reference_point=[1, 2])


@pytest.mark.parametrize("argv, says", [
    (["solve", "--option", "u=null"], "u=None is not accepted"),
    (["solve", "--seed", "99999999999999999999999"], "seed=99999999999999999999999"),
    (["solve", "--param", "p=-Infinity"], "p=-inf must be a finite number"),
    (["solve", "--param", "gamma=NaN"], "gamma=nan must be a finite number"),
    (["solve", "--out", "/nonexistent/dir/r.json"], "the folder '/nonexistent/dir' does not exist"),
    (["solve", "--steps", "x"], "argument --steps: invalid int value"),
    (["solve", "--divergence-factor", "1"], "divergence_factor=1.0; accepted"),
    (["bench", "sweep", "--steps", "2", "--rounds", "2"], "--page-apart and --background are options of `bench app` only"),
    (["bench", "sweep", "--steps", "2", "--page-apart"], "--page-apart and --background are options of `bench app` only"),
    (["bench", "sweep", "--steps", "2", "--background"], "--page-apart and --background are options of `bench app` only"),
])
def test_the_cli_prints_one_error_line_and_exits_2(capsys, argv, says):
    from pareto_app.__main__ import main

    try:
        code = main(argv + ["--steps", "2"] if "--steps" not in argv else argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not line.startswith("[")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], err


def test_numbers_beyond_the_float_range_are_named_not_overflow_errors(tmp_path):
    import json

    from pareto_app.exports import export_json

    with pytest.raises(ValueError, match="is not a list of numbers"):
        pa.solve(TOY, "wc-mhgd", [10**400, 1], steps=1)
    with pytest.raises(ValueError, match="divergence_factor=1000"):
        pa.solve(TOY, "wc-mhgd", steps=1, divergence_factor=10**400)
    data = json.loads(export_json(pa.solve(TOY, "linear", steps=2)))
    path = tmp_path / "r.json"
    path.write_text(json.dumps(dict(data, preference=[10**400, 1])))
    with pytest.raises(ValueError, match="preference must be a non-empty list of finite numbers"):
        pa.Result.load(path)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        pa.Result.load(path)
