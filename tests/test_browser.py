"""The app in a real browser (headless chromium through Playwright) against a real Streamlit server.

What AppTest cannot show: `run_every` fragments streaming a live run, Plotly charts and clicks on
them, downloads, navigation between pages, and two browser tabs being two separate sessions.

One server per module (its own temporary run archive), one browser; each test opens fresh tabs
(a fresh session each) and stops whatever it started. Skipped where chromium or playwright is missing.
"""

from __future__ import annotations

import math
import re

import pytest

from pareto_app.store import RunStore
from tests.browser import (
    VIEWPORT,
    button,
    current_status,
    current_weights,
    launch_chromium,
    markers,
    missing,
    navigate,
    open_app,
    read_json,
    select_options,
    select_value,
    serve,
    set_number,
    status,
    stop_if_running,
    trace_lengths,
    wait_until,
    weights,
)

MISSING = missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

LONG = 100_000  # steps: a run that only ends when stopped
PREFERENCE = "Preference on f1 (the rest on f2)"
FRONT = "front (click to choose)"
CHART = "explore_objective_space"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("browser-app")
    with serve(workdir) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_tab(browser, server):
    """Opens the app in a new tab: in a fresh browser context, or next to `beside` in its context."""
    contexts, pages = [], []

    def make(beside=None):
        if beside is None:
            context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
            contexts.append(context)
        else:
            context = beside.context
        page = context.new_page()
        pages.append(page)
        return open_app(page, server.url)

    yield make
    for page in pages:  # never leave a 100000-step run burning the CPU
        stop_if_running(page)
    for context in contexts:
        context.close()


def start_run(page, steps: int) -> dict:
    """Set Steps in the sidebar, press Start, wait for this run's status line; returns it parsed."""
    set_number(page, "Steps", steps)
    button(page, "explore_start").click()
    return wait_until(lambda: (s := status(page)) and s["steps"] == steps and s["state"] in ("running", "finished") and s,
                      f"the status line of a {steps}-step run", timeout=90, page=page)


def move_slider(page, key: str, times: int) -> None:
    """Keyboard on the preference slider: PageUp/PageDown move it by 0.1, Home/End to 0/1; one rerun per press."""
    slider = page.get_by_role("slider", name=PREFERENCE)
    slider.focus()
    for _ in range(times):
        slider.press(key)


def wait_preference(page, r1: float) -> None:
    page.get_by_text(f"r = ({r1:.3f}, {1 - r1:.3f})").first.wait_for(timeout=30_000)


def test_live_charts_gain_points_while_a_run_streams(new_tab, server):
    page = new_tab()
    first = start_run(page, LONG)
    assert first["solver"] == "wc-mhgd", first
    assert RunStore(server.db).state(first["run"])["status"] in ("queued", "running"), first  # an archive id
    # The objective-space chart's trajectory, read from the Plotly figure in the DOM.
    n0 = wait_until(lambda: trace_lengths(page, CHART).get("trajectory", 0), "a trajectory on the chart", 60, page=page)
    s0 = current_status(page)["step"]
    page.wait_for_timeout(1000)

    def grown():
        n, s = trace_lengths(page, CHART).get("trajectory", 0), status(page)
        return (n, s) if s and n > n0 and s["step"] > s0 else None

    n1, s1 = wait_until(grown, "the chart and the status line to move on", 30, page=page)
    assert s1["state"] == "running" and s1["steps"] == LONG
    wait_until(lambda: trace_lengths(page, "explore_metrics").get("kkt_residual"), "the metrics chart", 30, page=page)
    page.wait_for_timeout(1000)
    n2, s2 = wait_until(grown, "more points a second later", 30, page=page)
    assert n2 >= n1 > n0 and s2["step"] >= s1["step"] > s0


