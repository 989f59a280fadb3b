"""AppTest tests of the Sweep, Compare and Runs pages over worker processes and the archive.

The pages start runs in worker processes (pareto_app.launcher) that write to the archive;
`run_every` never fires under AppTest, so a test reruns the page while it waits for a run's
status to leave queued/running/paused. Every test stops the runs it started and waits for
their workers, and the fork server is ended after the module.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

import pareto_app as pa
from pareto_app import launcher
from pareto_app.runspec import RunSpec
from pareto_app.store import LIVE_STATES, RunStore
from pareto_app.termination import Termination

WAIT_S = 120  # a worker imports torch and builds the task before its first step: slow on a loaded 2-core machine


@pytest.fixture(scope="module", autouse=True)
def fork_server() -> Iterator[None]:
    yield
    launcher.shutdown_fork_server()


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch) -> Iterator[RunStore]:
    """The archive of this test (PARETO_APP_DB); afterwards its runs are stopped and their workers gone."""
    monkeypatch.setenv("PARETO_APP_DB", str(tmp_path / "runs.db"))
    archive = RunStore(tmp_path / "runs.db")
    yield archive
    for run_id in archive.list().query("status in @LIVE_STATES")["id"]:
        archive.command(int(run_id), "stop")
    deadline = time.monotonic() + 30
    while launcher.workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = launcher.workers()
    for proc in left:  # workers this process started; end them so they do not outlive the tests
        proc.kill()
        proc.wait(10)
    assert not left, f"worker processes still running after the test: {[p.pid for p in left]}"


def _app(page: str) -> AppTest:
    at = AppTest.from_file(f"../pages/{page}.py", default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _live(store: RunStore, run_id: int) -> bool:
    return store.state(run_id)["status"] in LIVE_STATES


def _ended(store: RunStore, run_id: int) -> bool:
    """Ended and let go by its worker (which writes the final status first, then the exact Result)."""
    state = store.state(run_id)
    return state["status"] not in LIVE_STATES and state["pid"] is None


def _wait_until(condition, what: str, at: AppTest | None = None, timeout: float = WAIT_S) -> None:
    """Poll `condition` (rerunning the page in between, as its fragment would) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        if at is not None:
            at.run()
            assert not at.exception, at.exception
        time.sleep(0.2)


def _settle(at: AppTest, store: RunStore, run_id: int) -> None:
    """Wait for run `run_id` to end, then rerun the page (twice: the fragment asks for a full rerun)."""
    _wait_until(lambda: _ended(store, run_id), f"run {run_id} to end", at)
    at.run()
    at.run()
    assert not at.exception, at.exception


def _downloads(at: AppTest) -> dict[str, bool]:
    """Download buttons by label: whether each is enabled."""
    return {el.proto.label: not el.proto.disabled for el in at.get("download_button")}


# -- Sweep ------------------------------------------------------------------------------------------------

def test_sweep_runs_one_archived_child_per_preference_and_exports_the_chosen_one(store):
    at = _app("sweep")
    at.number_input(key="setup_steps").set_value(60)
    at.number_input(key="sweep_count").set_value(3)
    at.run()
    assert any("3 preferences · wc-mhgd · 60 steps each" in c.value for c in at.caption)
    at.button(key="sweep_start").click()
    at.run()
    assert not at.exception, at.exception
    sweep_id = at.session_state["sweep_run"]
    _settle(at, store, sweep_id)
    assert store.state(sweep_id)["status"] == "finished"
    children = store.children(sweep_id)
    assert len(children) == 3
    assert all(store.state(c)["status"] == "finished" and store.state(c)["parent"] == sweep_id for c in children)
    assert store.count() == 4  # the sweep and its three runs: the page saves nothing itself
    metric = next(m for m in at.metric if "Hypervolume" in m.label)
    assert float(metric.value) > 0
    assert at.selectbox(key="sweep_choice").value in children
    assert _downloads(at) == {"Point (JSON)": True, "Run history (CSV)": True, "x and y (torch)": True}
    assert not at.button(key="sweep_start").disabled


