"""The public API: bad input, steering, divergence, results, sweeps, the CLI."""

import json
import threading

import numpy as np
import pandas as pd
import pytest
import torch

import pareto_app as pa
from pareto_app.__main__ import main


@pytest.fixture(scope="module")
def problem():
    return pa.tasks.get("toy-quadratic", S=2)


@pytest.mark.parametrize("preference,needle", [
    ([0.5, 0.3, 0.2], "3 entries"),
    ([0.5, -0.1], "negative"),
    ([0.5, float("nan")], "NaN"),
    ([0.0, 0.0], "all zeros"),
])
def test_bad_preference_names_value_and_what_is_accepted(problem, preference, needle):
    with pytest.raises(ValueError, match=needle) as err:
        pa.solve(problem, "wc-mhgd", preference, steps=3)
    assert "accepted" in str(err.value) or "needed" in str(err.value)


def test_preference_is_normalised(problem):
    result = pa.solve(problem, "wc-mhgd", [7, 3], steps=2, device="cpu")
    assert result.preference == pytest.approx([0.7, 0.3])


@pytest.mark.parametrize("call,needle", [
    (lambda p: pa.tasks.get("no-such-task"), "toy-quadratic"),
    (lambda p: pa.solve(p, "no-such-solver", steps=2), "wc-mhgd"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=2, beta=-1.0), "out of range"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=2, hypergrad="lu"), "cg"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=2, gamma=3), "unknown option"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=0), "steps"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=2.5), "steps=2.5; accepted: a whole number ≥ 1"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=2, metrics_every=0), "metrics_every=0; accepted: a whole number ≥ 1"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=2, seed="one"), "seed='one' is not a number"),
    (lambda p: pa.stream(p, "wc-mhgd", steps=None, metrics_every=-3), "metrics_every=-3"),
    (lambda p: pa.sweep(p, "wc-mhgd", [[0.5, 0.5]], steps=float("nan")), "steps=nan"),
    (lambda p: pa.solve(p, "wc-mhgd", steps=2, device="tpu"), "accepted"),
    (lambda p: pa.tasks.get("toy-quadratic", S=9), "out of range"),
    (lambda p: pa.tasks.get("toy-quadratic", colour=1), "unknown parameter"),
])
def test_bad_input_raises_value_error_naming_it(problem, call, needle):
    with pytest.raises(ValueError, match=needle):
        call(problem)


def test_a_diverging_run_stops_itself_and_keeps_its_last_finite_iterate(problem):
    result = pa.solve(problem, "wc-mhgd", [0.5, 0.5], steps=200, device="cpu", beta=50.0)
    assert result.status == "diverged"
    assert "diverged" in result.message and "step size" in result.message
    assert np.all(np.isfinite(result.objectives))
    assert torch.isfinite(result.x).all() and torch.isfinite(result.y).all()
    assert len(result.history) < 200


def test_controller_preference_takes_effect_at_the_next_step(problem):
    ctl = pa.Controller()
    seen = []
    for it in pa.stream(problem, "wc-mhgd", [0.5, 0.5], steps=6, device="cpu", controller=ctl):
        seen.append(it.preference.copy())
        if it.step == 2:
            ctl.set_preference([0.9, 0.1])
    assert all(np.allclose(r, [0.5, 0.5]) for r in seen[:3])
    assert all(np.allclose(r, [0.9, 0.1]) for r in seen[3:])


def test_moving_the_preference_mid_run_moves_the_solution(problem):
    ctl = pa.Controller()
    last = None
    for it in pa.stream(problem, "wc-mhgd", [0.5, 0.5], steps=800, device="cpu", controller=ctl, metrics_every=100):
        if it.step == 399:
            before = it.objectives.copy()
            ctl.set_preference([0.8, 0.2])
        last = it
    # Steered toward objective 1: it ends lower, and at the WC point of the new preference.
    fresh = pa.solve(problem, "wc-mhgd", [0.8, 0.2], steps=600, device="cpu")
    assert last.objectives[0] < before[0]
    np.testing.assert_allclose(last.objectives, fresh.objectives, rtol=1e-5)


def test_controller_pause_resume_stop_from_another_thread(problem):
    ctl = pa.Controller()
    seen: list[pa.Iterate] = []
    thread = threading.Thread(target=lambda: seen.extend(pa.stream(problem, "wc-mhgd", [0.5, 0.5], steps=None,
                                                                   device="cpu", controller=ctl)))
    thread.start()
    try:
        while not seen:
            threading.Event().wait(0.01)
        ctl.pause()
        threading.Event().wait(0.2)
        step = seen[-1].step
        threading.Event().wait(0.3)
        assert seen[-1].step <= step + 1  # at most the step in flight
        ctl.resume()
        threading.Event().wait(0.3)
        assert seen[-1].step > step + 1
    finally:
        ctl.stop()
        thread.join(5)
    assert not thread.is_alive()
    assert [it.step for it in seen] == list(range(len(seen)))


