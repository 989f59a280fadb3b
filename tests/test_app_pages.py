"""AppTest tests of the Sweep, Compare and Runs pages."""

import pytest
from streamlit.testing.v1 import AppTest

import pareto_app as pa


@pytest.fixture(autouse=True)
def isolated_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_APP_DB", str(tmp_path / "runs.db"))


def _app(page: str) -> AppTest:
    at = AppTest.from_file(f"../pages/{page}.py", default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _wait(job, timeout=60):
    job.join(timeout)
    assert not job.alive


def test_sweep_page_traces_a_front_with_hypervolume():
    at = _app("sweep")
    at.number_input(key="setup_steps").set_value(60)
    at.number_input(key="sweep_count").set_value(3)
    at.run()
    at.button(key="sweep_start").click()
    at.run()
    _wait(at.session_state["sweep_job"])
    at.run()
    assert not at.exception, at.exception
    assert any("Hypervolume" in m.label for m in at.metric)
    assert pa.store.RunStore().count() == 3


def test_compare_page_overlays_solvers_at_equal_budget():
    at = _app("compare")
    at.multiselect(key="compare_solvers").set_value(["wc-mhgd", "mgda"])
    at.number_input(key="compare_budget_oracle").set_value(3000.0)
    at.run()
    at.button(key="compare_start").click()
    at.run()
    _wait(at.session_state["compare_job"])
    at.run()
    assert not at.exception, at.exception
    histories = at.session_state["compare_job"].result
    assert set(histories) == {"wc-mhgd", "mgda"}
    for frame in histories.values():
        assert frame["oracle_total"].iloc[-1] >= 3000
        assert frame["oracle_total"].iloc[-2] < 3000


def test_runs_page_lists_reloads_and_deletes():
    problem = pa.tasks.get("toy-quadratic")
    store = pa.store.RunStore()
    store.save(pa.solve(problem, "wc-mhgd", [0.5, 0.5], steps=10, device="cpu"), label="a")
    at = _app("runs")
    assert len(at.dataframe) >= 1
    at.button(key="runs_delete").click()
    at.run()
    assert not at.exception
    assert store.count() == 0
