"""Issue 9 for a single run: its steps never wait for the device; their values come to the host once per recorded
interval (every `metrics_every`), not at every step.

On the CPU reading costs nothing, so a run records each step as it ends; where reading would wait for a device
(`pareto_app.sync.may_read` false, as on a GPU) the steps' outputs stay there until a recorded step, a pause or a
stop, or the end. These tests turn `may_read` off on the CPU (`bench_engine.counted_host_reads`), count what is
read, and check that the run is the same run: the same iterates, the same divergence, the same continuation
from a checkpoint taken at any of its iterates.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import pareto_app as pa
import pareto_app.api as api
from pareto_app.api import Diverged, Run, prepare
from pareto_app.bench_engine import counted_host_reads

SOLVERS = [("toy-quadratic", "wc-mhgd", {}), ("toy-quadratic", "wc-mhgd", {"hypergrad": "neumann"}),
           ("toy-quadratic", "mgda", {}), ("toy-quadratic", "linear", {}), ("toy-quadratic", "moml", {}),
           ("toy-quadratic", "moco", {}), ("toy-quadratic", "forum", {}), ("toy-quadratic", "wc-mhgd-stochastic", {}),
           ("toy-llgc", "wc-penalty", {}), ("toy-llgc", "wc-al", {})]
STEPS, EVERY = 41, 10  # 5 recorded intervals: steps 0, 10, 20, 30 and 40


@pytest.fixture(autouse=True)
def no_time_based_copies(monkeypatch):
    # A run also copies every STREAM_EVERY_S so that a stream of slow steps is heard; these steps are fast, and
    # a slow CI machine must not turn that into extra copies.
    monkeypatch.setattr(api, "STREAM_EVERY_S", float("inf"))


def _history(result: pa.Result):
    # Oracle counts differ where the CPU may stop a loop early (CG, the QP's pivots); the iterates do not.
    return result.history.drop(columns=["elapsed"]).filter(regex="^(?!oracle)").to_numpy(float)


@pytest.mark.parametrize("task, solver, options", SOLVERS)
def test_a_single_run_copies_to_the_host_once_per_recorded_interval(task, solver, options):
    problem = pa.tasks.get(task)
    recorded = len(range(0, STEPS, EVERY))
    reference = pa.solve(problem, solver, None, steps=STEPS, metrics_every=EVERY, **options)
    with counted_host_reads() as start_reads:  # the start: the estimates of step sizes, the first step
        pa.solve(problem, solver, None, steps=1, metrics_every=EVERY, **options)
    with counted_host_reads() as reads:
        result = pa.solve(problem, solver, None, steps=STEPS, metrics_every=EVERY, **options)
    per_interval = (len(reads) - len(start_reads)) / (recorded - 1)
    # A copy per step would be ≥ 5 reads × 10 steps; one per field and interval, plus the metrics, is ~16-26.
    assert per_interval <= 40, (per_interval, sorted(set(reads)))
    np.testing.assert_allclose(_history(result), _history(reference), rtol=1e-9, atol=1e-12)
    assert result.objectives.tolist() == pytest.approx(reference.objectives.tolist(), rel=1e-12)


@pytest.mark.parametrize("solver", ["wc-mhgd-stochastic", "moco", "wc-al"])
def test_a_checkpoint_at_any_iterate_of_a_copy_continues_exactly(solver):
    # Iterates 11-20 come to the host together, after step 20 has run: a checkpoint at iterate 13 must hold the
    # state and random streams after step 13, not those of the last step run.
    task = "toy-llgc" if solver == "wc-al" else "toy-quadratic"
    problem = pa.tasks.get(task)
    with counted_host_reads():
        full = list(Run(prepare(problem, solver, [0.7, 0.3], "cpu", {}), 40, 0, None, EVERY))
        first = Run(prepare(problem, solver, [0.7, 0.3], "cpu", {}), 40, 0, None, EVERY)
        for it in first:
            if it.step == 13:
                break
        buffer = io.BytesIO()
        torch.save(first.checkpoint(), buffer)
        buffer.seek(0)
        rest = list(Run(prepare(problem, solver, [0.7, 0.3], "cpu", {}), 40, 0, None, EVERY,
                        resume=torch.load(buffer, weights_only=True)))
    assert [it.step for it in rest] == list(range(14, 40))
    assert rest[-1].objectives.tolist() == full[-1].objectives.tolist()
    assert rest[-1].oracle_calls == full[-1].oracle_calls


def test_a_run_that_diverges_between_copies_keeps_the_iterate_before():
    problem = pa.tasks.get("toy-quadratic")
    with pytest.raises(Diverged) as on_cpu:
        list(Run(prepare(problem, "wc-mhgd", [0.5, 0.5], "cpu", {"beta": 1.5}), 60, 0, None, 25))
    with counted_host_reads(), pytest.raises(Diverged) as deferred:
        list(Run(prepare(problem, "wc-mhgd", [0.5, 0.5], "cpu", {"beta": 1.5}), 60, 0, None, 25))
    assert 0 < on_cpu.value.last.step < 24  # it diverges inside the first interval of 25 steps
    assert deferred.value.last.step == on_cpu.value.last.step
    assert str(deferred.value) == str(on_cpu.value)
    assert deferred.value.last.objectives.tolist() == on_cpu.value.last.objectives.tolist()


class StopAfter(pa.Controller):
    """Stops the run once it has taken up its preference `steps` times (once a step)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.left = steps

    def take_preference(self, seen: int):
        self.left -= 1
        if self.left == 0:
            self.stop()
        return super().take_preference(seen)


def test_a_stop_between_copies_records_every_step_that_ran():
    problem = pa.tasks.get("toy-quadratic")
    with counted_host_reads():
        seen = [it.step for it in Run(prepare(problem, "wc-mhgd", [0.5, 0.5], "cpu", {}), 100, 0, StopAfter(17),
                                      EVERY)]
    assert seen == list(range(17))  # steps 11-16 ran after the last copy: they are recorded, not lost


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the GPU variant is skipped")
@pytest.mark.parametrize("solver", ["wc-mhgd", "mgda", "linear", "forum", "moml", "moco", "wc-penalty"])
def test_a_single_runs_step_never_waits_for_the_host_on_a_gpu(solver):
    problem = pa.tasks.get("toy-llgc" if solver == "wc-penalty" else "toy-quadratic", device="cuda")
    algo = pa.solvers.get(solver)
    r = np.array([0.6, 0.4])
    state = algo.init(problem, r, dict(pa.solvers.check_options(algo, {}), steps=50), pa.oracles.Oracles(problem),
                      torch.Generator().manual_seed(0))
    with torch.no_grad():
        state, _ = algo.step(state, r)  # the first step may set up what later steps reuse
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(3):
                state, out = algo.step(state, r)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert bool(torch.isfinite(out.objectives).all())