def test_sweep_on_a_ray_cluster_archives_every_run_and_draws_the_front(store):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'pareto-app[ray]')")
    at = _app("sweep")
    at.number_input(key="setup_steps").set_value(40)
    at.number_input(key="sweep_count").set_value(4)
    at.radio(key="sweep_backend").set_value("Ray cluster")
    at.run()
    assert not at.exception, at.exception
    assert any("on Ray (local instance)" in c.value for c in at.caption)
    at.button(key="sweep_start").click()
    at.run()
    sweep_id = at.session_state["sweep_run"]
    assert store.spec(sweep_id)["backend"] == "ray"
    _settle(at, store, sweep_id)
    assert store.state(sweep_id)["status"] == "finished", store.state(sweep_id)
    children = store.children(sweep_id)
    assert len(children) == 4 and all(store.state(c)["status"] == "finished" for c in children)
    expected = pa.sweep(pa.tasks.get("toy-quadratic"), "wc-mhgd", [store.load(c).preference for c in children],
                        steps=40, device="cpu")
    for child, want in zip(children, expected.results):
        assert (store.load(child).objectives == want.objectives).all()
    assert float(next(m for m in at.metric if "Hypervolume" in m.label).value) > 0


def test_sweep_front_grows_as_runs_end_and_cancel_stops_the_rest(store):
    at = _app("sweep")
    at.number_input(key="setup_steps").set_value(400)  # a few seconds per run: time to see a partial front
    at.number_input(key="sweep_count").set_value(3)
    at.run()
    at.button(key="sweep_start").click()
    at.run()
    sweep_id = at.session_state["sweep_run"]

    def first_done() -> bool:
        children = store.children(sweep_id)
        return bool(children) and store.state(children[0])["status"] == "finished"

    _wait_until(first_done, "the sweep's first run to finish", at)
    at.run()
    if _live(store, sweep_id):  # the usual case; on a very slow machine the sweep may have ended meanwhile
        assert any("Hypervolume" in m.label for m in at.metric)
        assert any("more are on their way" in c.value for c in at.caption)
        at.button(key="sweep_cancel").click()
        at.run()
        started = time.monotonic()
        _settle(at, store, sweep_id)
        assert time.monotonic() - started < 10
        assert store.state(sweep_id)["status"] == "stopped"
        assert any("stopped" in i.value for i in at.info)
    else:  # it ended between the page's last run and the check: the next runs show it ended
        _settle(at, store, sweep_id)
    assert any("Hypervolume" in m.label for m in at.metric)  # the finished runs' front stays
    with pytest.raises(KeyError):
        at.button(key="sweep_cancel")


def _long_sweep(store: RunStore) -> tuple[AppTest, int]:
    """The Sweep page with a sweep of three 100,000-step runs started, once its first run has stepped; its id."""
    at = _app("sweep")
    at.number_input(key="setup_steps").set_value(100_000)
    at.number_input(key="sweep_count").set_value(3)
    at.run()
    at.button(key="sweep_start").click()
    at.run()
    sweep_id = at.session_state["sweep_run"]
    _wait_until(lambda: any(store.state(c)["iterations"] > 0 for c in store.children(sweep_id)),
                "the sweep's first run to step", at)
    return at, sweep_id


def test_cancel_stops_a_long_sweep_within_seconds(store):
    at, sweep_id = _long_sweep(store)
    at.button(key="sweep_cancel").click()
    at.run()
    assert not at.exception, at.exception
    started = time.monotonic()
    _settle(at, store, sweep_id)
    assert time.monotonic() - started < 10
    assert store.state(sweep_id)["status"] == "stopped"
    # wc-mhgd sweeps are batched: every run of the batch stepped together, and all stop at once.
    children = store.children(sweep_id)
    assert len(children) == 3
    assert all(store.state(c)["status"] == "stopped" and store.state(c)["iterations"] < 100_000 for c in children)


