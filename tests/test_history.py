"""A page's memory for a run is bounded however long the run: History and RunView with a fake 10^6-step run."""

from __future__ import annotations

import numpy as np
import pytest

from pareto_app.history import History
from ui.exploration import READ_PER_TICK, Exploration, RunView, problem_key


def fake_rows(start: int, stop: int, change_every: int = 100_000) -> list[dict]:
    rows = []
    for k in range(start, stop):
        r1 = 0.5 + 0.4 * ((k // change_every) % 2)
        rows.append({"step": k, "f1": 1.0 / (k + 1), "f2": 1.0 - 1.0 / (k + 1), "w1": 0.5, "w2": 0.5, "r1": r1,
                     "r2": 1 - r1, "constraint_violation": 1e-3, "stationarity": float("nan") if k % 10 else 1.0 / (k + 1),
                     "kkt_residual": float("nan"), "direction_norm": 0.1, "elapsed": k * 1e-3,
                     "preference_changed": k > 0 and k % change_every == 0, "oracle_total": 10 * k, "oracle_hvp": 5 * k})
    return rows


def test_history_keeps_named_arrays_and_the_newest_rows():
    h = History(S=2, capacity=100)
    h.extend(fake_rows(0, 50))
    assert len(h) == 50 and h.objectives.shape == (50, 2) and h.preference.shape == (50, 2)
    assert h.step.tolist() == list(range(50))
    assert h.last["oracle_hvp"] == 5 * 49
    frame = h.frame()
    assert list(frame["f1"]) == list(h.objectives[:, 0]) and frame["preference_changed"].dtype == bool


def test_history_stays_bounded_for_a_million_steps_and_keeps_what_the_charts_need():
    h = History(S=2, capacity=4000)
    for start in range(0, 1_000_000, 50_000):
        h.extend(fake_rows(start, start + 50_000))
        assert len(h) <= 4000
    assert h.seen == 1_000_000
    assert h.step[0] == 0 and h.step[-1] == 999_999
    assert np.all(np.diff(h.step) > 0)
    assert h.changes == list(range(100_000, 1_000_000, 100_000))  # every preference change kept
    assert np.all(np.diff(h.step[-1000:]) == 1)  # the newest rows dense
    assert np.isfinite(h.stationarity).sum() > 50  # metric rows survive the thinning
    with pytest.raises(AttributeError, match="fields"):
        h.nonsense  # noqa: B018


class FakeArchive:
    """The part of RunStore a RunView reads, over a fake run of `n` iterates (made on demand)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def rows_since(self, run_id, seq=0, limit=None):
        stop = min(self.n, seq + (limit or self.n))
        return [(k + 1, row) for k, row in zip(range(seq, stop), fake_rows(seq, stop))]

    def state(self, run_id):
        return {"status": "running", "message": "", "progress": 0.5}

    def control(self, run_id):
        return {"command": "run"}


def test_a_page_watching_a_million_step_run_keeps_a_bounded_number_of_points():
    archive = FakeArchive(1_000_000)
    view = RunView(7, {"task": "toy-quadratic", "solver": "wc-mhgd", "preference": [0.5, 0.5]}, History(2, 4000))
    ticks = 0
    while view.refresh(archive):
        ticks += 1
        assert len(view.history) <= 4000
    assert ticks == 1_000_000 // READ_PER_TICK and view.history.seen == 1_000_000
    exploration = Exploration(views={7: view})
    assert 0 < len(exploration.points(view.problem)) <= 4000
    assert 0 < len(exploration.front(view.problem)) <= 4000


def test_the_front_is_of_one_problem_not_of_every_run_of_the_task():
    # Two problems of one task (another S, other data): their iterates are not comparable.
    def view(run_id: int, params: dict, rows: list[dict]) -> RunView:
        v = RunView(run_id, {"task": "toy-quadratic", "task_params": params}, History(2, 100))
        v.history.extend(rows)
        return v

    dominating = [{**row, "f1": row["f1"] / 10, "f2": row["f2"] / 10} for row in fake_rows(0, 5)]
    exploration = Exploration(views={1: view(1, {"seed": 0}, fake_rows(0, 5)), 2: view(2, {"seed": 1}, dominating),
                                     3: view(3, {"seed": 0}, fake_rows(5, 10))})
    one = problem_key("toy-quadratic", {"seed": 0})
    assert exploration.views[1].problem == exploration.views[3].problem == one != exploration.views[2].problem
    assert set(exploration.points(one)["run"]) == {1, 3}
    assert set(exploration.front(one)["run"]) <= {1, 3} and len(exploration.front(one))  # run 2 would dominate
    assert set(exploration.front(exploration.views[2].problem)["run"]) == {2}
    assert len(exploration.points()) == 15  # None: every run


def test_a_solver_iterate_round_trips_through_the_flat_record():
    """Iterate.row() → named(): every field comes back, exactly, under its name."""
    import torch

    from pareto_app.history import named, num_objectives, vectors
    from pareto_app.result import Iterate

    it = Iterate(step=7, x=torch.zeros(2), y=torch.zeros(3), objectives=np.array([0.1, 1 / 3, 2.5]),
                 weights=np.array([0.2, 0.3, 0.5]), preference=np.array([0.6, 0.3, 0.1]), constraint_violation=1e-9,
                 stationarity=float("nan"), kkt_residual=3e-7, direction_norm=0.25,
                 oracle_calls={"grad_f": 4, "hvp": 9}, elapsed=1.5, preference_changed=True)
    row = it.row()
    assert num_objectives(row) == 3
    fields = named(row)
    assert fields["objectives"] == [0.1, 1 / 3, 2.5] and fields["weights"] == [0.2, 0.3, 0.5]
    assert fields["preference"] == [0.6, 0.3, 0.1] and fields["step"] == 7 and fields["preference_changed"]
    assert fields["stationarity"] is None and fields["kkt_residual"] == 3e-7
    assert fields["oracle_calls"] == {"grad_f": 4, "hvp": 9}
    import pandas as pd

    table = pd.DataFrame([row, row])
    assert vectors(table, "weights").tolist() == [[0.2, 0.3, 0.5]] * 2


def test_one_builder_of_a_result_takes_the_last_recorded_iterate():
    import pandas as pd
    import torch

    from pareto_app.result import Result

    rows = fake_rows(0, 5)
    result = Result.of_run(solver="wc-mhgd", task="toy-quadratic", task_params={}, options={}, seed=0, steps=5,
                           device="cpu", history=pd.DataFrame(rows), x=torch.ones(2), y=torch.ones(2),
                           status="finished", message="")
    assert result.objectives.tolist() == [rows[-1]["f1"], rows[-1]["f2"]]
    assert result.preference == [rows[-1]["r1"], rows[-1]["r2"]]
    with pytest.raises(ValueError, match="at least one recorded iterate"):
        Result.of_run(solver="wc-mhgd", task="toy-quadratic", task_params={}, options={}, seed=0, steps=5,
                      device="cpu", history=pd.DataFrame(), x=torch.ones(2), y=torch.ones(2), status="finished",
                      message="")


def test_a_page_looks_at_a_live_run_often_at_a_paused_one_slowly_and_at_an_ended_one_never():
    from ui.exploration import look_every

    view = RunView(1, {"task": "toy-quadratic"}, History(2, 10))
    assert look_every(None, 0.4, 1.0) is None
    for status in ("queued", "running"):
        view.status, view.command = status, "run"
        assert look_every(view, 0.4, 1.0) == 0.4
        assert look_every(view, 0.4, 1.0, busy=2.0) == 0.4  # no step yet: the first is looked for at the usual pace
    view.history.extend(fake_rows(0, 1))
    assert look_every(view, 0.4, 1.0, busy=2.0) == pytest.approx(1.6)  # 4 stepping workers on 2 cores
    assert look_every(view, 0.4, 1.0, busy=0.5) == 0.4  # fewer workers than cores: no faster
    view.status, view.command = "running", "pause"  # asked, not yet obeyed: the panel must see it obey
    assert look_every(view, 0.4, 1.0) == 0.4
    view.status = "paused"
    assert look_every(view, 0.4, 1.0, busy=3.0) == 1.0
    view.command = "run"  # resuming: the worker goes on at its next look
    assert look_every(view, 0.4, 1.0) == 0.4
    for status in ("finished", "stopped", "failed", "diverged", "interrupted"):
        view.status = status
        assert look_every(view, 0.4, 1.0) is None


def test_a_chart_is_kept_as_it_is_until_its_run_has_a_step_to_draw():
    from ui.exploration import nothing_to_draw_yet

    view = RunView(1, {"task": "toy-quadratic"}, History(2, 10))
    for status in ("queued", "running", "paused"):
        view.status = status
        assert nothing_to_draw_yet(view, "idle") and nothing_to_draw_yet(view, "3:40:finished")
        assert not nothing_to_draw_yet(view, None)  # a browser with no chart gets one
    view.status = "failed"  # ended before its first step: its chart says so
    assert not nothing_to_draw_yet(view, "idle")
    view.status = "running"
    view.history.extend(fake_rows(0, 1))
    assert not nothing_to_draw_yet(view, "idle")


def test_a_page_looks_again_when_a_run_is_due_to_end():
    from ui.exploration import until_finished

    view = RunView(1, {"task": "toy-quadratic"}, History(2, 10))
    view.status, view.progress = "running", 0.9
    assert until_finished(view, 0.25, 0.05) == 0.25  # no iterate yet: no pace to go by
    view.history.extend([{**fake_rows(449, 450)[0], "elapsed": 1.8}])
    assert until_finished(view, 0.25, 0.05) == 0.05  # 1.8 s for 90 %: the last 10 % in 0.2 s, due within 0.5 s
    view.progress = 0.75
    assert until_finished(view, 0.25, 0.05) == 0.25  # 0.6 s to go: the usual pace
    assert until_finished(view, 1.0, 0.05) == 0.05  # ... but due before the second of two slow looks
    assert until_finished(view, None, 0.05) is None
    for status in ("paused", "finished", "queued"):
        view.status, view.progress = status, 0.99
        assert until_finished(view, 1.0, 0.05) == 1.0


def test_a_page_looks_again_soon_while_its_run_has_not_obeyed_a_click():
    from ui.exploration import until_obeyed

    view = RunView(1, {"task": "toy-quadratic"}, History(2, 10))
    view.status, view.command = "running", "run"
    assert until_obeyed(view, 0.25, 0.05) == 0.25
    for status, command in (("running", "stop"), ("paused", "stop"), ("running", "pause"), ("paused", "run")):
        view.status, view.command = status, command
        assert until_obeyed(view, 1.0, 0.05) == 0.05, (status, command)
    view.status, view.command = "paused", "pause"  # obeyed: the paused pace
    assert until_obeyed(view, 1.0, 0.05) == 1.0
    view.status, view.command = "stopped", "stop"  # ended: obeyed, and no look at all
    assert until_obeyed(view, 1.0, 0.05) == 1.0
    assert until_obeyed(view, None, 0.05) is None


def test_a_hurried_status_line_reads_what_the_worker_wrote_since_the_last_read(tmp_path):
    from pareto_app.runspec import RunSpec
    from pareto_app.store import RunStore
    from pareto_app.termination import Termination
    from ui.exploration import open_view, read_every, status_pace

    store = RunStore(tmp_path / "runs.db")
    run_id = store.create(RunSpec(task="toy-quadratic", preference=[0.5, 0.5], device="cpu",
                                  termination=Termination(steps=1000)).to_dict(), num_objectives=2)
    store.append(run_id, fake_rows(0, 100), [None] * 100, status="running", progress=0.1)  # 1 ms a step
    view = open_view(store, run_id)
    assert status_pace(view, 0.25, 0.05) == 0.25 and not view.hurried  # 0.1 s for 10 %: 0.9 s to go
    store.append(run_id, fake_rows(100, 950), [None] * 850, status="running", progress=0.95)
    view.refresh(store)
    assert status_pace(view, 0.25, 0.05) == 0.05 and view.hurried  # 0.95 s for 95 %: due within 0.05 s
    store.append(run_id, fake_rows(950, 1000), [None] * 50, status="running", progress=1.0)
    store.finish(run_id, None, "finished", "")
    assert read_every(view, 60.0) == 0.0  # a read this recent serves the other parts, but not a hurried line
    assert view.refresh_if_older(store, read_every(view, 60.0)) == 50 and view.status == "finished"
    assert status_pace(view, None, 0.05) is None and not view.hurried  # ended: no more asks
    assert read_every(view, 60.0) == 60.0
    assert view.refresh_if_older(store, read_every(view, 60.0)) == 0
    view.status, view.command = "running", "stop"  # a Stop not obeyed yet
    assert status_pace(view, 1.0, 0.05) == 0.05 and view.hurried
