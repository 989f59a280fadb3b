"""Runs in worker processes with the archive as the bus: results, control, crashes, resume, idle limit."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import pareto_app as pa
from pareto_app import launcher
from pareto_app.api import Run, prepare
from pareto_app.runspec import RunSpec
from pareto_app.store import LIVE_STATES, RunStore, process_alive
from pareto_app.termination import Termination
from pareto_app.worker import ArchiveControl, LiveWriter, RunStopped

from .conftest import cuda_params


@pytest.fixture(scope="module", autouse=True)
def no_fork_server_left():
    yield
    launcher.shutdown_fork_server()


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.db")


def spec(steps=100_000, **changes) -> RunSpec:
    base = dict(task="toy-quadratic", solver="wc-mhgd", preference=[0.5, 0.5], device="cpu", metrics_every=5,
                termination=Termination(steps=steps))
    return RunSpec(**{**base, **changes})


def wait_for(probe, what, timeout=60.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def stepping_pid(store, run_id):
    """The pid of the worker of `run_id` once it has taken a step."""
    return wait_for(lambda: (state := store.state(run_id))["iterations"] > 0 and state["pid"], "a stepping worker")


def wait_ended(store, run_id, timeout=90.0):
    # Ended, and let go by its worker (which writes the final status first, then the exact Result).
    wait_for(lambda: (state := store.state(run_id))["status"] not in LIVE_STATES and state["pid"] is None,
             f"run {run_id} to end", timeout)
    return store.state(run_id)


@pytest.mark.parametrize("device", cuda_params())
def test_a_worker_run_equals_the_library_run_exactly(store, device):
    run_id = launcher.start(store, spec(steps=60, device=device), num_objectives=2)
    state = wait_ended(store, run_id)
    assert state["status"] == "finished" and state["iterations"] == 60 and state["progress"] == 1.0
    assert state["pid"] is None and state["heartbeat"] is None
    archived = store.load(run_id)
    expected = pa.solve(pa.tasks.get("toy-quadratic"), "wc-mhgd", [0.5, 0.5], steps=60, metrics_every=5, device=device)
    assert archived.device == expected.device  # the worker ran on the device it was given
    assert archived.objectives.tolist() == expected.objectives.tolist()
    assert torch.equal(archived.x, expected.x.double()) and torch.equal(archived.y, expected.y.double())
    assert archived.history["f1"].tolist() == expected.history["f1"].tolist()
    assert archived.options["beta"] == expected.options["beta"]  # resolved options reach the archive
    # Every iterate's x and y is kept for a small problem.
    x, y = store.point(run_id, 30)
    assert x.shape == (4,) and y.shape == (6,)


def test_pause_resume_steer_and_stop_reach_a_running_worker_quickly(store):
    run_id = launcher.start(store, spec(), num_objectives=2)
    wait_for(lambda: store.state(run_id)["iterations"] >= 20, "iterates")
    clicked = time.monotonic()
    store.command(run_id, "pause")
    wait_for(lambda: store.state(run_id)["status"] == "paused", "paused")
    assert time.monotonic() - clicked < 2.0  # CI is noisy; measured here: ~0.03 s
    frozen = store.state(run_id)["iterations"]
    time.sleep(0.6)
    assert store.state(run_id)["iterations"] == frozen
    store.command(run_id, "run")
    wait_for(lambda: store.state(run_id)["iterations"] > frozen, "steps after resume")
    store.steer(run_id, [0.9, 0.1])
    wait_for(lambda: any(row["preference_changed"] and row["r1"] == pytest.approx(0.9)
                         for _, row in store.rows_since(run_id)), "the new preference")
    clicked = time.monotonic()
    store.command(run_id, "stop")
    state = wait_ended(store, run_id)
    assert time.monotonic() - clicked < 3.0
    assert state["status"] == "stopped" and state["message"] == "stopped from the page"
    result = store.load(run_id)
    assert result.status == "stopped" and len(result.history) == state["iterations"]
    assert result.preference == pytest.approx([0.9, 0.1])


@pytest.mark.parametrize("device", cuda_params())
def test_a_killed_worker_leaves_an_interrupted_run_that_resumes_to_the_same_end(store, device):
    steps = 1000
    run_id = launcher.start(store, spec(steps=steps, device=device), num_objectives=2)
    # A pause writes a checkpoint (whatever the machine's speed: a run can end before its first timed one).
    wait_for(lambda: store.state(run_id)["iterations"] > 20, "the first steps")
    store.command(run_id, "pause")
    wait_for(lambda: store.state(run_id)["status"] == "paused" and store.last_checkpoint(run_id),
             "a checkpoint at the pause")
    paused_at = store.last_checkpoint(run_id)[0]
    store.command(run_id, "run")
    wait_for(lambda: store.state(run_id)["iterations"] > paused_at + 20, "the run to go on")  # killed while it runs
    pid = store.state(run_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    wait_for(lambda: not process_alive(pid), "the worker to die")
    assert store.reap() == [run_id]
    state = store.state(run_id)
    assert state["status"] == "interrupted" and "resume" in state["message"]
    # Written up to at most a flush interval before the kill: nothing older than 1 s is lost.
    rows = store.rows_since(run_id)
    assert rows and state["iterations"] == len(rows)
    assert killed - store.state(run_id)["heartbeat"] <= 1.0
    partial = store.load(run_id)  # an interrupted run still loads, with its iterates so far
    assert partial.status == "interrupted" and len(partial.history) == len(rows)
    checkpoint_step, _ = store.last_checkpoint(run_id)
    launcher.resume(store, run_id)
    state = wait_ended(store, run_id)
    assert state["status"] == "finished"
    history = store.load(run_id).history
    assert history["step"].tolist() == list(range(steps))  # continued from the checkpoint, no gap, no repeat
    expected = pa.solve(pa.tasks.get("toy-quadratic"), "wc-mhgd", [0.5, 0.5], steps=steps, metrics_every=5,
                        device=device)
    np.testing.assert_allclose(store.load(run_id).objectives, expected.objectives, rtol=0, atol=1e-12)
    assert checkpoint_step < steps - 1


def test_a_run_nobody_watches_stops_after_its_idle_limit_paused_or_not(store):
    running = launcher.start(store, spec(idle_limit=3.0), num_objectives=2)
    paused = launcher.start(store, spec(idle_limit=3.0), num_objectives=2)

    def watched_and_started():
        for run_id in (running, paused):
            store.watch(run_id)  # as a page does on every tick, until the tab closes
        return store.state(paused)["iterations"] > 0

    wait_for(watched_and_started, "the second run to start")
    store.command(paused, "pause")
    wait_for(lambda: store.state(paused)["status"] == "paused", "the pause")
    pids = [wait_for(lambda i=i: store.state(i)["pid"], "pid") for i in (running, paused)]
    for run_id in (running, paused):
        state = wait_ended(store, run_id, timeout=30)
        assert state["status"] == "stopped" and "idle limit" in state["message"]
        assert store.load(run_id).status == "stopped"  # archived, not lost
    wait_for(lambda: not any(process_alive(pid) for pid in pids), "the workers to exit", timeout=15)


def test_a_worker_that_cannot_run_marks_its_run_failed_with_the_reason(store):
    bad = launcher.start(store, spec(task="no-such-task"), num_objectives=2)
    state = wait_ended(store, bad)
    assert state["status"] == "failed" and "no-such-task" in state["message"]
    assert "Traceback" not in state["message"]


def test_resume_refuses_a_live_run_and_a_run_without_checkpoint(store):
    run_id = store.create(spec().to_dict(), num_objectives=2)
    with pytest.raises(ValueError, match="queued"):
        launcher.resume(store, run_id)
    store.finish(run_id, None, "interrupted")
    with pytest.raises(ValueError, match="no checkpoint"):
        launcher.resume(store, run_id)


@pytest.mark.parametrize("task,solver", [
    ("toy-quadratic", "wc-mhgd"), ("toy-quadratic", "mgda"), ("toy-quadratic", "linear"), ("toy-quadratic", "moml"),
    ("toy-quadratic", "moco"), ("toy-quadratic", "forum"), ("toy-quadratic", "wc-mhgd-stochastic"),
    ("toy-llgc", "wc-penalty"),
])
def test_a_checkpoint_continues_every_solver_exactly(task, solver):
    problem = pa.tasks.get(task)
    options = {"hypergrad": "neumann"} if solver == "wc-mhgd" else {}
    full = list(Run(prepare(problem, solver, [0.7, 0.3], "cpu", options), 40, 0, None, 10))
    first = Run(prepare(problem, solver, [0.7, 0.3], "cpu", options), 40, 0, None, 10)
    for _, _ in zip(range(20), first):
        pass
    buffer = io.BytesIO()
    torch.save(first.checkpoint(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # plain tensors and numbers: no code runs on load
    rest = list(Run(prepare(problem, solver, [0.7, 0.3], "cpu", options), 40, 0, None, 10, resume=saved))
    assert [it.step for it in rest] == list(range(20, 40))
    assert rest[-1].objectives.tolist() == full[-1].objectives.tolist()
    assert rest[-1].oracle_calls == full[-1].oracle_calls
    # A checkpoint of an earlier version, with a field the state no longer has, still continues the run.
    saved["tensors"]["retired_warm_start"] = torch.zeros(2, 3)
    older = list(Run(prepare(problem, solver, [0.7, 0.3], "cpu", options), 40, 0, None, 10, resume=saved))
    assert [it.step for it in older] == list(range(20, 40))


@pytest.mark.parametrize("solver", ["forum", "moco"])
def test_a_checkpoint_of_the_sequential_step_continues_exactly(solver):
    # Before a single run was B = 1 of the batched step, FORUM kept λ̃ and MoCo λ as S numbers (arrays), MoCo its
    # γ in the options, and neither had the batched (1, ·) fields.
    problem = pa.tasks.get("toy-quadratic")
    full = list(Run(prepare(problem, solver, [0.7, 0.3], "cpu", {}), 40, 0, None, 10))
    first = Run(prepare(problem, solver, [0.7, 0.3], "cpu", {}), 40, 0, None, 10)
    for _, _ in zip(range(20), first):
        pass
    saved = first.checkpoint()
    tensors = saved["tensors"]
    if solver == "forum":
        saved["arrays"]["lam_bar"] = tensors.pop("lam_bar")
        tensors["y_tilde"] = tensors["y"].clone()
    else:
        saved["arrays"]["lam"] = tensors.pop("lam")
        saved["options"] = json.dumps({**json.loads(saved["options"]), "gamma": float(tensors.pop("gamma")[0])})
    rest = list(Run(prepare(problem, solver, [0.7, 0.3], "cpu", {}), 40, 0, None, 10, resume=saved))
    assert [it.step for it in rest] == list(range(20, 40))
    assert rest[-1].objectives.tolist() == full[-1].objectives.tolist()


def test_a_stop_reaches_a_step_between_its_oracle_calls(store):
    run_id = store.create(spec().to_dict(), num_objectives=2)
    control = ArchiveControl(store, run_id, None, LiveWriter(store, run_id, spec()))
    control.poll()  # nothing asked: goes on
    store.command(run_id, "stop")
    time.sleep(0.06)  # the control row is read at most every 0.05 s
    with pytest.raises(RunStopped, match="stopped from the page"):
        control.poll()


def test_a_diverging_worker_run_stops_itself_and_keeps_its_last_good_iterate(store):
    run_id = launcher.start(store, spec(steps=300, options={"beta": 50.0}), num_objectives=2)
    state = wait_ended(store, run_id)
    assert state["status"] == "diverged" and "step size" in state["message"]
    result = store.load(run_id)
    assert result.status == "diverged" and np.all(np.isfinite(result.objectives))
    assert result.history["step"].iloc[-1] == len(result.history) - 1


def test_a_live_worker_is_never_taken_for_interrupted_and_a_live_run_is_not_deleted(store):
    run_id = launcher.start(store, spec(), num_objectives=2)
    wait_for(lambda: store.state(run_id)["iterations"] > 0, "iterates")
    with pytest.raises(ValueError, match="stop it before deleting"):
        store.delete(run_id)
    assert store.reap(stale_after=0.0) == []  # silent for a while (a sweep between its runs) but alive
    store.command(run_id, "stop")
    wait_ended(store, run_id)
    store.delete(run_id)
    assert store.count() == 0 and store.rows_since(run_id) == []


def test_a_sweep_whose_worker_died_resumes_its_unfinished_runs(store):
    steps = 300
    # A wall-time limit (never reached here) makes a sweep run one run after another, each resumable from its
    # checkpoint: a batched run cannot stop each of its rows at its own clock.
    sweep = spec(kind="sweep", preferences=[[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]], solver="moml",
                 termination=Termination(steps=steps, wall_time=3600.0))
    run_id = launcher.start(store, sweep, num_objectives=2)
    wait_for(lambda: len(store.children(run_id)) == 2 and store.state(store.children(run_id)[1])["iterations"] > 10,
             "the second run's first steps")
    store.command(run_id, "pause")  # its runs pause too, each writing a checkpoint
    wait_for(lambda: store.last_checkpoint(store.children(run_id)[1]), "the second run's checkpoint at the pause")
    os.kill(store.state(run_id)["pid"], signal.SIGKILL)
    wait_for(lambda: run_id in store.reap() or store.state(run_id)["status"] == "interrupted",
             "the sweep to be found interrupted")
    first, second = store.children(run_id)
    assert store.state(first)["status"] == "finished" and store.state(second)["status"] == "interrupted"
    launcher.resume(store, run_id)
    assert wait_ended(store, run_id)["status"] == "finished"
    children = store.children(run_id)
    assert len(children) == 3  # the interrupted run was resumed, not run again beside itself
    for child, r in zip(children, sweep.preferences):
        result = store.load(child)
        assert result.status == "finished" and result.history["step"].tolist() == list(range(steps))
        assert result.preference == pytest.approx(r)


def test_a_batched_sweep_streams_every_run_at_once_and_equals_the_library(store):
    steps = 400  # a few seconds: long enough to see every run of the batch part-way
    rows = [[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]
    run_id = launcher.start(store, spec(steps=steps, kind="sweep", preferences=rows), num_objectives=2)
    # While it runs, every run of the batch has iterates in the archive: the page's front moves as a whole.
    wait_for(lambda: len(store.children(run_id)) == 3 and all(
        0 < c["iterations"] < steps for c in store.children_states(run_id)), "every run streaming at once")
    moving = store.children_states(run_id)
    assert all(len(c["objectives"]) == 2 and c["status"] == "running" for c in moving)
    assert wait_ended(store, run_id, timeout=120)["status"] == "finished"
    expected = pa.sweep(pa.tasks.get("toy-quadratic"), "wc-mhgd", rows, steps=steps, device="cpu", metrics_every=5)
    for child, want in zip(store.children(run_id), expected.results, strict=True):
        got = store.load(child)
        assert got.status == "finished" and got.history["step"].tolist() == list(range(steps))
        assert np.array_equal(got.objectives, want.objectives) and torch.equal(got.x, want.x)


def test_a_batched_sweep_whose_worker_died_runs_its_unfinished_runs_again(store):
    steps = 20_000
    sweep = spec(steps=steps, kind="sweep", preferences=[[0.9, 0.1], [0.1, 0.9]])
    run_id = launcher.start(store, sweep, num_objectives=2)
    wait_for(lambda: all(c["iterations"] > 50 for c in store.children_states(run_id) or [{"iterations": 0}]),
             "the runs to step")
    os.kill(store.state(run_id)["pid"], signal.SIGKILL)
    wait_for(lambda: run_id in store.reap() or store.state(run_id)["status"] == "interrupted",
             "the sweep to be found interrupted")
    store.reap()
    assert {c["status"] for c in store.children_states(run_id)} == {"interrupted"}
    store.command(run_id, "run")
    launcher.resume(store, run_id)
    wait_for(lambda: all(c["status"] == "running" and c["iterations"] > 0 for c in store.children_states(run_id)),
             "the resumed runs to step")
    store.command(run_id, "stop")
    assert wait_ended(store, run_id)["status"] == "stopped"
    for child in store.children_states(run_id):
        assert child["status"] == "stopped"
        steps_kept = store.load(child["id"]).history["step"].tolist()
        assert steps_kept == list(range(len(steps_kept)))  # afresh: no step twice, none missing


def test_a_worker_leaves_one_core_to_the_server_and_the_browser(monkeypatch):
    from pareto_app.worker import solver_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert solver_threads() == max(1, cores - 1)
    # Set by the person starting the app, it decides (not torch's count, which a fork server set to 1).
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert solver_threads() == 3


def test_the_final_status_is_written_with_the_last_iterates_and_the_exact_result_after(store):
    """A worker ends a run in two writes: its final status with its last rows (a page waiting on
    "stopping…" sees "stopped" at once), then the exact Result (slow for a long run). Between the two
    the run reads as ended, not saved, and loads from its rows."""
    from pareto_app.worker import _blob

    result = pa.solve(pa.tasks.get("toy-quadratic"), "wc-mhgd", [0.5, 0.5], steps=6, device="cpu", metrics_every=2)
    run_id = store.create(spec(steps=6).to_dict(), num_objectives=2)
    rows = result.history.to_dict(orient="records")
    points = [(_blob(result.x), _blob(result.y)) if k == len(rows) - 1 else None for k in range(len(rows))]
    store.append(run_id, rows, points, status="stopped", progress=1.0, pid=os.getpid(), message="stopped from the page")
    ended = store.state(run_id)
    assert ended["status"] == "stopped" and not ended["saved"] and ended["message"] == "stopped from the page"
    interim = store.load(run_id)
    assert interim.history["step"].tolist() == list(range(6)) and torch.equal(interim.x, result.x)
    assert np.array_equal(interim.objectives, result.objectives)
    store.finish(run_id, result, "stopped", "stopped from the page")
    saved = store.state(run_id)
    assert saved["saved"] and saved["pid"] is None
    assert store.load(run_id).options == result.options


def _autogroup_nice(pid: int) -> int | None:
    """The nice value of the scheduling autogroup of process `pid` (Linux), None where autogroups are off."""
    try:
        if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() != "1":
            return None
        return int(Path(f"/proc/{pid}/autogroup").read_text().split("nice")[1])  # "/autogroup-419 nice 10"
    except (OSError, IndexError, ValueError):
        return None


def _priority(pid: int) -> tuple[int, int | None]:
    """(niceness, its autogroup's niceness or None) of process `pid`."""
    return os.getpriority(os.PRIO_PROCESS, pid), _autogroup_nice(pid)


def test_workers_step_aside_for_the_server_once_they_crowd_the_cores(store, monkeypatch):
    """The server and the browser take a core first once as many workers step as there are cores: each worker's
    niceness is then its launcher's plus `NICENESS` (Unix priority, capped at 19), its autogroup's too (Linux:
    else the server's and the browser's sessions share the CPU with it as equals, whatever its niceness). A
    worker with a core to spare keeps its launcher's priority; a niceness the person set applies at once."""
    from pareto_app.worker import NICENESS, usable_cores

    if not hasattr(os, "getpriority"):
        pytest.skip("no Unix process priorities here")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    lowered = min(19, own + NICENESS)
    monkeypatch.delenv("PARETO_APP_WORKER_NICENESS", raising=False)
    launcher.shutdown_fork_server()  # one started before would carry the environment of then
    runs: list[int] = []
    try:
        runs.append(launcher.start(store, spec(), num_objectives=2))
        first = stepping_pid(store, runs[0])
        if usable_cores() > 1:
            time.sleep(3.0)  # longer than a worker waits between two looks at how crowded the machine is
            assert os.getpriority(os.PRIO_PROCESS, first) == own, "alone on the cores, a worker keeps its priority"
        while len(runs) < usable_cores():
            runs.append(launcher.start(store, spec(), num_objectives=2))
        pids = [stepping_pid(store, r) for r in runs]
        for pid in pids:
            wait_for(lambda pid=pid: _priority(pid)[0] == lowered, "the workers to step aside", timeout=15)
            assert _priority(pid)[1] in (None, lowered), _priority(pid)
    finally:
        for r in runs:
            store.command(r, "stop")
        for r in runs:
            wait_ended(store, r)

    monkeypatch.setenv("PARETO_APP_WORKER_NICENESS", "3")
    launcher.shutdown_fork_server()
    run_id = launcher.start(store, spec(), num_objectives=2)
    pid = stepping_pid(store, run_id)
    try:
        assert _priority(pid)[0] == min(19, own + 3) and _priority(pid)[1] in (None, min(19, own + 3))
    finally:
        store.command(run_id, "stop")
        wait_ended(store, run_id)
    launcher.shutdown_fork_server()


def test_a_niceness_that_is_not_accepted_fails_the_run_and_says_what_is(store, monkeypatch):
    monkeypatch.setenv("PARETO_APP_WORKER_NICENESS", "high")
    launcher.shutdown_fork_server()
    run_id = launcher.start(store, spec(), num_objectives=2)
    state = wait_ended(store, run_id)
    assert state["status"] == "failed"
    assert "PARETO_APP_WORKER_NICENESS='high'" in state["message"] and "0 to 19" in state["message"]
    launcher.shutdown_fork_server()


def test_the_fork_server_s_warm_up_leaves_nothing_for_a_run_s_first_steps_to_import():
    # torch's autograd imports sympy (0.5-0.7 s) at the first vector-Jacobian product: the fork server does it while
    # it waits, not the run's first step. In a fresh process, so that nothing of this one's imports counts.
    code = ("import sys\n"
            "from pareto_app import tasks, worker\n"
            "from pareto_app.api import Run, prepare\n"
            "worker.warm_up()\n"
            "problem = tasks.get('toy-quadratic', device='cpu')\n"
            "before = set(sys.modules)\n"
            "steps = iter(Run(prepare(problem, 'wc-mhgd', [0.5, 0.5], 'cpu', {}), 3, 0, None, 1))\n"
            "next(steps); next(steps)\n"
            "print(sorted(set(sys.modules) - before))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _parent_and_session(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[3])


@pytest.mark.skipif(not hasattr(os, "fork") or not os.path.exists("/proc/self/stat"), reason="forks, read in /proc")
def test_workers_are_forked_by_one_fork_server_and_outlive_it(store):
    launcher.shutdown_fork_server()
    launcher.warm()
    server = launcher._server
    first = launcher.start(store, spec(), num_objectives=2)
    second = launcher.start(store, spec(preference=[0.2, 0.8]), num_objectives=2)
    pids = [stepping_pid(store, r) for r in (first, second)]
    assert len(set(pids)) == 2 and server.pid not in pids
    assert {w.pid for w in launcher.workers()} == set(pids)
    for pid in pids:  # forked by the fork server, each in a session of its own (it outlives the app's server)
        assert _parent_and_session(pid) == (server.pid, pid)
    launcher.shutdown_fork_server()  # its input ends: it exits, the runs go on
    assert server.poll() is not None
    steps = store.state(first)["iterations"]
    wait_for(lambda: store.state(first)["iterations"] > steps + 20, "the run to go on without its fork server")
    for run_id in (first, second):
        store.command(run_id, "stop")
        assert wait_ended(store, run_id)["status"] == "stopped"
    wait_for(lambda: not launcher.workers(), "the workers to end")  # ended and reaped: no zombie left
    assert not any(process_alive(pid) for pid in pids)


def test_a_run_whose_worker_could_not_be_started_fails_and_says_why(store):
    launcher.shutdown_fork_server()
    run_id = launcher.start(store, spec(), num_objectives=2)
    launcher._server.kill()  # still importing torch: the job it was given is never answered
    # A page showing the queued run calls warm() as it looks, which takes up the fork server's answers.
    state = wait_for(lambda: (launcher.warm(), state := store.state(run_id))[1]["status"] != "queued" and state,
                     "the run to fail")
    assert state["status"] == "failed" and "no worker process could be started" in state["message"]
    following = launcher.start(store, spec(steps=5), num_objectives=2)  # a new fork server takes the next
    assert wait_ended(store, following)["status"] == "finished"


def test_without_a_fork_server_each_run_gets_a_fresh_interpreter(store, monkeypatch):
    monkeypatch.setattr(launcher, "FORKS", False)  # as on macOS and Windows
    launcher.shutdown_fork_server()
    runs = [launcher.start(store, spec(preference=[r, 1 - r]), num_objectives=2) for r in (0.3, 0.7)]
    pids = [stepping_pid(store, r) for r in runs]
    assert len(set(pids)) == 2
    for pid in pids:  # this process's own children, each in a session of its own
        assert _parent_and_session(pid) == (os.getpid(), pid)
    for run_id in runs:
        store.command(run_id, "stop")
        assert wait_ended(store, run_id)["status"] == "stopped"
    launcher.shutdown_fork_server()  # the one waiting for the next run


def test_bench_app_reruns_a_runs_spec_with_no_page(store):
    """`bench app`'s control: the same run (its spec as archived) through a worker with nobody watching, timed to its
    end in the archive, with no idle limit (nobody watches it)."""
    from tools.bench_app import without_a_page

    original = launcher.start(store, spec(steps=40, idle_limit=30.0), num_objectives=2)
    assert wait_ended(store, original)["status"] == "finished"
    ends, solver, runs = without_a_page(store, [original])
    again = store.state(runs[0])
    assert again["status"] == "finished" and again["iterations"] == 40
    assert again["spec"] == {**store.state(original)["spec"], "idle_limit": None}
    assert 0 < solver[0] < ends[0] < 60