def test_a_live_sweep_shows_its_progress_through_a_feed_and_reruns_only_when_a_run_ends(store):
    from ui import live_feed

    at, sweep_id = _long_sweep(store)
    try:
        at.run()
        args = {json.loads(e.proto.json_args)["key"]: json.loads(e.proto.json_args)
                for e in at.get("component_instance")}["sweep_status"]
        _, _, token, part = args["feed"].rsplit("/", 3)
        code, body = live_feed.answer(token, part, None)
        answer = json.loads(body)
        assert code == 200 and answer["every"] == pytest.approx(0.4)
        assert answer["content"]["line"][0] == ["0 / 3 runs", True]
        assert answer["content"]["state"].startswith("running|0|")  # what would rerun the page: not the steps
        assert live_feed.answer(token, part, answer["version"])[0] in (200, 204)
    finally:
        store.command(sweep_id, "stop")
    _settle(at, store, sweep_id)
    assert live_feed.answer(token, part, None)[0] == 404  # an ended sweep is drawn by the page, not followed


# -- Compare ----------------------------------------------------------------------------------------------

def _compare(at: AppTest, store: RunStore, solvers: list[str], budget: float) -> int:
    at.multiselect(key="compare_solvers").set_value(solvers)
    at.number_input(key="compare_budget_oracle").set_value(budget)
    at.run()
    at.button(key="compare_start").click()
    at.run()
    assert not at.exception, at.exception
    compare_id = at.session_state["compare_run"]
    _settle(at, store, compare_id)
    return compare_id


def test_compare_runs_each_arm_to_the_first_step_that_reaches_the_budget(store):
    at = _app("compare")
    compare_id = _compare(at, store, ["wc-mhgd", "mgda"], 3000.0)
    assert store.state(compare_id)["status"] == "finished"
    arms = store.children(compare_id)
    assert [store.state(a)["solver"] for a in arms] == ["wc-mhgd", "mgda"]
    for arm in arms:
        assert store.state(arm)["parent"] == compare_id and store.state(arm)["status"] == "finished"
        spent = store.load(arm).history["oracle_total"]
        assert spent.iloc[-1] >= 3000 > spent.iloc[-2]
    assert not at.warning
    charts = [e for e in at.get("component_instance") if e.proto.component_name.endswith("live_chart")]
    assert len(charts) >= 4  # stationarity, KKT residual, f1, f2
    summary = next(d.value for d in at.dataframe if "oracle calls" in d.value)
    assert list(summary["solver"]) == ["wc-mhgd", "mgda"] and (summary["oracle calls"] >= 3000).all()


def test_compare_says_when_the_budget_is_below_one_step(store):
    at = _app("compare")
    compare_id = _compare(at, store, ["wc-mhgd", "mgda"], 1.0)
    for arm in store.children(compare_id):
        assert len(store.load(arm).history) == 1
    notices = [w.value for w in at.warning]
    assert any(re.search(r"budget 1 is below one step of wc-mhgd \(\d+ oracle calls\)", n) for n in notices), notices
    assert any("below one step of mgda" in n for n in notices), notices


# -- Runs -------------------------------------------------------------------------------------------------

def _saved_run(store: RunStore) -> int:
    problem = pa.tasks.get("toy-quadratic")
    return store.save(pa.solve(problem, "wc-mhgd", [0.5, 0.5], steps=10, device="cpu"), label="a")


def test_runs_page_lists_and_deletes_only_after_confirmation(store):
    run_id = _saved_run(store)
    at = _app("runs")
    assert len(at.dataframe) >= 1
    label = at.selectbox(key="runs_choice").options[0]
    assert re.fullmatch(rf"#{run_id} · toy-quadratic · wc-mhgd · \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d · finished", label)
    assert any(m.value.startswith("objectives: ") for m in at.markdown)
    assert set(_downloads(at)) == {"Result (JSON)", "History (CSV)", "x and y (torch)"}
    at.button(key="runs_delete").click()
    at.run()
    assert not at.exception, at.exception
    assert store.count() == 1  # the first click only asks
    at.button(key="runs_delete_keep").click()
    at.run()
    assert store.count() == 1
    at.button(key="runs_delete").click()
    at.run()
    confirm = at.button(key="runs_delete_confirm")
    assert confirm.label == f"Confirm delete of #{run_id}"
    confirm.click()
    at.run()
    assert not at.exception, at.exception
    assert store.count() == 0
    assert any("No runs yet" in i.value for i in at.info)


