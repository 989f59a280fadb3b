"""Helpers shared by the real-browser tests (tests/test_browser.py) and tools/screenshots.py.

A Streamlit server of this repository on a free port with its own run archive, Debian's
chromium driven by Playwright (never `playwright install`: the machine has no network), and
bounded waits: every wait here ends with a timeout, none loops forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pareto_app.store import process_alive

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("PARETO_APP_CHROMIUM", "/usr/bin/chromium")
# Headless, no sandbox (containers, root), and nothing that reaches for the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1000}
INSTALL_HINT = ("install Debian's chromium (`sudo apt-get install -y chromium`, as .ci/run does) and the playwright "
                "Python package (`make install`, it is in requirements.txt); do not run `playwright install`")

T = TypeVar("T")


def missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM}: {INSTALL_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"the playwright Python package is missing: {INSTALL_HINT}"
    return None


# --- the server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    """End the server and everything it started (it leads its own process group)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@dataclass
class Server:
    """A Streamlit server of this repository: where it answers, its process, its archive and log."""

    url: str
    proc: subprocess.Popen
    workdir: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def db(self) -> Path:
        return self.workdir / "runs.db"

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def threads(self) -> int:
        """How many threads the server process has now (Linux)."""
        return len(os.listdir(f"/proc/{self.pid}/task"))


def pid_alive(pid: int | None) -> bool:
    """Whether process `pid` is running (a zombie, ended but not yet collected, is not)."""
    return pid is not None and process_alive(pid)


def stop_workers(db: Path, timeout: float = 15.0) -> None:
    """Ask every live run of the archive at `db` to stop, wait for their workers, kill what is left.

    Worker processes lead their own sessions and outlive the server: a test must not leave one burning."""
    if not db.exists():
        return
    from pareto_app.store import LIVE_STATES, RunStore

    store = RunStore(db)
    runs = store.list()
    pids: list[int] = []
    for run_id in runs.loc[runs["status"].isin(LIVE_STATES), "id"]:
        with contextlib.suppress(KeyError, ValueError):
            state = store.state(int(run_id))
            store.command(int(run_id), "stop")
            if state["pid"] is not None:
                pids.append(int(state["pid"]))
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def serve(workdir: Path, timeout: float = 90.0, attempts: int = 3) -> Iterator[Server]:
    """Serve app.py with the archive at `workdir`/runs.db; yields the Server, ends it (and the runs'
    workers) after.

    A free port can be taken by someone else between choosing and binding it: then try another."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PARETO_APP_DB": str(workdir / "runs.db"), "PYTHONUNBUFFERED": "1"}
    log_path = workdir / "server.log"
    for attempt in range(attempts):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
                 "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline and not _healthy(url):
                time.sleep(0.25)
            if proc.poll() is None and _healthy(url):
                break
            _stop(proc)
            tail = log_path.read_text(errors="replace")[-3000:]
            if attempt == attempts - 1 or "already in use" not in tail:
                raise RuntimeError(f"the Streamlit server did not become healthy in {timeout:.0f} s; its log:\n{tail}")
        except BaseException:
            _stop(proc)
            raise
    try:
        yield Server(url, proc, workdir)
    finally:
        try:
            stop_workers(workdir / "runs.db")
        finally:
            _stop(proc)


@contextlib.contextmanager
def streamlit_server(workdir: Path, timeout: float = 90.0, attempts: int = 3) -> Iterator[str]:
    """`serve`, yielding only the base URL."""
    with serve(workdir, timeout, attempts) as server:
        yield server.url


# --- the browser --------------------------------------------------------------------------------------------


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000)


def wait_ready(page: Page, timeout_ms: float = 60_000) -> None:
    """Connected to the server, the script run done, a page title drawn."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout_ms)
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=timeout_ms)
    page.locator("h1").first.wait_for(timeout=timeout_ms)


def open_app(page: Page, url: str, timeout_ms: float = 60_000) -> Page:
    # Generous: a page drawing a long live run answers slowly, the more so on a busy 2-core machine.
    page.set_default_timeout(45_000)
    page.goto(url, timeout=timeout_ms)
    wait_ready(page, timeout_ms)
    return page


