"""AppTest tests of each page's logic: widgets, starting runs, stepping them, export payloads."""

import json
import time

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import pareto_app as pa
from pareto_app import launcher
from pareto_app.runspec import RunSpec
from pareto_app.store import LIVE_STATES
from pareto_app.termination import Termination


@pytest.fixture(autouse=True)
def isolated_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_APP_DB", str(tmp_path / "runs.db"))


def _app(page: str = "explore") -> AppTest:
    # Each page draws the shared sidebar itself, so it runs on its own under AppTest.
    at = AppTest.from_file(f"../pages/{page}.py", default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def live_charts(at: AppTest) -> dict[str, dict]:
    """{key: arguments} of the page's live charts (ui/live_chart.py: a component, which AppTest does not draw)."""
    charts = {}
    for element in at.get("component_instance"):
        if element.proto.component_name.endswith("live_chart"):
            args = json.loads(element.proto.json_args)
            charts[args["key"]] = args
    return charts


def test_entry_point_navigates_to_explore():
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explore"


def _wait(run_id, timeout=90):
    """Until the run's worker process has ended it."""
    store = pa.store.RunStore()
    deadline = time.monotonic() + timeout
    while (state := store.state(run_id))["status"] in LIVE_STATES or state["pid"] is not None:
        assert time.monotonic() < deadline, store.state(run_id)
        time.sleep(0.1)
    return store.state(run_id)


@pytest.fixture(scope="module", autouse=True)
def no_fork_server_left():
    yield
    launcher.shutdown_fork_server()


def test_explore_renders_with_defaults():
    at = _app()
    assert at.selectbox(key="setup_task").value == "toy-quadratic"
    assert at.selectbox(key="setup_solver_toy-quadratic").value == "wc-mhgd"
    assert not at.button(key="explore_start").disabled


def test_a_run_that_cannot_start_says_why_and_leaves_the_buttons(monkeypatch):
    import sqlite3

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    at = _app()
    monkeypatch.setattr(launcher, "start", locked)
    at.button(key="explore_start").click()
    at.run()
    assert not at.exception, at.exception
    assert any("could not start: database is locked" in e.value for e in at.error)
    assert not at.button(key="explore_start").disabled and at.button(key="explore_stop").disabled
    assert "explore_run" not in at.session_state


@pytest.mark.parametrize("opened_meanwhile", [False, True])
def test_a_run_started_as_a_rerun_cuts_the_panel_short_is_shown_not_lost(monkeypatch, opened_meanwhile):
    # A person moves a slider while Start is being handled: the rerun it asks for stops the panel at its next
    # Streamlit call, which may come right after the worker was started. The page shows that run (no second
    # one from the same click), rather than leaving it to run unseen until its idle limit; unless the person opened
    # another run meanwhile (the Runs page's "Open in Explore"): that one stays the page's.
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    started = []

    def start_then_a_rerun(*args, **kwargs):
        run = real_start(*args, **kwargs)
        started.append(run)
        if opened_meanwhile:
            other = real_start(store, RunSpec(task="toy-quadratic", preference=[0.8, 0.2], device="cpu",
                                              termination=Termination(steps=100_000)), num_objectives=2)
            started.append(other)
            st.session_state["explore_run"] = other
        get_script_run_ctx().script_requests.request_rerun(RerunData())
        return run

    real_start, store = launcher.start, pa.store.RunStore()
    at = _app()
    at.number_input(key="setup_steps").set_value(100_000)
    at.run()
    monkeypatch.setattr(launcher, "start", start_then_a_rerun)
    at.button(key="explore_start").click()
    at.run()
    try:
        assert not at.exception, at.exception
        assert len(started) == 1 + opened_meanwhile and store.count() == len(started), started
        assert at.session_state["explore_run"] == started[-1]
        assert at.session_state["explore_exploration"].started is None
        at.run()
        assert at.button(key="explore_start").disabled and not at.button(key="explore_stop").disabled
    finally:
        for run in started:
            store.command(run, "stop")
    for run in started:
        assert _wait(run, timeout=30)["status"] == "stopped"


def test_explore_start_streams_archives_and_exports_a_front_point():
    at = _app()
    at.number_input(key="setup_steps").set_value(40)
    at.button(key="explore_start").click()
    at.run()
    assert not at.exception, at.exception
    run_id = at.session_state["explore_run"]
    state = _wait(run_id)
    at.run()  # run_every never fires under AppTest: rerun to read the archive
    assert not at.exception, at.exception
    assert state["status"] == "finished" and state["iterations"] == 40
    view = at.session_state["explore_exploration"].views[run_id]
    assert len(view.history) == 40 and view.status == "finished"
    assert pa.store.RunStore().count() == 1
    # The worker ran what pa.solve runs: the same iterates, exactly.
    expected = pa.solve(pa.tasks.get("toy-quadratic"), "wc-mhgd", [0.5, 0.5], steps=40, metrics_every=5, device="cpu")
    assert view.history.objectives[-1].tolist() == expected.objectives.tolist()
    # The chosen front point's JSON export has what reproduces it.
    choice = at.selectbox(key="explore_choice")
    assert choice.value is not None
    data = json.loads(at.session_state["explore_last_export"])
    assert data["reproduce"]["solver"] == "wc-mhgd" and data["reproduce"]["task"] == "toy-quadratic"
    assert data["reproduce"]["options"]["beta"] > 0  # the resolved options, estimated ones included
    assert len(data["x"]) == 4 and len(data["objectives"]) == 2


def test_explore_preference_change_pause_and_stop_reach_the_worker():
    at = _app()
    at.number_input(key="setup_steps").set_value(100_000)
    at.button(key="explore_start").click()
    at.run()
    run_id = at.session_state["explore_run"]
    store = pa.store.RunStore()
    try:
        at.slider(key="explore_pref2_r2").set_value(0.9)
        at.run()
        assert store.control(run_id)["preference"] == pytest.approx([0.9, 0.1])
        deadline = time.monotonic() + 60
        while not any(row.get("r1") == pytest.approx(0.9) for _, row in store.rows_since(run_id)):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        at.button(key="explore_pause").click()
        at.run()
        assert store.control(run_id)["command"] == "pause"
        deadline = time.monotonic() + 10
        while store.state(run_id)["status"] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        at.run()
        assert not at.button(key="explore_resume").disabled
    finally:
        at.button(key="explore_stop").click()
        at.run()
    state = _wait(run_id, timeout=15)
    assert state["status"] == "stopped" and "stopped from the page" in state["message"]


def test_all_zero_preference_shows_an_inline_error():
    at = _app()
    at.selectbox(key="setup_task").set_value("toy-quadratic")
    at.number_input(key="setup_task_toy-quadratic_S").set_value(4)
    at.run()
    for s in range(4):
        at.slider(key=f"explore_pref4_rn_{s}").set_value(0.0)
    at.run()
    assert not at.exception
    assert any("all zeros" in e.value for e in at.error)
    assert at.button(key="explore_start").disabled


def test_bad_solver_option_is_an_inline_error():
    at = _app()
    at.text_input(key="setup_opt_wc-mhgd_beta").set_value("-3")
    at.run()
    assert not at.exception
    assert any("out of range" in e.value for e in at.error)
    assert at.button(key="explore_start").disabled


def test_merely_convex_task_defaults_to_wc_penalty():
    at = _app()
    at.selectbox(key="setup_task").set_value("toy-llgc")
    at.run()
    assert not at.exception
    assert at.selectbox(key="setup_solver_toy-llgc").value == "wc-penalty"


def test_three_objectives_use_the_ternary_picker_and_exact_inputs():
    at = _app()
    at.number_input(key="setup_task_toy-quadratic_S").set_value(3)
    at.run()
    assert not at.exception, at.exception
    inputs = [at.number_input(key=f"explore_pref3_r3_{s}_v0") for s in range(3)]
    for box, value in zip(inputs, (2.0, 1.0, 1.0)):
        box.set_value(value)
    at.run()
    assert not at.exception, at.exception
    assert any("r = (0.500, 0.250, 0.250)" in c.value for c in at.caption)
    picker = live_charts(at)["explore_pref3_ternary"]  # the clickable ternary plot, a chart updated in place
    assert picker["clickable"] and {t["type"] for t in json.loads(picker["spec"])["data"]} == {"scatterternary"}


def test_a_data_task_shows_held_out_metrics_of_the_chosen_point():
    at = _app()
    at.selectbox(key="setup_task").set_value("hyper-cleaning")
    at.run()
    at.number_input(key="setup_task_hyper-cleaning_S").set_value(2)
    at.number_input(key="setup_steps").set_value(3)
    at.run()
    at.button(key="explore_start").click()
    at.run()
    _wait(at.session_state["explore_run"])
    at.run()
    assert not at.exception, at.exception
    assert any("Held-out metrics" in m.value and "acc_1" in m.value for m in at.markdown)
    data = json.loads(at.session_state["explore_last_export"])
    assert 0.0 <= data["held_out"]["acc_1"] <= 1.0


def test_a_data_set_uploaded_in_the_sidebar_is_what_the_run_trains_on(tmp_path, monkeypatch):
    import io

    import numpy as np

    monkeypatch.setenv("PARETO_APP_DATA", str(tmp_path / "uploads"))
    at = _app()
    at.selectbox(key="setup_task").set_value("hyper-cleaning")
    at.run()
    # A bad file is named in the page, not a stack trace.
    at.get("file_uploader")[0].set_value(("mine.npz", b"not a zip", "application/octet-stream"))
    at.run()
    assert not at.exception, at.exception
    assert any("not a readable .npz" in e.value for e in at.error)
    rng = np.random.default_rng(0)
    y = np.arange(400) % 3
    buffer = io.BytesIO()
    np.savez(buffer, X=rng.standard_normal((400, 9)) + 2 * y[:, None], y=y)
    at.get("file_uploader")[0].set_value(("mine.npz", buffer.getvalue(), "application/octet-stream"))
    at.number_input(key="setup_task_hyper-cleaning_S").set_value(2)
    at.number_input(key="setup_task_hyper-cleaning_train_per_set").set_value(60)
    at.number_input(key="setup_task_hyper-cleaning_val_per_set").set_value(30)
    at.number_input(key="setup_task_hyper-cleaning_test_size").set_value(30)
    at.number_input(key="setup_steps").set_value(3)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any(c.value.startswith("data: mine.npz") for c in at.caption)
    at.button(key="explore_start").click()
    at.run()
    state = _wait(at.session_state["explore_run"])
    assert state["status"] == "finished", state
    spec = pa.store.RunStore().spec(at.session_state["explore_run"])
    saved = spec["task_params"]["data"]
    assert saved.startswith(str(tmp_path / "uploads")) and saved.endswith(".npz")
    assert np.array_equal(np.load(saved)["y"], y)  # the worker read the uploaded file


def test_an_archive_that_cannot_be_opened_is_named_and_the_app_runs_on_a_temporary_one(tmp_path, monkeypatch):
    broken = tmp_path / "not-a-db.db"
    broken.write_bytes(b"this is not a sqlite database, not at all" * 100)
    monkeypatch.setenv("PARETO_APP_DB", str(broken))
    at = _app()
    assert not at.exception, at.exception
    warning = " ".join(w.value for w in at.warning)
    assert str(broken) in warning and "temporary archive" in warning and "PARETO_APP_DB" in warning
    at.number_input(key="setup_steps").set_value(5)
    at.button(key="explore_start").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["explore_run"] >= 1  # the run went to the temporary archive


def test_a_run_opened_in_explore_keeps_its_preference_and_is_watched():
    store = pa.store.RunStore()
    spec = RunSpec(task="toy-quadratic", preference=[0.8, 0.2], device="cpu", termination=Termination(steps=100_000))
    run_id = launcher.start(store, spec, num_objectives=2)
    try:
        at = AppTest.from_file("../pages/explore.py", default_timeout=60)
        at.session_state["explore_run"] = run_id  # what the Runs page's "Open in Explore" does
        at.run()
        assert not at.exception, at.exception
        assert not at.warning, [w.value for w in at.warning]
        assert at.slider(key="explore_pref2_r2").value == pytest.approx(0.8)
        at.run()
        assert store.control(run_id)["version"] == 0  # opening it did not steer it
        assert not at.button(key="explore_stop").disabled  # and it can be stopped from here
        at.slider(key="explore_pref2_r2").set_value(0.3)
        at.run()
        assert store.control(run_id)["preference"] == pytest.approx([0.3, 0.7])
    finally:
        store.command(run_id, "stop")
    assert _wait(run_id, timeout=30)["status"] == "stopped"


def test_the_exports_of_a_chosen_point_are_built_when_downloaded_and_read_back_exact():
    """The CSV and the torch file are functions the download buttons call on a click, not on every rerun."""
    import io
    from io import StringIO

    import numpy as np
    import pandas as pd
    import torch

    from ui.exploration import point_payload
    from ui.store import exports

    result = pa.solve(pa.tasks.get("toy-quadratic"), "wc-mhgd", [0.5, 0.5], steps=8, device="cpu", metrics_every=4)
    point = point_payload(result, 7, result.x, result.y)
    as_json, as_csv, as_torch = exports(point, result)
    assert json.loads(as_json)["step"] == 7 and callable(as_csv) and callable(as_torch)
    table = pd.read_csv(StringIO(as_csv().decode()))
    assert table["step"].tolist() == list(range(8)) and np.array_equal(table["f1"].to_numpy(), result.history["f1"])
    saved = torch.load(io.BytesIO(as_torch()), weights_only=True)
    assert torch.equal(saved["x"], result.x.double()) and torch.equal(saved["y"], result.y.double())
    assert exports({**point, "x": None, "y": None}, result)[2] is None


def test_a_chosen_point_of_a_live_run_is_read_from_its_row_and_preference_changes_exactly(tmp_path):
    """Explore builds a live run's chosen point without reading the run's every row (each rerun of the page,
    a move of the preference included, did, in seconds for a long run): the same JSON, byte for byte, as the
    point built from the whole run as `RunStore.load` gives it, preference schedule included."""
    from pareto_app.store import RunStore
    from pareto_app.worker import _blob
    from ui.exploration import live_point_payload, point_payload
    from ui.store import exports

    store = RunStore(tmp_path / "runs.db")
    result = pa.solve(pa.tasks.get("toy-quadratic"), "wc-mhgd", [0.5, 0.5], steps=40, device="cpu", metrics_every=4)
    rows = result.history.to_dict(orient="records")
    # Steered at steps 10, 25 and 30 (30 one ulp from 25: a change, exactly), and the same preference sent
    # again at 31 (a run marks the step at which each preference it is sent takes effect).
    for k, row in enumerate(rows):
        r = [0.5, 0.5] if k < 10 else [0.8, 0.2] if k < 25 else [0.3, 0.7] if k < 30 else \
            [float(np.nextafter(0.3, 1.0)), 0.7]
        row.update(r1=r[0], r2=r[1], preference_changed=k in (10, 25, 30, 31))
    run_id = store.create(RunSpec(task="toy-quadratic", preference=[0.5, 0.5], device="cpu",
                                  termination=Termination(steps=1000)).to_dict(), num_objectives=2)
    points = [(_blob(result.x), _blob(result.y)) if k == 33 else None for k in range(len(rows))]
    store.append(run_id, rows, points, status="running", progress=0.04, pid=None, message="")
    assert [row["step"] for row in store.preference_rows(run_id, 39)] == [0, 10, 25, 30, 31]
    assert [row["step"] for row in store.preference_rows(run_id, 26)] == [0, 10, 25]
    assert store.preference_rows(run_id + 1, 39) == []
    loaded = store.load(run_id)
    for step in (0, 9, 10, 24, 30, 33, 39):
        x, y = store.point(run_id, step) or (None, None)
        live, whole = live_point_payload(store, run_id, step, x, y), point_payload(loaded, step, x, y)
        assert exports(live, lambda: loaded)[0] == exports(whole, loaded)[0]
    assert len(live["reproduce"]["preference_schedule"]) == 5
    with pytest.raises(KeyError, match="no iterate 40"):
        live_point_payload(store, run_id, 40, None, None)