def test_open_in_explore_hands_the_run_to_the_explore_page(store):
    run_id = _saved_run(store)
    # Alone, the page has no navigation to switch with: it keeps the run for Explore and says so.
    at = _app("runs")
    at.button(key="runs_open").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["explore_run"] == run_id
    # In the app, the button switches to the Explore page.
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Runs"
    at.button(key="runs_open").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["explore_run"] == run_id
    assert at.title[0].value == "Explore"


def test_a_sweep_lists_its_runs_and_offers_them_to_explore(store):
    sweep_id = launcher.start(store, RunSpec(kind="sweep", task="toy-quadratic", preferences=[[1, 0], [0, 1]],
                                             device="cpu", termination=Termination(steps=5)),
                              num_objectives=2, label="sweep")
    at = _app("runs")
    _wait_until(lambda: _ended(store, sweep_id), "the sweep to end")
    at.selectbox(key="runs_choice").set_value(sweep_id)
    at.run()
    assert not at.exception, at.exception
    children = store.children(sweep_id)
    assert any(list(d.value.columns[:3]) == ["id", "solver", "status"] and d.value["id"].tolist() == children
               for d in at.dataframe)
    with pytest.raises(KeyError):
        at.button(key="runs_open")  # a sweep itself is not one run to explore
    at.selectbox(key="runs_child").set_value(children[1])
    at.button(key="runs_open_child").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["explore_run"] == children[1]
    # Deleting the sweep (confirmed) deletes its runs with it.
    at.button(key="runs_delete").click()
    at.run()
    assert any("and its 2 run(s)" in w.value for w in at.warning)
    at.button(key="runs_delete_confirm").click()
    at.run()
    assert not at.exception, at.exception
    assert store.count() == 0


def test_resume_continues_an_interrupted_run_from_its_checkpoint(store):
    spec = RunSpec(task="toy-quadratic", preference=[0.5, 0.5], device="cpu", termination=Termination(steps=1_000_000))
    run_id = launcher.start(store, spec, num_objectives=2, label="long")
    _wait_until(lambda: store.last_checkpoint(run_id) is not None, "the run's first checkpoint")
    pid = store.state(run_id)["pid"]
    worker = next(p for p in launcher.workers() if p.pid == pid)  # the worker this test started
    os.kill(pid, signal.SIGKILL)
    worker.wait(10)
    assert store.reap() == [run_id]
    before = store.state(run_id)
    assert before["status"] == "interrupted"
    at = _app("runs")
    at.selectbox(key="runs_choice").set_value(run_id)
    at.run()
    assert not at.exception, at.exception
    at.button(key="runs_resume").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    checkpoint_step = store.last_checkpoint(run_id)[0]
    _wait_until(lambda: store.state(run_id)["status"] == "running"
                and store.state(run_id)["iterations"] > checkpoint_step + 1 + 20, "the resumed run to step on", at)
    # The resumed run continues its history: steps carry on from the checkpoint, none repeated.
    steps = [row["step"] for _, row in store.rows_since(run_id)]
    assert steps == list(range(len(steps)))
    # A live run shows its progress, as a line that follows the archive (ui/jobs.py follow_line).
    shown = {json.loads(e.proto.json_args)["key"]: json.loads(e.proto.json_args) for e in at.get("component_instance")}
    assert "runs_status" in shown and shown["runs_status"]["feed"], "a live run shows its progress"
    assert shown["runs_status"]["content"]["line"][0][0].endswith(" iterations")
    at.button(key="runs_stop").click()
    at.run()
    assert not at.exception, at.exception
    _settle(at, store, run_id)
    assert store.state(run_id)["status"] == "stopped"