def test_result_history_and_save_load_round_trip(problem, tmp_path):
    result = pa.solve(problem, "wc-mhgd", [0.6, 0.4], steps=30, device="cpu", metrics_every=10)
    h = result.history
    assert isinstance(h, pd.DataFrame) and len(h) == 30
    for column in ("f1", "f2", "w1", "w2", "stationarity", "kkt_residual", "constraint_violation", "oracle_hvp"):
        assert column in h
    assert h["stationarity"].notna().sum() == 4  # steps 0, 10, 20 and the last
    assert (h["oracle_total"].diff().dropna() > 0).all()
    assert result.options["beta"] > 0 and result.options["D"] >= 1  # estimated values are recorded
    for suffix in (".json", ".pt"):
        path = result.save(tmp_path / f"r{suffix}")
        back = pa.Result.load(path)
        assert back.solver == "wc-mhgd" and back.task == "toy-quadratic"
        np.testing.assert_allclose(back.objectives, result.objectives)
        np.testing.assert_allclose(back.x.numpy(), result.x.numpy())
        assert len(back.history) == 30
        # Everything needed to rerun it.
        again = pa.solve(pa.tasks.get(back.task, **back.task_params), back.solver, back.preference,
                         steps=back.steps, seed=back.seed, device="cpu", metrics_every=10)
        np.testing.assert_allclose(again.objectives, result.objectives, rtol=1e-12)
    csv = pd.read_csv(result.save(tmp_path / "r.csv"))
    assert len(csv) == 30


def test_sweep_traces_a_front_with_hypervolume(problem):
    P = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]])
    sweep = pa.sweep(problem, "wc-mhgd", P, steps=300, device="cpu")
    F = sweep.objectives
    assert F.shape == (3, 2)
    assert sweep.front_mask.all()  # WC optima for different preferences do not dominate each other
    assert F[0, 0] < F[1, 0] < F[2, 0] and F[0, 1] > F[1, 1] > F[2, 1]
    # Hypervolume of a 2-D staircase, computed by hand.
    ref = np.array(problem.reference_point)
    order = np.argsort(F[:, 0])
    expected, prev = 0.0, ref[1]
    for i in order:
        expected += (ref[0] - F[i, 0]) * (prev - F[i, 1])
        prev = F[i, 1]
    assert sweep.hypervolume(ref) == pytest.approx(expected, rel=1e-12)


def test_nondominated_and_hypervolume():
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [2.5, 2.5]])
    assert pa.nondominated(pts).tolist() == [True, True, True, False, False]
    assert pa.hypervolume(pts, [4.0, 4.0]) == pytest.approx(3 * 1 + 2 * 1 + 1 * 1)


def test_custom_problem_runs_and_float32_works():
    A = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    problem = pa.Problem(
        upper=[lambda x, y: (y - 1).pow(2).sum() + x.pow(2).sum(), lambda x, y: (y + 1).pow(2).sum() + x.pow(2).sum()],
        lower=lambda x, y: 0.5 * (y - x) @ (A @ (y - x)),
        x0=torch.full((2,), 0.5), y0=torch.zeros(2),
    )
    assert problem.num_objectives == 2 and problem.dtype == torch.float32
    result = pa.solve(problem, "wc-mhgd", [0.5, 0.5], steps=200, device="cpu")
    # φ_s(x) = 2‖x ∓ 1/2·1‖²...: by symmetry the balanced point is x = 0.
    assert result.x.abs().max() < 1e-3
    with pytest.raises(ValueError, match="1-D"):
        pa.Problem(upper=[lambda x, y: x.sum()], lower=lambda x, y: y.sum(), x0=torch.zeros(2, 2), y0=torch.zeros(2))


def test_cli_solve_writes_a_result(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["solve", "--task", "toy-quadratic", "--solver", "wc-mhgd", "--preference", "0.7,0.3",
                 "--steps", "50", "--device", "cpu", "--out", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["preference"] == pytest.approx([0.7, 0.3]) and len(data["history"]) == 50
    captured = capsys.readouterr()
    assert "50/50" in captured.err and "objectives:" in captured.out


def test_cli_reports_bad_input_without_a_traceback(capsys):
    assert main(["solve", "--solver", "nope", "--steps", "5"]) == 2
    assert "unknown solver 'nope'" in capsys.readouterr().err
    assert main(["solve", "--preference", "1,x"]) == 2


def test_cli_lists_tasks_and_solvers(capsys):
    main(["tasks"])
    main(["solvers"])
    out = capsys.readouterr().out
    assert "toy-quadratic" in out and "toy-llgc" in out and "wc-penalty" in out and "hypergrad" in out


@pytest.mark.parametrize("argv, says", [
    (["--seed", "99999999999999999999999"], "seed=99999999999999999999999; accepted: a whole number ≥ 0 and ≤ "),
    (["--out", "/nonexistent/dir/r.json"], "the folder '/nonexistent/dir' does not exist"),
    (["--out", "result.txt"], "suffix '.txt'); accepted: .json, .csv, .pt"),
])
def test_cli_rejects_bad_numbers_and_output_paths_before_the_run(argv, says, capsys):
    assert main(["solve", "--steps", "3", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and "Traceback" not in err
    assert err.count("\n") == 1, err  # one line


def test_whole_numbers_of_any_size_are_checked_not_crashed_on():
    from pareto_app.api import whole_number

    assert whole_number("seed", 2**63 - 1, 0) == 2**63 - 1
    for bad in (2**64, -(2**70), float("inf"), float("nan"), True, np.bool_(True), "3", 2.5):
        with pytest.raises(ValueError, match="seed="):
            whole_number("seed", bad, 0)


def test_saving_to_a_missing_folder_or_a_folder_is_a_clear_error(tmp_path):
    result = pa.solve(pa.tasks.get("toy-quadratic"), "wc-mhgd", steps=2)
    with pytest.raises(ValueError, match="does not exist"):
        result.save(tmp_path / "missing" / "r.json")
    (tmp_path / "d.json").mkdir()
    with pytest.raises(ValueError, match="it is a folder"):
        result.save(tmp_path / "d.json")
    assert result.save(tmp_path / "r.json").exists()