def navigate(page: Page, title: str, timeout_ms: float = 30_000) -> None:
    """Go to another page through the sidebar navigation (same browser session)."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=timeout_ms)
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=timeout_ms)


def wait_until(probe: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.25,
               page: Page | None = None) -> T:
    """Poll `probe` until it returns something truthy (returned); AssertionError after `timeout` seconds.

    An exception in the probe counts as "not yet" (elements come and go while Streamlit redraws)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except Exception as err:  # noqa: BLE001 - a redraw can detach what the probe looked at
            last = err
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def set_number(page: Page, label: str, value: float) -> None:
    """Type into a number input (found by its label) and press Enter, as a user does."""
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_until(lambda: float(field.input_value()) == float(value), f"{label} = {value}", timeout=10, page=page)


def button(page: Page, key: str):
    """The button of a widget with `key=` (Streamlit puts `st-key-<key>` on its container; the first
    button in it, since a `help=` adds a second one for its tooltip)."""
    return page.locator(f".st-key-{key} button").first


def select_value(page: Page, key: str) -> str:
    """The text a selectbox shows."""
    return page.locator(f".st-key-{key} input").input_value()


def select_options(page: Page, key: str) -> list[str]:
    """Open a selectbox, read its options, close it again."""
    page.locator(f".st-key-{key} input").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


# "run #7: wc-mhgd · running · step 42 / 100000 · 123 it/s · oracle calls: ..." (the state may also be
# "pausing…", "stopping…", "resuming…"; a run with no iterate yet shows no step).
STATUS = re.compile(r"^run #(?P<run>\d+): (?P<solver>\S+) · (?P<state>[^·]+?) · "
                    r"(?:step (?P<step>\d+)(?: / (?P<steps>\d+))?|starting)")
WEIGHTS = re.compile(r"^weights: (?P<pairs>.+)$")


def _parse_status(texts: list[str], starting: bool = False) -> dict[str, Any] | None:
    for text in texts:
        m = STATUS.match(text.strip())
        if m and (m["step"] is not None or starting):
            return {"run": int(m["run"]), "solver": m["solver"], "state": m["state"],
                    "step": int(m["step"]) if m["step"] else None,
                    "steps": int(m["steps"]) if m["steps"] else None, "text": text.strip()}
    return None


def _parse_weights(texts: list[str]) -> tuple[float, ...] | None:
    for text in texts:
        m = WEIGHTS.match(text.strip())
        if m:
            try:
                return tuple(float(pair.rsplit(" ", 1)[1]) for pair in m["pairs"].split(", "))
            except (IndexError, ValueError):
                continue
    return None


# The Explore page's status line and weights are drawn by a component (ui/live_status.py) in a frame of the
# page's origin: statusOf() reads them, {line, caption} (null where there is none).
_STATUS_OF = """const statusOf = () => {
    const box = document.querySelector('.st-key-explore_status');
    const frame = box && box.querySelector('iframe');
    const doc = frame && frame.contentDocument;
    const line = doc && doc.getElementById('line'), caption = doc && doc.getElementById('caption');
    return {line: line ? line.textContent : null, caption: caption ? caption.textContent : null};
};
"""


def _status_texts(page: Page) -> dict[str, str | None]:
    return page.evaluate("() => { " + _STATUS_OF + " return statusOf(); }")


def status(page: Page, starting: bool = False) -> dict[str, Any] | None:
    """The Explore page's status line, "run #7: wc-mhgd · running · step 42 / 100000 · ...", parsed.

    A run that has no iterate yet ("... · starting: building the task ...") counts only with `starting`
    (its step is then None)."""
    line = _status_texts(page)["line"]
    return _parse_status([line] if line else [], starting)


def current_status(page: Page, timeout: float = 15.0) -> dict[str, Any]:
    """The status line, waiting out a redraw that hides it for a moment."""
    return wait_until(lambda: status(page), "the status line", timeout, page=page)


def weights(page: Page) -> tuple[float, ...] | None:
    """The Explore page's caption "weights: f1 a, f2 b[, f3 c]" as (a, b[, c])."""
    caption = _status_texts(page)["caption"]
    return _parse_weights([caption] if caption else [])


def current_weights(page: Page, timeout: float = 15.0) -> tuple[float, ...]:
    return wait_until(lambda: weights(page), "the weights caption", timeout, page=page)


