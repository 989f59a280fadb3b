"""The app against the library: `python -m pareto_app bench app [--tabs 1 4] [--steps 500] [--rounds 3] [--page-apart]
[--background]`.

Starts its own Streamlit server (a temporary run archive, a free port) and drives Debian's
chromium through Playwright (headless). For each number of tabs, every tab starts the default
Explore run (toy-quadratic, wc-mhgd, r = (0.5, 0.5), `--steps` steps, the sidebar's Metrics every)
at once, and the time from its Start click to its status line reading "finished" is compared with
the same run through the library (`pa.solve`, in a fresh process warmed up as the fork server is, nothing else
running), and with as many library runs side by side as tabs (what the pages and the server add, apart from
the cores). So is the time from the click to the run's end in the archive ("end"), whatever the page shows. The
machine's own speed drifts by tens of percent within minutes, so each of `--rounds` rounds times the app between
two library runs (one before it and one after it, once the round's runs are saved and the machine is quiet) and
compares it with their mean; the figures are the medians of the rounds' ratios. Then each tab starts a long run,
and the first tab measures Pause (until its step counter stops changing) and Stop (until its status reads
"stopped") while the others go on.

The workers' own time in the solver (the last iterate's elapsed) against the library's says how much the page
slowed the solver itself; the rest of the app's time is the page showing the first step and the end. Each round
also runs the same runs (their specs copied from the archive) through workers with no page at all, as many at once
as tabs, right after the app's: the app's runs' end against theirs ("end/no page") is what the pages cost, apart
from the worker's own writes and from the machine's drift between a library run and a worker.

`--background` measures more than one tab again with every tab but the first in the background, as tabs of one
browser window are: the pages read document.hidden (`tests.browser.set_hidden`), since headless chromium shows
every page (each a window of its own). Only the tab in front has a page time; compare the settings on "end". The
emulation understates what a real background tab saves: chromium still runs a hidden page's timers and draws it
at full speed. `--page-apart` measures everything again with the browser, the server and Playwright on the last
core and the solvers on the others, as if the browser ran on the user's own computer: what the app's design costs a
solver, without the browser's share of this machine's cores.

What is timed is what the page shows: a watcher inside each page logs every change of the status
line and of the objective-space chart's trajectory with the page's clock (a page busy drawing a
live run answers Playwright's calls late, so polling from outside would add its delays).

Goals: app time / library time ≤ 1.1; Pause → frozen counter and Stop → "stopped" ≤ 0.5 s;
chart updates ≥ 2 per second while a run streams. Every wait is bounded (a few minutes in all).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import (  # noqa: E402 - the repository root goes on sys.path first
    VIEWPORT,
    frozen_after,
    install_monitor,
    launch_chromium,
    missing,
    monitor,
    open_app,
    press,
    press_until,
    reached_state,
    serve,
    set_hidden,
    set_number,
    status,
    stop_workers,
    wait_until,
)

TASK, SOLVER, PREFERENCE = "toy-quadratic", "wc-mhgd", (0.5, 0.5)
LONG = 100_000  # steps of a run that only ends when stopped
METRICS_EVERY = 5  # the sidebar's default
LIBRARY = """
import sys, time
import pareto_app as pa
from pareto_app.worker import warm_up
steps, metrics_every = int(sys.argv[1]), int(sys.argv[2])
warm_up()  # what the fork server has done before its jobs: the library's time is the solver's alone
start = time.perf_counter()
result = pa.solve(pa.tasks.get({task!r}), {solver!r}, {preference!r}, steps=steps, metrics_every=metrics_every,
                  device="cpu")
