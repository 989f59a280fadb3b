"""pa.sweep(..., backend="ray"): the same results as the local sweep, progress, and bad input named."""

import dataclasses
import logging
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'pareto-app[ray]'): backend='ray' untested")

import pareto_app as pa  # noqa: E402
import pareto_app.ray_sweep  # noqa: E402

PREFERENCES = [[0.9, 0.1], [0.7, 0.3], [0.5, 0.5], [0.3, 0.7], [0.1, 0.9]]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) shared by the module's tests; shut down after them."""
    assert not ray.is_initialized()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def problem():
    return pa.tasks.get("toy-quadratic", S=2)


def assert_same_sweeps(a: pa.Sweep, b: pa.Sweep) -> None:
    """Every run bit for bit: point, objectives, status and history (but the wall-clock times)."""
    assert len(a.results) == len(b.results)
    np.testing.assert_array_equal(a.preferences, b.preferences)
    for ra, rb in zip(a.results, b.results, strict=True):
        assert (ra.solver, ra.task, ra.status, ra.preference) == (rb.solver, rb.task, rb.status, rb.preference)
        assert np.array_equal(ra.objectives, rb.objectives)
        assert torch.equal(ra.x, rb.x) and torch.equal(ra.y, rb.y)
        pd.testing.assert_frame_equal(ra.history.drop(columns="elapsed"), rb.history.drop(columns="elapsed"),
                                      check_exact=True)