def test_moving_the_preference_steers_the_running_solver_then_stop(new_tab):
    page = new_tab()
    started = start_run(page, LONG)
    # r = (0.5, 0.5): the weights settle near 1/2 each.
    w = wait_until(lambda: (w := weights(page)) and abs(w[0] - 0.5) < 0.05 and w, "weights near 0.5/0.5", 60, page=page)
    assert w[0] + w[1] == pytest.approx(1, abs=2e-3)
    move_slider(page, "PageUp", 3)  # toward f1: 0.5 -> 0.8
    wait_preference(page, 0.8)
    w = wait_until(lambda: (w := weights(page)) and w[0] > 0.6 and w, "the weights to move toward f1", 60, page=page)
    assert w[0] + w[1] == pytest.approx(1, abs=2e-3)
    now = current_status(page)
    assert now["state"] == "running" and now["run"] == started["run"], now  # steered, not restarted
    button(page, "explore_stop").click()
    stopped = wait_until(lambda: (s := status(page)) and s["state"] == "stopped" and s, "the status to say stopped", 60,
                         page=page)
    assert stopped["run"] == started["run"] and stopped["step"] < LONG
    assert button(page, "explore_start").is_enabled()


def test_clicking_a_front_point_chooses_it_and_its_json_downloads(new_tab):
    page = new_tab()
    start_run(page, 200)
    wait_until(lambda: (s := status(page)) and s["state"] == "finished", "the 200-step run to finish", 120, page=page)
    # The page redraws once more when the run has ended (Start comes back); after that the chart holds still.
    wait_until(lambda: button(page, "explore_start").is_enabled(), "Start to be enabled again", 30, page=page)
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)
    wait_until(lambda: page.locator(f".st-key-{CHART} .js-plotly-plot").first.scroll_into_view_if_needed(timeout=5_000)
               or True, "the chart to scroll into view", 30, page=page)
    page.wait_for_timeout(500)
    points = wait_until(lambda: markers(page, CHART, FRONT), "the front's markers on the chart", 30, page=page)
    chosen = select_value(page, "explore_choice")
    # Aim at a front point that is not already chosen and stands clear of every other marker.
    candidates = [p for p in points if not chosen.startswith(f"run #{p['custom'][0]} · step {p['custom'][1]} ·")]
    target = max(candidates, key=lambda p: p["gap"])
    assert target["gap"] > 8, f"no front point stands clear of the others: {points}"
    run, step = (int(v) for v in target["custom"])
    page.mouse.click(target["x"], target["y"])
    shown = wait_until(lambda: (v := select_value(page, "explore_choice")).startswith(f"run #{run} · step {step} ·") and v,
                       f"the Front point selectbox to show run #{run} · step {step} (clicked at {target})", 20, page=page)
    assert f"F = ({target['fx']:.4g}, {target['fy']:.4g})" in shown
    # The selectbox changes first; the point's details and downloads below it come later in the same script run.
    page.get_by_text(f"f1: {target['fx']:.6g}", exact=True).first.wait_for(timeout=30_000)
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=30_000)

    with page.expect_download(timeout=20_000) as download:
        button(page, "explore_dl_json").click()
    assert download.value.suggested_filename == f"point-run{run}-step{step}.json"
    data = read_json(download.value.path())
    for key in ("objectives", "preference", "weights", "x", "y", "metrics", "reproduce"):
        assert key in data, f"{key} missing from {sorted(data)}"
    assert data["step"] == step
    assert data["objectives"] == pytest.approx([target["fx"], target["fy"]], rel=1e-9)
    assert data["preference"] == pytest.approx([0.5, 0.5])
    assert len(data["x"]) > 0 and len(data["y"]) > 0 and all(math.isfinite(v) for v in data["x"] + data["y"])
    reproduce = data["reproduce"]
    assert reproduce["solver"] == "wc-mhgd" and reproduce["task"] == "toy-quadratic", reproduce
    assert reproduce["seed"] == 0 and reproduce["steps"] == step + 1