def snapshot(page: Page) -> dict[str, Any]:
    """The Explore page's status line, weights and preference caption ("r = (...)"), read in one call (a
    page drawing a live run can take seconds to answer each); a key is None where it is not shown."""
    texts = page.evaluate("""() => {
        """ + _STATUS_OF + """
        const live = id => Array.from(document.querySelectorAll(
            `[data-testid='stElementContainer']:not([data-stale='true']) [data-testid='${id}']`), e => e.innerText);
        const shown = statusOf();
        return {markdown: [shown.line, ...live('stMarkdownContainer')].filter(t => t),
                captions: [shown.caption, ...live('stCaptionContainer')].filter(t => t)};
    }""")
    preference = next((tuple(float(v) for v in m[1].split(", ")) for m in
                       (re.match(r"^r = \(([^)]*)\)", t.strip()) for t in texts["captions"]) if m), None)
    return {"status": _parse_status(texts["markdown"]), "weights": _parse_weights(texts["captions"]),
            "preference": preference}


# A chart of the app is either Streamlit's own (st.plotly_chart: the plot is in the page) or the live chart
# (ui/live_chart.py: the plot is in the component's frame, same origin). plotOf(key) finds the plot of the
# element with `key=`, and where its frame's (0, 0) is in the page's viewport.
_PLOT_OF = """const plotOf = key => {
    const box = document.querySelector(`.st-key-${key}`);
    if (!box) return null;
    const direct = box.querySelector('.js-plotly-plot');
    if (direct) return {gd: direct, left: 0, top: 0};
    const frame = box.querySelector('iframe');
    const gd = frame && frame.contentDocument && frame.contentDocument.querySelector('.js-plotly-plot');
    if (!gd) return null;
    const r = frame.getBoundingClientRect();
    return {gd: gd, left: r.left + frame.clientLeft, top: r.top + frame.clientTop};
};
"""


def mark_plot(page: Page, key: str) -> bool:
    """Mark the plot element of the chart with `key=` (False while there is none), for `marked_plot`."""
    return page.evaluate("key => { " + _PLOT_OF + " const plot = plotOf(key); if (!plot) return false;"
                         " plot.gd.__marked = true; return true; }", key)


def marked_plot(page: Page, key: str) -> bool:
    """Whether the chart with `key=` still draws in the element `mark_plot` marked: updated in place, not
    replaced by a new plot."""
    return page.evaluate("key => { " + _PLOT_OF + " const plot = plotOf(key); return !!(plot && plot.gd.__marked); }",
                         key)


def trace_lengths(page: Page, key: str) -> dict[str, int]:
    """{trace name: number of points} of the Plotly chart with `key=`, read from the live figure."""
    return page.evaluate(
        """key => {
            """ + _PLOT_OF + """
            const out = {};
            const plot = plotOf(key);
            for (const t of (plot && plot.gd._fullData) || []) {
                const n = t.x ? t.x.length : 0;
                out[t.name] = Math.max(out[t.name] || 0, n);
            }
            return out;
        }""", key)


def live_tail(page: Page, key: str) -> dict[str, Any] | None:
    """What the chart with `key=` draws of a live trajectory beyond its figure (ui/trajectory_feed.py):
    {drawn: times painted, points, x, y of where the run is now, step}, or None (no tail since the figure)."""
    return page.evaluate("key => { " + _PLOT_OF + " const plot = plotOf(key); return plot && plot.gd.liveTail || null; }",
                         key)


# Screen positions (viewport pixels) of a 2-D scatter trace's markers, with how far each is from the
# nearest marker at another position in any trace, so a click can aim at one that stands alone.
_MARKERS_JS = """([key, name]) => {
    """ + _PLOT_OF + """
    const plot = plotOf(key), gd = plot && plot.gd;
    if (!gd || !gd._fullLayout || !gd._fullData) return null;
    const fl = gd._fullLayout, box = gd.getBoundingClientRect(), left = plot.left + box.left, top = plot.top + box.top;
    const px = (t, k) => [left + fl._size.l + fl.xaxis.l2p(t.x[k]), top + fl._size.t + fl.yaxis.l2p(t.y[k])];
    const all = [];
    for (const t of gd._fullData) {
        if (!t.visible || !String(t.mode || '').includes('markers') || !t.x) continue;
        for (let k = 0; k < t.x.length; k++) all.push(px(t, k));
    }
    const trace = gd._fullData.find(t => t.name === name);
    if (!trace || !trace.x) return null;
    return Array.from(trace.x, (x, k) => {
        const [X, Y] = px(trace, k);
        let gap = Infinity;
        for (const [u, v] of all) {
            const d = Math.hypot(u - X, v - Y);
            if (d > 0.5) gap = Math.min(gap, d);
        }
        return {x: X, y: Y, fx: trace.x[k], fy: trace.y[k], gap: gap,
                custom: trace.customdata ? String(trace.customdata[k]).split(':').map(Number) : null};
    });
}"""


