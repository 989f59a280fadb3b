"""AppTest smoke tests of the page: it renders, starts a run, and shows it."""

from streamlit.testing.v1 import AppTest


def _app() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_renders_with_defaults():
    at = _app()
    assert at.selectbox(key="explore_task").value == "toy-quadratic"
    assert at.selectbox(key="explore_solver").value == "wc-mhgd"
    assert any("Start" in b.label for b in at.button)


def test_start_runs_the_solver_and_rows_stream_in():
    at = _app()
    at.number_input(key="explore_steps").set_value(40)
    at.button(key="explore_start").click()
    at.run()
    assert not at.exception, at.exception
    run = at.session_state["explore_run"]
    run.join(30)
    at.run()  # run_every never fires under AppTest: rerun to drain the queue
    assert not at.exception, at.exception
    rows = at.session_state["explore_rows"]
    assert len(rows) == 40 and rows[-1]["step"] == 39
    assert run.status == "finished"


def test_all_zero_preference_shows_an_inline_error():
    at = _app()
    at.slider(key="explore_r0").set_value(0.0)
    at.slider(key="explore_r1").set_value(0.0)
    at.run()
    assert not at.exception
    assert any("all zeros" in e.value for e in at.error)
    assert at.button(key="explore_start").disabled
