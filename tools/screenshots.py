"""Screenshots of every page for the docs: `make screenshots` writes docs/explore.png, docs/sweep.png,
docs/compare.png and docs/runs.png.

Starts its own Streamlit server (a temporary run archive, a free port), drives Debian's chromium
through Playwright (headless, 1400 px wide, each shot the full height of its page) and stops
everything it started. Every wait is bounded. Needs /usr/bin/chromium and the playwright package.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import (  # noqa: E402 - the repository root goes on sys.path first
    VIEWPORT,
    button,
    current_status,
    full_page_screenshot,
    launch_chromium,
    missing,
    navigate,
    open_app,
    set_number,
    status,
    stop_if_running,
    streamlit_server,
    trace_lengths,
    wait_until,
    weights,
)


def _settle(page) -> None:
    """No hover labels, the script idle, fonts and charts drawn."""
    page.mouse.move(2, 2)
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=60_000)
    page.wait_for_timeout(1000)


def explore(page, out: Path) -> None:
    """A long run in progress, its preference moved once on the way (the charts mark where)."""
    set_number(page, "Steps", 100_000)
    button(page, "explore_start").click()
    wait_until(lambda: (s := status(page)) and s["state"] == "running", "the run to start", 90, page=page)
    wait_until(lambda: trace_lengths(page, "explore_objective_space").get("trajectory", 0) >= 60,
               "some trajectory on the chart", 60, page=page)
    slider = page.get_by_role("slider", name="Preference on f1 (the rest on f2)")
    slider.focus()
    for _ in range(3):
        slider.press("PageUp")
    page.get_by_text("r = (0.800, 0.200)").first.wait_for(timeout=30_000)
    started = time.monotonic()
    wait_until(lambda: (w := weights(page)) and w[0] > 0.6, "the weights to follow the preference", 60, page=page)
    page.wait_for_timeout(max(0.0, 3.0 - (time.monotonic() - started)) * 1000)
    page.mouse.move(2, 2)
    assert current_status(page)["state"] == "running"
    full_page_screenshot(page, out / "explore.png", charts=("explore_objective_space", "explore_metrics", "explore_weights"))
    stop_if_running(page)


def sweep(page, out: Path) -> None:
    navigate(page, "Sweep")
    set_number(page, "Steps", 150)
    set_number(page, "How many", 7)
    page.get_by_text("7 preferences · wc-mhgd · 150 steps each").first.wait_for(timeout=30_000)
    button(page, "sweep_start").click()
    page.locator("[data-testid='stMetric']", has_text="Hypervolume of the front").wait_for(timeout=180_000)
    wait_until(lambda: trace_lengths(page, "sweep_front").get("runs (click to choose)") == 7, "the sweep's chart", 60,
               page=page)
    _settle(page)
    full_page_screenshot(page, out / "sweep.png", charts=("sweep_front",))


def compare(page, out: Path) -> None:
    navigate(page, "Compare")
    set_number(page, "Oracle calls", 3000.0)
    button(page, "compare_start").click()
    wait_until(lambda: trace_lengths(page, "compare_stat"), "the comparison's charts", 240, interval=0.5, page=page)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=60_000)
    _settle(page)
    full_page_screenshot(page, out / "compare.png", charts=("compare_stat", "compare_kkt", "compare_f0", "compare_f1"))


def runs(page, out: Path) -> None:
    navigate(page, "Runs")
    page.locator(".st-key-runs_choice").wait_for(timeout=30_000)
    wait_until(lambda: trace_lengths(page, "runs_weights"), "the run's charts", 30, page=page)
    _settle(page)
    full_page_screenshot(page, out / "runs.png", charts=("runs_metrics", "runs_weights"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)")
    args = parser.parse_args(argv)
    reason = missing()
    if reason:
        print(f"screenshots: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pareto-app-screenshots-") as tmp, \
            streamlit_server(Path(tmp)) as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = open_app(context.new_page(), url)
            try:
                for shoot in (explore, sweep, compare, runs):
                    shoot(page, out)
                    print(f"wrote {out / (shoot.__name__ + '.png')}")
            finally:
                stop_if_running(page)
                context.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