def test_without_ray_the_sweep_says_how_to_install_it(problem, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails; the imported module lives on for the rest
    with pytest.raises(ValueError, match=r"pareto-app\[ray\].*backend='local'"):
        pa.sweep(problem, "wc-mhgd", PREFERENCES, steps=3, device="cpu", backend="ray")


@pytest.mark.parametrize("address,needle", [
    ("127.0.0.1:1", "no Ray cluster answers at address='127.0.0.1:1'"),
    ("nonsense", "address='nonsense' is not host:port"),
    ("127.0.0.1:99999", "is not host:port"),
])
def test_an_address_with_no_cluster_is_named_quickly(problem, monkeypatch, address, needle):
    # As if Ray were not started yet (whatever the order of the tests): ray_sweep must connect itself.
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init called for an address nothing answers at"))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=needle) as err:
        pa.sweep(problem, "wc-mhgd", PREFERENCES, steps=3, device="cpu", backend="ray", address=address)
    assert "ray start --head" in str(err.value) and "None for a local Ray instance" in str(err.value)
    assert time.perf_counter() - start < 10


def test_ray_is_started_quietly_or_reused(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    pareto_app.ray_sweep._connect(ray, None)
    assert calls == [dict(address=None, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)]
    monkeypatch.setattr(ray, "is_initialized", lambda: True)  # connected already: that connection serves
    pareto_app.ray_sweep._connect(ray, "127.0.0.1:1")
    assert len(calls) == 1


@pytest.mark.parametrize("kwargs,needle", [
    (dict(backend="ray", gamma=3), "unknown option"),
    (dict(backend="ray", beta=-1.0), "out of range"),
    (dict(backend="nope"), "backend='nope'; accepted: 'local', 'ray'"),
    (dict(backend="local", address="127.0.0.1:6379"), "address='127.0.0.1:6379' is for backend='ray'"),
])
def test_bad_input_is_named_before_any_ray_work(problem, monkeypatch, kwargs, needle):
    monkeypatch.setattr(pareto_app.ray_sweep, "ray_sweep", lambda *a, **k: pytest.fail("Ray work started"))
    with pytest.raises(ValueError, match=needle):
        pa.sweep(problem, "wc-mhgd", PREFERENCES, steps=3, device="cpu", **kwargs)


def test_batched_sweep_on_ray_equals_the_local_sweep_and_reports_progress(local_ray, problem):
    seen: list[tuple[int, int]] = []
    args = dict(steps=30, seed=3, device="cpu", batch_size=2, metrics_every=7)  # chunks of 2, 2 and 1 rows
    on_ray = pa.sweep(problem, "wc-mhgd", PREFERENCES, backend="ray", progress=lambda d, t: seen.append((d, t)), **args)
    assert_same_sweeps(on_ray, pa.sweep(problem, "wc-mhgd", PREFERENCES, backend="local", **args))
    assert len(seen) == 3 and seen[-1] == (5, 5)
    assert all(t == 5 for _, t in seen) and [d for d, _ in seen] == sorted({d for d, _ in seen})


def test_sequential_sweep_on_ray_equals_the_local_sweep(local_ray, problem):
    seen: list[tuple[int, int]] = []
    args = dict(steps=30, device="cpu", batched=False)
    on_ray = pa.sweep(problem, "mgda", PREFERENCES[:3], backend="ray", progress=lambda d, t: seen.append((d, t)), **args)
    assert_same_sweeps(on_ray, pa.sweep(problem, "mgda", PREFERENCES[:3], backend="local", **args))
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]


def test_a_registry_problem_with_another_start_keeps_it_on_ray(local_ray, problem):
    moved = dataclasses.replace(problem, x0=problem.x0 + 0.5)
    shipped = pareto_app.ray_sweep._payload(moved)  # its name and parameters, and the start
    assert isinstance(shipped, pareto_app.ray_sweep.RegisteredTask) and torch.equal(shipped.build().x0, moved.x0)
    args = dict(steps=10, device="cpu", batch_size=3)
    on_ray = pa.sweep(moved, "wc-mhgd", PREFERENCES[:3], backend="ray", **args)
    assert_same_sweeps(on_ray, pa.sweep(moved, "wc-mhgd", PREFERENCES[:3], backend="local", **args))
    assert not np.array_equal(on_ray.objectives, pa.sweep(problem, "wc-mhgd", PREFERENCES[:3], **args).objectives)


def test_a_custom_problem_runs_on_ray_as_it_does_locally(local_ray):
    A = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    custom = pa.Problem(
        upper=[lambda x, y: (y - 1).pow(2).sum() + x.pow(2).sum(), lambda x, y: (y + 1).pow(2).sum() + x.pow(2).sum()],
        lower=lambda x, y: 0.5 * (y - x) @ (A @ (y - x)),
        x0=torch.full((2,), 0.5, dtype=torch.float64), y0=torch.zeros(2, dtype=torch.float64),
    )
    assert pareto_app.ray_sweep._payload(custom) is custom  # pickled whole, lambdas and all
    args = dict(steps=20, device="cpu", batch_size=2)
    on_ray = pa.sweep(custom, "wc-mhgd", PREFERENCES[:3], backend="ray", **args)
    assert_same_sweeps(on_ray, pa.sweep(custom, "wc-mhgd", PREFERENCES[:3], backend="local", **args))


def test_a_value_error_in_a_task_reads_as_it_does_locally(local_ray, problem):
    def refuses(x, y):
        raise ValueError("this objective refuses to be evaluated")

    custom = pa.Problem(upper=[refuses, problem.upper[1]], lower=problem.lower, x0=problem.x0, y0=problem.y0)
    args = dict(steps=5, device="cpu", batched=False)
    with pytest.raises(ValueError) as local:
        pa.sweep(custom, "mgda", PREFERENCES[:2], **args)
    with pytest.raises(ValueError) as remote:
        pa.sweep(custom, "mgda", PREFERENCES[:2], backend="ray", **args)
    assert type(remote.value) is ValueError and str(remote.value) == str(local.value)


def _archived_sweep(tmp_path, **spec_args):
    from pareto_app.runspec import RunSpec
    from pareto_app.termination import Termination

    store = pa.store.RunStore(tmp_path / "runs.db")
    spec = RunSpec(task="toy-quadratic", task_params={"S": 2}, solver="wc-mhgd", device="cpu", kind="sweep",
                   preferences=PREFERENCES, termination=Termination(steps=20), backend="ray", **spec_args)
    return store, store.create(spec.to_dict(), num_objectives=2, label="sweep")


def _execute_in_a_worker(store, run_id: int) -> str:
    """The run's job in a process of its own, as the app's worker runs it: it starts its own Ray and shuts it down
    at its end, as a worker does (in this process, that shutdown would end the module's Ray, and a process that
    starts and shuts down Ray several times has crashed the test process here, once in a suite of ~640 tests)."""
    code = "import sys; from pareto_app import worker; print(worker.execute(sys.argv[1], int(sys.argv[2])))"
    done = subprocess.run([sys.executable, "-c", code, str(store.path), str(run_id)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()[-1]


def test_the_apps_sweep_on_ray_archives_every_run_as_the_library_computes_it(problem, tmp_path):
    store, run_id = _archived_sweep(tmp_path)
    assert _execute_in_a_worker(store, run_id) == "finished"
    children = store.children(run_id)
    assert len(children) == len(PREFERENCES)
    expected = pa.sweep(problem, "wc-mhgd", PREFERENCES, steps=20, device="cpu")
    for child_id, want in zip(children, expected.results, strict=True):
        state = store.state(child_id)
        assert state["status"] == "finished" and state["iterations"] == 20, state
        got = store.load(child_id)
        assert np.array_equal(got.objectives, want.objectives) and torch.equal(got.x, want.x)
        # The iterates are in the archive too, as a page reads them while the sweep runs.
        rows = [row for _, row in store.rows_since(child_id)]
        assert [r["step"] for r in rows] == list(range(20))
    assert store.state(run_id)["status"] == "finished"


def test_a_stopped_sweep_on_ray_marks_its_unfinished_runs_stopped(tmp_path):
    store, run_id = _archived_sweep(tmp_path)
    store.command(run_id, "stop")  # before the first chunk ends
    assert _execute_in_a_worker(store, run_id) == "stopped"
    states = [store.state(i)["status"] for i in store.children(run_id)]
    assert len(states) == len(PREFERENCES) and set(states) == {"stopped"}


def test_a_ray_sweep_needs_a_step_budget():
    from pareto_app.runspec import RunSpec
    from pareto_app.termination import Termination

    with pytest.raises(ValueError, match="stops each run after a number of steps"):
        RunSpec(task="toy-quadratic", kind="sweep", preferences=PREFERENCES, backend="ray",
                termination=Termination(steps=10, wall_time=5.0))
    with pytest.raises(ValueError, match="backend='ray' is for a sweep"):
        RunSpec(task="toy-quadratic", backend="ray")
