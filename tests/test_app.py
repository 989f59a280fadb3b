"""AppTest tests of each page's logic: widgets, starting runs, stepping them, export payloads."""

import json

import pytest
from streamlit.testing.v1 import AppTest

import pareto_app as pa


@pytest.fixture(autouse=True)
def isolated_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_APP_DB", str(tmp_path / "runs.db"))


def _app(page: str = "explore") -> AppTest:
    # Each page draws the shared sidebar itself, so it runs on its own under AppTest.
    at = AppTest.from_file(f"../pages/{page}.py", default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_entry_point_navigates_to_explore():
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explore"


def _wait(job, timeout=60):
    job.join(timeout)
    assert not job.alive


def test_explore_renders_with_defaults():
    at = _app()
    assert at.selectbox(key="setup_task").value == "toy-quadratic"
    assert at.selectbox(key="setup_solver_toy-quadratic").value == "wc-mhgd"
    assert not at.button(key="explore_start").disabled


def test_explore_start_streams_archives_and_exports_a_front_point():
    at = _app()
    at.number_input(key="setup_steps").set_value(40)
    at.button(key="explore_start").click()
    at.run()
    assert not at.exception, at.exception
    _wait(at.session_state["explore_worker"])
    at.run()  # run_every never fires under AppTest: rerun to drain the queue
    at.run()
    assert not at.exception, at.exception
    record = at.session_state["explore_record"]
    assert len(record.rows) == 40 and record.status == "finished"
    assert record.store_id is not None
    assert pa.store.RunStore().count() == 1
    # The chosen front point's JSON export has what reproduces it.
    choice = at.selectbox(key="explore_choice")
    assert choice.value is not None
    data = json.loads(at.session_state["explore_last_export"])
    assert data["reproduce"]["solver"] == "wc-mhgd" and data["reproduce"]["task"] == "toy-quadratic"
    assert len(data["x"]) == 4 and len(data["objectives"]) == 2


def test_explore_preference_change_reaches_the_running_solver():
    at = _app()
    at.number_input(key="setup_steps").set_value(100_000)
    at.button(key="explore_start").click()
    at.run()
    worker = at.session_state["explore_worker"]
    try:
        at.slider(key="explore_pref2_r2").set_value(0.9)
        at.run()
        version, r = worker.controller.take_preference(0)
        assert r is not None and r.tolist() == pytest.approx([0.9, 0.1])
    finally:
        worker.controller.stop()
        worker.join(10)


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
    inputs = [at.number_input(key=f"explore_pref3_r3_{s}") for s in range(3)]
    for box, value in zip(inputs, (2.0, 1.0, 1.0)):
        box.set_value(value)
    at.run()
    assert not at.exception, at.exception
    assert any("r = (0.500, 0.250, 0.250)" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 1  # the clickable ternary plot


def test_a_data_task_shows_held_out_metrics_of_the_chosen_point():
    at = _app()
    at.selectbox(key="setup_task").set_value("hyper-cleaning")
    at.run()
    at.number_input(key="setup_task_hyper-cleaning_S").set_value(2)
    at.number_input(key="setup_steps").set_value(3)
    at.run()
    at.button(key="explore_start").click()
    at.run()
    _wait(at.session_state["explore_worker"])
    at.run()
    at.run()
    assert not at.exception, at.exception
    assert any("Held-out metrics" in m.value and "acc_1" in m.value for m in at.markdown)
    data = json.loads(at.session_state["explore_last_export"])
    assert 0.0 <= data["held_out"]["acc_1"] <= 1.0