def markers(page: Page, key: str, trace: str) -> list[dict[str, Any]] | None:
    return page.evaluate(_MARKERS_JS, [key, trace])


def ternary_markers(page: Page, key: str, trace: int = 0) -> list[dict[str, Any]] | None:
    """Screen positions (viewport pixels) of the markers of trace `trace` of the ternary chart with `key=`,
    with their (a, b, c) and point index; None while the chart is not drawn."""
    return page.evaluate(
        """([key, trace]) => {
            """ + _PLOT_OF + """
            const plot = plotOf(key), gd = plot && plot.gd;
            if (!gd || !gd._fullData || !gd._fullData[trace]) return null;
            const layer = gd.querySelectorAll('.scatterlayer .trace')[trace];
            if (!layer) return null;
            const t = gd._fullData[trace];
            return Array.from(layer.querySelectorAll('path.point'), (node, i) => {
                const r = node.getBoundingClientRect();
                return {i, x: plot.left + r.left + r.width / 2, y: plot.top + r.top + r.height / 2,
                        a: t.a[i], b: t.b[i], c: t.c[i]};
            });
        }""", [key, trace])


def _chart_boxes(page: Page, keys: tuple[str, ...]) -> list[dict[str, float]] | None:
    """Where each chart with these keys is (page pixels), or None while one is missing or mid-redraw."""
    return page.evaluate(
        """keys => {
            """ + _PLOT_OF + """
            if (document.querySelector("[data-stale='true']")) return null;
            const boxes = [];
            for (const key of keys) {
                const plot = plotOf(key), gd = plot && plot.gd;
                if (!gd || !gd._fullData || !gd._fullData.length || !gd.querySelector('.main-svg')) return null;
                const r = gd.getBoundingClientRect();
                if (r.width < 50 || r.height < 50) return null;
                boxes.push({key, x: plot.left + r.left + window.scrollX, y: plot.top + r.top + window.scrollY,
                            w: r.width, h: r.height});
            }
            return boxes;
        }""", list(keys))