print(time.perf_counter() - start, result.status)
"""


def say(text: str) -> None:
    print(f"[bench app] {text}", flush=True)


def library_seconds(steps: int, metrics_every: int, at_once: int = 1, cores: set[int] | None = None) -> float:
    """The run through the library, in a fresh process as a worker is (torch imported and warmed up first), `at_once`
    processes side by side (as many as tabs will run), on `cores` (default: any): their mean time."""
    code = LIBRARY.format(task=TASK, solver=SOLVER, preference=list(PREFERENCE))
    env = dict(os.environ)
    if at_once > 1:  # side by side, each its share of the cores: more torch threads would only fight
        env["OMP_NUM_THREADS"] = str(max(1, len(cores or range(os.cpu_count() or 1)) // at_once))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(steps), str(metrics_every)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env=env,
                              preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
             for _ in range(at_once)]
    times = []
    for proc in procs:
        out = proc.communicate(timeout=300 * at_once)[0].split()
        if proc.returncode != 0 or out[1] != "finished":
            raise RuntimeError(f"a library run ended {out[1:2] or proc.returncode!r}")
        times.append(float(out[0]))
    return statistics.fmean(times)


def without_a_page(store: Any, runs: list[int], timeout: float = 300.0) -> tuple[list[float], list[float], list[int]]:
    """The runs `runs` again, each with its spec as archived, through workers forked by this process's own fork
    server, all at once, with no page watching (no idle limit): per run, (seconds from its start to its end in the
    archive, the worker's own time in the solver), and the runs' ids."""
    from pareto_app import launcher
    from pareto_app.runspec import RunSpec
    from pareto_app.store import LIVE_STATES

    specs = [RunSpec.from_dict({**store.state(run)["spec"], "idle_limit": None}) for run in runs]
    watch = EndWatch(store.path)
    try:
        started = [(time.time(), launcher.start(store, spec, num_objectives=len(spec.preference),
                                                label="bench: no page")) for spec in specs]

        def ended_otherwise(run: int) -> bool:
            return (status := store.state(run)["status"]) not in LIVE_STATES and status != "finished"

        wait_until(lambda: all(run in watch.ended or ended_otherwise(run) for _, run in started),
                   "the runs with no page to end", timeout, interval=0.1)
    finally:
        watch.close()
    for _, run in started:
        if run not in watch.ended:
            state = store.state(run)
            raise AssertionError(f"a run with no page ended {state['status']}: {state['message']}")
    return ([watch.ended[run] - at for at, run in started], [solver_seconds(store, run) for _, run in started],
            [run for _, run in started])


def solver_seconds(store: Any, run: int) -> float:
    """The worker's own time in the solver: its last iterate's elapsed (NaN before any)."""
    rows = store.rows_since(run)[-1:]
    return rows[0][1]["elapsed"] if rows else math.nan


def chart_rate(redraws: list[float], start: float, end: float) -> float:
    """Updates per second of the chart between its first update after `start` and `end`."""
    times = [t for t in redraws if start <= t <= end]
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (end - times[0])


class ArchiveWatch:
    """Polls a run's control row and status every 20 ms in a thread: when a page's click reached the
    archive (the server ran it), and when the worker obeyed."""

    def __init__(self, db: Path, run_id: int, command: str, status: str) -> None:
        from pareto_app.store import RunStore

        self.store, self.run_id, self.command, self.status = RunStore(db), run_id, command, status
        self.commanded = self.obeyed = math.nan
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.is_set() and math.isnan(self.obeyed):
            with contextlib.suppress(Exception):
                now = time.time()
                if math.isnan(self.commanded) and self.store.control(self.run_id)["command"] == self.command:
                    self.commanded = now
                if self.store.state(self.run_id)["status"] == self.status:
                    self.obeyed = now
            time.sleep(0.02)

    def close(self, since: float) -> tuple[float, float]:
        """(seconds from `since` to the command in the archive, to the worker's new status)."""
        self._done.set()
        self._thread.join(5)
        return self.commanded - since, self.obeyed - since


def timed(what: str, measure: Callable[[], float]) -> float:
    """`measure()`, or NaN (said) when its bounded wait ran out."""
    try:
        return measure()
    except AssertionError as err:
        say(f"{what}: {err}")
        return math.nan


def control_latency(db: Path, page: Any, run: int, key: str, command: str, status: str,
                    shown: Callable[[float], float]) -> tuple[float, float, float]:
    """Press `key` on `page`: seconds to its command in the archive, to the worker's `status`, and `shown(click)`."""
    watch = ArchiveWatch(db, run, command, status)
    at = time.time()
    try:
        at = press(page, key)
        on_page = timed(f"{key} on the page", lambda: shown(at))
    finally:
        commanded, obeyed = watch.close(at)
    return commanded, obeyed, on_page


class EndWatch:
    """When each run that starts from now on reached "finished" in the archive (unix time; polled every 20 ms in a
    thread): a run's end whatever its page shows, or when a page in the background, which nobody reads, shows it."""

    def __init__(self, db: Path) -> None:
        self.uri, self.ended = Path(db).resolve().as_uri() + "?mode=ro", {}
        self._done = threading.Event()
        with contextlib.closing(sqlite3.connect(db)) as conn:
            self._after = conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        with contextlib.closing(sqlite3.connect(self.uri, uri=True)) as conn:
            while not self._done.is_set():
                with contextlib.suppress(sqlite3.Error):
                    now = time.time()
                    for (run,) in conn.execute("SELECT id FROM runs WHERE id > ? AND status = 'finished'",
                                               (self._after,)).fetchall():
                        self.ended.setdefault(run, now)
                time.sleep(0.02)

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)


QUIET_CORES = 0.15  # busy cores, machine-wide, below which the machine is quiet between timed runs


def busy_cores(over: float = 0.5) -> float:
    """Cores busy machine-wide (/proc/stat) over the next `over` seconds."""
    def ticks() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    (all0, idle0), t0 = ticks(), time.monotonic()
    time.sleep(over)
    (all1, idle1), wall = ticks(), time.monotonic() - t0
    return ((all1 - all0) - (idle1 - idle0)) / os.sysconf("SC_CLK_TCK") / wall


def wait_quiet(timeout: float, also: Callable[[], bool] = lambda: True) -> bool:
    """Wait until `also()` and the machine is quiet (below QUIET_CORES busy), at most `timeout` seconds; whether
    it came to that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if also() and busy_cores() < QUIET_CORES:
            return True
    return False


def settle_after(store: Any, runs: list[int], timeout: float = 20.0) -> None:
    """Wait until `runs` are saved (a worker saves a run's Result after its final status) and the machine is quiet
    (the pages' reruns on "finished", a background tab's late look): the next library run is not slowed by this
    round's tail."""
    if not wait_quiet(timeout, lambda: all(store.state(r)["saved"] for r in runs)):
        say(f"the machine was still busy {timeout:.0f} s after the round; measuring anyway")


def measure(browser: Any, url: str, db: Path, tabs: int, steps: int, rounds: int, apart: bool = False,
            background: bool = False) -> dict[str, Any]:
    from pareto_app import launcher
    from pareto_app.store import RunStore

    where = PAGE_APART if apart else BACKGROUND if background else ""

    store = RunStore(db)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        pages = [open_app(context.new_page(), url) for _ in range(tabs)]
        for page in pages:
            set_number(page, "Steps", steps)
            install_monitor(page)
        launcher.warm()  # this process's own fork server, for the runs with no page
        settle_fork_server()
        if apart:
            pin_apart()
        every = {int(float(page.get_by_label("Metrics every", exact=True).input_value())) for page in pages}
        if every != {METRICS_EVERY}:
            say(f"the sidebar's Metrics every is {every}, not {METRICS_EVERY} as in the library run")
        # The machine's own speed drifts by tens of percent within minutes (the same library run took 4.3 s
        # and 5.7 s a minute apart, nothing else running): each app run is bracketed by library runs, one
        # before and one after (the next round's), and compared with their mean.
        cores = SOLVER_CORES if apart else None

        def library_now() -> tuple[float, float]:
            alone = library_seconds(steps, METRICS_EVERY, cores=cores)
            return alone, alone if tabs == 1 else library_seconds(steps, METRICS_EVERY, at_once=tabs, cores=cores)

        brackets = [library_now()]
        library, library_at_once, ratios, ratios_at_once, ends_at_once, slowdowns = [], [], [], [], [], []
        app, ends, rates, first_step, solver_s = [], [], [], [], []
        no_page, ends_no_page = [], []
        for round_ in range(1, rounds + 1):
            timed_app = run_tabs(pages, db, steps, tabs, 1 if background else tabs)
            settle_after(store, timed_app["runs"])
            alone_ends, alone_solver, alone_runs = without_a_page(store, timed_app["runs"])
            no_page.extend(alone_ends)
            ends_no_page.append(_mean(timed_app["end"]) / _mean(alone_ends))
            settle_after(store, alone_runs)
            brackets.append(library_now())
            (before, before_at_once), (after, after_at_once) = brackets[-2], brackets[-1]
            library.append((before + after) / 2)
            library_at_once.append((before_at_once + after_at_once) / 2)
            app.extend(timed_app["app"])
            ends.extend(timed_app["end"])
            rates.extend(timed_app["rates"])
            first_step.extend(timed_app["first step"])
            solver_s.extend(timed_app["solver"])
            ratios.append(_mean(timed_app["app"]) / library[-1])
            ratios_at_once.append(_mean(timed_app["app"]) / library_at_once[-1])
            ends_at_once.append(_mean(timed_app["end"]) / library_at_once[-1])
            slowdowns.append(_mean(timed_app["solver"]) / library_at_once[-1])
            on_page, ended = (", ".join(f"{t:.2f}" for t in timed_app[k]) for k in ("app", "end"))
            say(f"{tabs} tab(s){where}, round {round_}/{rounds}: library {before:.2f} s before, {after:.2f} s after"
                + (f" ({before_at_once:.2f} s, {after_at_once:.2f} s {tabs} at once)" if tabs > 1 else "")
                + f"; 'finished' on the page after {on_page} s (the tabs in front), ratio {ratios[-1]:.2f}"
                + (f", against {tabs} at once {ratios_at_once[-1]:.2f}" if tabs > 1 else "")
                + f"; runs ended in the archive after {ended} s, against {tabs} at once {ends_at_once[-1]:.2f}"
                + f"; the workers' solver time {_mean(timed_app['solver']):.2f} s"
                + f"; with no page: ended after {_mean(alone_ends):.2f} s (solver {_mean(alone_solver):.2f} s), "
                  f"end/no page {ends_no_page[-1]:.2f}")
        ratio, ratio_at_once, slowdown = _median(ratios), _median(ratios_at_once), _median(slowdowns)
        end_at_once = _median(ends_at_once)
        say(f"{tabs} tab(s){where}, {steps} steps, {rounds} round(s): ratio {ratio:.2f} (rounds: "
            + ", ".join(f"{r:.2f}" for r in ratios) + f"), against {tabs} at once {ratio_at_once:.2f}; the runs' end "
            f"in the archive against {tabs} at once {end_at_once:.2f} (rounds: "
            + ", ".join(f"{r:.2f}" for r in ends_at_once) + "); the workers' "
            f"solver time against the library's ({tabs} at once) {slowdown:.2f}; chart updates {_mean(rates):.2f}/s; "
            f"first step shown {_mean(first_step):.2f} s after Start; the runs' end against the same runs with no "
            f"page {_median(ends_no_page):.2f} (rounds: " + ", ".join(f"{r:.2f}" for r in ends_no_page) + ")")

        # Pause and Stop, in the first tab, while every tab runs a long run.
        for page in pages:
            set_number(page, "Steps", LONG)
        to_front(pages[1:] if background else [])
        before = set(clicked_runs(store))
        started = [wait_until(lambda page=page: press(page, "explore_start"), "the Start button", 60, page=page)
                   for page in pages]
        for page, at in list(zip(pages, started))[1:] if background else ():
            to_background(page, at)
        wait_until(lambda: len(long := [r for r in clicked_runs(store) if r not in before]) == tabs
                   and all(store.state(r)["iterations"] > 20 for r in long), "each long run to be stepping", 120)
        first = pages[0]
        run = wait_until(lambda: (s := status(first)) and s["steps"] == LONG and s["run"] not in before and s["run"],
                         "the first tab's long run", 120, page=first)
        pause = control_latency(db, first, run, "explore_pause", "pause", "paused",
                                lambda at: frozen_after(first, at, "paused", hold=1.0, timeout=30))
        try:
            press_until(first, "explore_resume", lambda: store.state(run)["status"] == "running", "the run to resume",
                        timeout=60)
            wait_until(lambda: (s := status(first)) and s["state"] == "running", "the page to show it running", 60,
                       page=first)
        except AssertionError as err:
            say(f"{tabs} tab(s): no Stop measured: {err}")
            stop = (math.nan, math.nan, math.nan)
        else:
            stop = control_latency(db, first, run, "explore_stop", "stop", "stopped",
                                   lambda at: reached_state(first, at, ("stopped",), timeout=30))
        say(f"{tabs} tab(s){where}: Pause → counter frozen {pause[2]:.2f} s (in the archive "
            f"{pause[0]:.2f} s, worker paused "
            f"{pause[1]:.2f} s); Stop → 'stopped' {stop[2]:.2f} s (in the archive {stop[0]:.2f} s, worker stopped "
            f"{stop[1]:.2f} s)")
        return {"tabs": tabs, "page apart": "yes" if apart else "no",
                "background": f"{tabs - 1} of {tabs}" if background else "no", "rounds": rounds,
                "metrics every": ",".join(map(str, sorted(every))),
                "library s": _median(library), "app s": _median(app), "app/library": ratio,
                "library at once s": _median(library_at_once), "app/library at once": ratio_at_once,
                "end s": _median(ends), "end/library at once": end_at_once,
                "no page s": _median(no_page), "end/no page": _median(ends_no_page),
                "first step s": _mean(first_step), "worker solver s": _median(solver_s),
                "solver/library": slowdown, "chart updates/s": _mean(rates),
                "pause → frozen s": pause[2], "stop → stopped s": stop[2],
                "pause/stop → archive s": f"{pause[0]:.2f}/{stop[0]:.2f}",
                "→ worker s": f"{pause[1]:.2f}/{stop[1]:.2f}"}
    finally:
        context.close()
        stop_workers(db)  # whatever still runs
        if apart:
            every_core = set(range(os.cpu_count() or 1))
            pin_apart(every_core, every_core)


def run_tabs(pages: list[Any], db: Path, steps: int, tabs: int, shown: int) -> dict[str, list[float]]:
    """Start the run of `steps` in every tab at once, each as soon as its Start button is enabled (a page may
    still be redrawing after the typed step count). Per tab: seconds from Start to the run's end in the archive
    ("end"), the worker's own time in the solver, and the run's id; per tab of the first `shown` (in front, not in
    the background): seconds from Start to "finished" on the page ("app"), chart updates per second and seconds to
    the first step shown."""
    from pareto_app.store import RunStore

    to_front(pages[shown:])
    store, ends = RunStore(db), EndWatch(db)
    try:
        clicked = [wait_until(lambda page=page: press(page, "explore_start"), "the Start button", 60, interval=0.05,
                              page=page) for page in pages]
        for page, at in list(zip(pages, clicked))[shown:]:
            to_background(page, at)
        out: dict[str, list[float]] = {"app": [], "end": [], "rates": [], "first step": [], "solver": [], "runs": []}
        for k, (page, at) in enumerate(zip(pages, clicked)):
            # This round's run: the newest the tab's status line showed (a background tab's too: a rerun draws it).
            run = wait_until(lambda page=page, at=at: max((e["run"] for e in monitor(page, at)["log"]
                                                           if e["run"] is not None), default=None),
                             "the tab's run on its status line", 60, page=page)
            out["runs"].append(run)
            if k < shown:
                app = timed("a run to finish on its page",
                            lambda page=page, at=at: reached_state(page, at, ("finished",), timeout=90 + 30 * tabs))
                seen = monitor(page, at)
                out["app"].append(app)
                out["first step"].append(next((e["t"] - at for e in seen["log"] if e["step"] is not None), math.nan))
                out["rates"].append(chart_rate(seen["redraws"], at, at + app) if not math.isnan(app) else math.nan)
            out["end"].append(timed("a run to end in the archive", lambda run=run, at=at: wait_until(
                lambda: run in ends.ended and ends.ended[run] - at, "the run's end in the archive", 90 + 30 * tabs)))
            out["solver"].append(solver_seconds(store, run))
    finally:
        ends.close()
    return out


def to_front(pages: list[Any], timeout: float = 10.0) -> None:
    """Bring `pages` to the front, as a person does to press Start in each: a run that ended in the background
    redraws its page now (the Start button is enabled again), and the machine is let settle."""
    for page in pages:
        set_hidden(page, False)
    for page in pages:
        wait_until(lambda page=page: page.locator(".st-key-explore_start button").is_enabled(), "the Start button",
                   60, page=page)
    if pages:
        wait_quiet(timeout)


def to_background(page: Any, since: float) -> None:
    """Send `page` to the background once the run it started shows on its status line (its frame is there to be
    hidden), as a person switches tabs after pressing Start."""
    wait_until(lambda: any(e["run"] is not None for e in monitor(page, since)["log"]), "the run on its status line",
               60, interval=0.05, page=page)
    set_hidden(page, True)


# --page-apart: the browser, the server, Playwright and this script on the last core, the solvers (the fork server,
# so every worker it forks, and the library runs) on the others.
PAGE_CORE = (os.cpu_count() or 1) - 1
PAGE_APART = " (page apart: the browser and the server on their own core)"
BACKGROUND = " (the other tabs in the background)"
SOLVER_CORES = set(range(PAGE_CORE)) or {0}


def pin_apart(page: set[int] | None = None, solvers: set[int] | None = None) -> None:
    """Pin every thread of the browser, the server and this script to `page` (default {PAGE_CORE}), the fork
    server's to `solvers` (default SOLVER_CORES); the threads and processes they start later inherit it."""
    page, solvers = page or {PAGE_CORE}, solvers or SOLVER_CORES
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
            if b"pareto_app.worker" in command:
                cores = solvers
            elif any(name in command for name in (b"chrom", b"streamlit", b"playwright")) or int(pid) == os.getpid():
                cores = page
            else:
                continue
            for thread in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(thread), cores)


def settle_fork_server(timeout: float = 60.0) -> None:
    """Wait until the fork server the page started has imported torch (no worker process burns CPU):
    a person sets up a run for some seconds after opening the page; what is timed is the run, not
    the fork server's imports."""
    hz = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        total = 0.0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"pareto_app.worker" not in f.read():
                        continue
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / hz
        return total

    deadline = time.monotonic() + timeout
    before = cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds()
        if now - before < 0.05:
            return
        before = now
    say(f"a worker process still used CPU after {timeout:.0f} s; measuring anyway")


def clicked_runs(store: Any) -> list[int]:
    """The ids of the archive's single runs."""
    runs = store.list()
    return [int(i) for i in runs.loc[runs["parent"].isna(), "id"]]


def _median(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.mean(kept) if kept else math.nan


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\napp vs library (goals: app/library ≤ 1.1, chart updates ≥ 2/s, pause and stop ≤ 0.5 s); medians over "
          "rounds, each the app's run against the mean of a library run before it and one after; app s: Start "
          "click to 'finished' on the page (the tabs in front); end s: to the run's end in the archive (every tab); "
          "library at once "
          "s: as many library runs side by side as tabs; page apart: the browser and the server on the last core, "
          "the solvers on the others; first step s: to the first step shown; worker solver s: the last "
          "iterate's elapsed in the worker; solver/library: that against the library (at once); no page s: the same "
          "runs through workers with no page, as many at once, to their end in the archive; end/no page: end s "
          "against that (what the pages cost); "
          "pause/stop → archive s: click to its command in the archive (the server "
          "ran the click); → worker s: click to the worker's paused/stopped status; nan: a bounded wait ran out")
    keys = list(rows[0])
    widths = [max(len(k), 6) for k in keys]
    print("  ".join(f"{k:>{w}}" for k, w in zip(keys, widths)))
    for row in rows:
        print("  ".join(f"{v:>{w}.3g}" if isinstance(v, float) else f"{v!s:>{w}}" for v, w in zip(row.values(), widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pareto_app bench app", description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 4], help="tabs running at once (default: 1 4)")
    parser.add_argument("--steps", type=int, default=500, help="steps of the timed run (default: 500)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="app runs, each between two library runs, per number of tabs (default: 3)")
    parser.add_argument("--background", action="store_true",
                        help="also measure more than one tab with every tab but the first in the background (hidden), "
                             "as tabs of one browser window are")
    parser.add_argument("--page-apart", action="store_true",
                        help="also measure with the browser and the server on the last core and the solvers on the "
                             "others (Linux, 2 cores or more): as if the browser ran on the user's own computer")
    args = parser.parse_args(argv)
    if args.page_apart and (not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2):
        parser.error("--page-apart needs Linux and 2 cores or more")
    if any(n < 1 for n in args.tabs) or args.steps < 1 or args.rounds < 1:
        parser.error("--tabs, --steps and --rounds take whole numbers ≥ 1")
    reason = missing()
    if reason:
        print(f"bench app: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pareto-app-bench-") as tmp, serve(Path(tmp)) as server, \
            sync_playwright() as playwright:
        say(f"server up at {server.url}; archive {server.db}; {TASK}, {SOLVER}, r = {PREFERENCE}, {args.steps} steps")
        browser = launch_chromium(playwright)
        try:
            for tabs in args.tabs:
                settings = [(False, False)] + [(True, False)] * args.page_apart + [(False, True)] * (
                    args.background and tabs > 1)
                for apart, background in settings:
                    try:
                        rows.append(measure(browser, server.url, server.db, tabs, args.steps, args.rounds, apart,
                                            background))
                    except AssertionError as err:  # a bounded wait ran out: say so, go on with the next
                        say(f"{tabs} tab(s){PAGE_APART if apart else BACKGROUND if background else ''}: gave up: {err}")
        finally:
            browser.close()
    if rows:
        print_table(rows)
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