def test_sweep_page_traces_a_front_with_its_hypervolume(new_tab):
    page = new_tab()
    navigate(page, "Sweep")
    set_number(page, "Steps", 100)
    set_number(page, "How many", 3)
    page.get_by_text("3 preferences · wc-mhgd · 100 steps each").first.wait_for(timeout=20_000)
    button(page, "sweep_start").click()
    metric = page.locator("[data-testid='stMetric']", has_text="Hypervolume of the front")
    metric.wait_for(timeout=120_000)
    value = float(metric.locator("[data-testid='stMetricValue']").inner_text())
    assert math.isfinite(value) and value > 0
    lengths = wait_until(lambda: trace_lengths(page, "sweep_front").get("runs (click to choose)"), "the sweep's chart", 30,
                         page=page)
    assert lengths == 3
    assert select_value(page, "sweep_choice").startswith("r = (")


def test_runs_page_lists_this_servers_archive(new_tab, server):
    def archived() -> set[str]:
        return {f"#{r.id} · {r.solver} · {r.task} · {r.status}" for r in RunStore(server.db).list().itertuples()}

    page = new_tab()
    known = set(RunStore(server.db).list()["id"])
    start_run(page, 30)
    wait_until(lambda: (s := status(page)) and s["state"] == "finished", "the 30-step run to finish", 90, page=page)
    # The page archives a run once it has ended: wait for this one to land before leaving.
    mine = wait_until(lambda: [r for r in RunStore(server.db).list().itertuples() if r.id not in known and r.steps == 30],
                      "this run in the archive", 20, page=page)
    assert len(mine) == 1 and mine[0].status == "finished", mine
    before = archived()
    navigate(page, "Runs")
    page.get_by_text(f"archive: {server.db}").first.wait_for(timeout=20_000)
    assert select_value(page, "runs_choice") == f"#{mine[0].id} · wc-mhgd · toy-quadratic · finished"
    # What the page lists is the archive (a run stopped in an earlier test may still be landing in it).
    options = set(select_options(page, "runs_choice"))
    assert before <= options <= archived(), (options, before)
    assert re.search(r"objectives: \S+, \S+", page.locator("[data-testid='stMain']").inner_text())


def test_two_tabs_run_and_steer_separately(new_tab):
    a = new_tab()
    b = new_tab(beside=a)  # a second tab of the same browser context (same cookies): its own session all the same
    move_slider(a, "PageUp", 3)
    wait_preference(a, 0.8)
    run_a, run_b = start_run(a, LONG), start_run(b, LONG)
    assert run_a["run"] != run_b["run"]  # two runs of the archive, one per session
    wait_preference(b, 0.5)
    wait_until(lambda: (w := weights(a)) and w[0] > 0.6, "tab A's weights toward f1", 60, page=a)
    wait_until(lambda: (w := weights(b)) and abs(w[0] - 0.5) < 0.05, "tab B's weights near 1/2", 60, page=b)

    move_slider(a, "Home", 1)  # A all the way to f2: 0.8 -> 0 (one key, one rerun)
    wait_preference(a, 0.0)
    wait_until(lambda: (w := weights(a)) and w[0] < 0.4, "tab A's weights toward f2", 60, page=a)
    w_b = current_weights(b)
    assert abs(w_b[0] - 0.5) < 0.05, f"tab B's weights moved with tab A's slider: {w_b}"
    wait_preference(b, 0.5)
    assert current_status(b)["run"] == run_b["run"] and current_status(a)["run"] == run_a["run"]

    button(a, "explore_stop").click()
    wait_until(lambda: (s := status(a)) and s["state"] == "stopped", "tab A to stop", 60, page=a)
    b0 = current_status(b)
    assert b0["state"] == "running", b0
    b1 = wait_until(lambda: (s := status(b)) and s["step"] > b0["step"] and s, "tab B to keep stepping", 30, page=b)
    assert b1["state"] == "running" and b1["run"] == run_b["run"]
    assert current_status(a)["state"] == "stopped"