def _inked(png: bytes, boxes: list[dict[str, float]], minimum: float = 0.004) -> bool:
    """Whether each box of the image has something drawn in it (a chart caught mid-redraw is blank)."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    for b in boxes:
        crop = image.crop((int(b["x"]), int(b["y"]), int(b["x"] + b["w"]), int(b["y"] + b["h"])))
        histogram = crop.histogram()
        if sum(histogram[:200]) < minimum * crop.width * crop.height:
            return False
    return True


def full_page_screenshot(page: Page, path: Path, charts: tuple[str, ...] = (), settle_ms: int = 1500,
                         attempts: int = 30) -> None:
    """Streamlit scrolls inside its main block, so Playwright's full_page sees one screen: grow the
    viewport to the content's height for the shot, then restore it. A page that keeps redrawing (a
    live run) can be caught with a chart blank or dimmed: retry until every chart in `charts` shows ink
    and nothing was mid-redraw just before and just after the shot."""
    height = page.evaluate("""() => {
        const main = document.querySelector("[data-testid='stMain']") || document.body;
        const side = document.querySelector("[data-testid='stSidebarContent']");
        return Math.max(main.scrollHeight, side ? side.scrollHeight : 0, document.body.scrollHeight);
    }""")
    size = page.viewport_size or VIEWPORT
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 8000))})
    page.wait_for_timeout(settle_ms)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for _ in range(attempts):
            boxes = wait_until(lambda: _chart_boxes(page, charts), "the charts to be drawn", 30, interval=0.05,
                               page=page) if charts else []
            shot = page.screenshot(full_page=True, animations="disabled")
            # Still nothing stale after the shot (a redraw that began during it dims the old charts).
            if _inked(shot, boxes) and (not charts or _chart_boxes(page, charts) is not None):
                path.write_bytes(shot)
                return
            page.wait_for_timeout(150)
        raise AssertionError(f"{path.name}: a chart was blank in each of {attempts} shots")
    finally:
        page.set_viewport_size(size)


# --- timing what the page shows ----------------------------------------------------------------------------
# A page that draws a live run can take seconds to answer each Playwright call on a busy machine, so
# what is timed is recorded inside the page: every 50 ms a watcher reads the status line and the
# objective-space chart and logs each change with the page's clock (Date.now(), the same clock as
# Python's time.time()).

_MONITOR_JS = """chart => {
    """ + _PLOT_OF + _STATUS_OF + """
    if (window.__pareto) return true;
    const re = /^run #(\\d+): (\\S+) · ([^·]+?) · (?:step (\\d+)(?: \\/ (\\d+))?|starting)/;
    const m = window.__pareto = {log: [], redraws: [], last: '', sig: ''};
    const tick = () => {
        const now = Date.now();
        const line = statusOf().line;
        const g = line && re.exec(line.trim());
        if (g) {
            const key = `${g[1]}|${g[3]}|${g[4]}`;
            if (key !== m.last) {
                m.last = key;
                m.log.push({t: now, run: +g[1], state: g[3], step: g[4] === undefined ? null : +g[4]});
                if (m.log.length > 5000) m.log.splice(0, 1000);
            }
        }
        const plot = plotOf(chart), gd = plot && plot.gd;
        const t = gd && gd._fullData && gd._fullData.find(d => d.name === 'trajectory');
        if (t && t.x && t.x.length) {
            // The figure's trajectory, and the points painted beyond it between figures (ui/trajectory_feed.py).
            const tail = gd.liveTail;
            const sig = `${t.x.length}|${t.x[t.x.length - 1]}|${t.y[t.y.length - 1]}` + (tail ? `|${tail.x}|${tail.y}` : '');
            if (sig !== m.sig) {
                m.sig = sig;
                m.redraws.push(now);
                if (m.redraws.length > 5000) m.redraws.splice(0, 1000);
            }
        }
    };
    tick();
    setInterval(tick, 50);
    return true;
}"""


# A frame reads its visibility from the page's top window, where `set_hidden` sets it (run in each frame, and as
# an init script for frames made later, where it reaches them).
_VISIBILITY_FROM_TOP = """(() => {
    const hidden = () => { try { return window.top.__paretoHidden === true; } catch (err) { return false; } };
    Object.defineProperty(document, "hidden", {configurable: true, get: hidden});
    Object.defineProperty(document, "visibilityState", {configurable: true,
                                                        get: () => hidden() ? "hidden" : "visible"});
})()"""
_emulating: weakref.WeakSet = weakref.WeakSet()  # the pages whose frames read _VISIBILITY_FROM_TOP


def set_hidden(page: Page, hidden: bool) -> None:
    """Make `page` and its frames read as a background tab (document.hidden, visibilityState) or as shown again,
    and tell them (visibilitychange), as a browser does when another tab comes to the front.

    Emulated: headless chromium shows every page (each of Playwright's pages is a window of its own, never behind
    another), and goes on running a hidden page's timers and drawing at full speed, as a real background tab
    would not. A frame made later reads the page's flag only where the init script reached it, which it does not
    always (a component's frame mounted by a rerun may be missed): call this again once the frames that matter
    are there (a person hides a tab after pressing Start in it)."""
    if page not in _emulating:
        page.add_init_script(_VISIBILITY_FROM_TOP)
        _emulating.add(page)
    page.evaluate("hidden => { window.__paretoHidden = hidden; }", hidden)
    for frame in page.frames:
        with contextlib.suppress(Exception):  # a frame that went away meanwhile
            frame.evaluate(_VISIBILITY_FROM_TOP + ';document.dispatchEvent(new Event("visibilitychange"))')


def record_feed_asks(page: Page) -> list[tuple[str, Any]]:
    """From now on, the asks `page` sends its live feeds: a list that fills with (part, Playwright request), in the
    order sent; `request.timing["startTime"]` (unix ms, the browser's clock) says when, once answered."""
    asks: list[tuple[str, Any]] = []

    def seen(request: Any) -> None:
        path = request.url.split("?", 1)[0]
        if "/api/live/" in path:
            asks.append((path.rsplit("/", 1)[-1], request))

    page.on("request", seen)
    return asks


def install_monitor(page: Page, chart: str = "explore_objective_space") -> None:
    """Start the in-page watcher of the status line and of `chart`'s trajectory (once per page)."""
    page.evaluate(_MONITOR_JS, chart)


def monitor(page: Page, since: float = 0.0) -> dict[str, Any]:
    """What the watcher saw: {"now": page time (s), "log": [{t (s), run, state, step}], "redraws": [t (s)]},
    entries at or after `since` (unix seconds) only."""
    data = page.evaluate("since => ({now: Date.now(), log: window.__pareto.log.filter(e => e.t >= since),"
                         " redraws: window.__pareto.redraws.filter(t => t >= since)})", since * 1000)
    return {"now": data["now"] / 1000, "log": [{**e, "t": e["t"] / 1000} for e in data["log"]],
            "redraws": [t / 1000 for t in data["redraws"]]}


def press(page: Page, key: str) -> float:
    """Click the button with `key=` from inside the page, in one call; the unix time of the click.

    One round trip to a page that may answer slowly (Playwright's click takes several), and the time
    is the page's own: what latencies are measured from."""
    at = page.evaluate("""key => {
        const b = document.querySelector(`.st-key-${key} button`);
        if (!b || b.disabled) return null;
        const t = Date.now();
        b.click();
        return t;
    }""", key)
    if at is None:
        raise AssertionError(f"no enabled button {key!r} on the page")
    return at / 1000


def press_until(page: Page, key: str, done: Callable[[], Any], what: str, timeout: float = 120.0,
                again_after: float = 30.0) -> Any:
    """Press the button `key` until `done()` (checked every 0.25 s; an exception counts as not yet) is truthy,
    pressing again when it has not come `again_after` seconds after a press; returns what `done` gave.

    For steps that set up what is measured, not for what is timed: a page busy drawing a live run can
    take many seconds to answer, or be mid-redraw when pressed."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            press(page, key)
        pressed = time.monotonic()
        while time.monotonic() - pressed < again_after:
            with contextlib.suppress(Exception):
                if result := done():
                    return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s pressing {key!r} for {what}")
            time.sleep(0.25)


def frozen_after(page: Page, since: float, state: str, hold: float = 1.0, timeout: float = 30.0) -> float:
    """Seconds from `since` (unix) to the last change of the page's step counter, once the status has
    read `state` with the counter unchanged for `hold` seconds; AssertionError after `timeout`."""
    def settled() -> float | None:
        seen = monitor(page, since - 5)
        log = seen["log"]
        if not log or log[-1]["state"] != state or seen["now"] - log[-1]["t"] < hold:
            return None
        changes = [e["t"] for e, prev in zip(log[1:], log) if e["t"] >= since and e["step"] != prev["step"]]
        return max(0.0, changes[-1] - since) if changes else 0.0
    return wait_until(lambda: (v := settled()) is not None and (v, ), f"the step counter to freeze at {state!r}",
                      timeout, interval=0.3)[0]


def reached_state(page: Page, since: float, states: tuple[str, ...], timeout: float = 30.0) -> float:
    """Seconds from `since` (unix) until the page's status first read one of `states`."""
    def seen() -> float | None:
        hits = [e["t"] for e in monitor(page, since)["log"] if e["state"] in states]
        return hits[0] - since if hits else None
    return wait_until(lambda: (v := seen()) is not None and (max(0.0, v), ), f"the status to read {states}",
                      timeout, interval=0.3)[0]


ENDED = ("finished", "stopped", "interrupted", "diverged", "failed")


def stop_if_running(page: Page, timeout: float = 15.0) -> None:
    """Press Stop on the Explore page if a run is going and wait for it to end (best effort, for teardowns)."""
    with contextlib.suppress(Exception):
        stop = button(page, "explore_stop")
        if stop.count() and stop.is_enabled():
            stop.click(timeout=5_000)
            wait_until(lambda: (s := status(page)) and s["state"] in ENDED, "the run to stop", timeout, page=page)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
