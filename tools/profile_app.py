"""Where the cores go while the app streams a run: `python tools/profile_app.py [--tabs 1] [--seconds 10]`.

Starts its own Streamlit server (a temporary archive) and headless chromium, starts the default Explore run
(toy-quadratic, wc-mhgd, a run that only ends when stopped) in each tab, and, once every run steps, samples
for `--seconds` the CPU time of each process: the server, chromium's processes by type (renderer, GPU,
browser, utility), the workers, and the worker's steps per second. Then it stops the runs. What `bench app`
says in ratios, this says in cores: what to make cheaper first. `--js` samples the first tab's main thread
meanwhile (the DevTools protocol's CPU profiler): its busy share, and the milliseconds per second by script and
by function, idle left out ("(program)" is the browser's own work: style, layout, paint). `--background` puts
every tab but the first in the background (`tests.browser.set_hidden`), as tabs of one browser window are.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pareto_app.store import LIVE_STATES  # noqa: E402
from tests.browser import (  # noqa: E402 - the repository root goes on sys.path first
    VIEWPORT,
    launch_chromium,
    missing,
    open_app,
    press,
    serve,
    set_hidden,
    set_number,
    stop_workers,
    wait_until,
)
from tools.bench_app import LONG, clicked_runs, settle_fork_server  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def _kind(pid: str, server_pid: int) -> str | None:
    """What process `pid` is, as this profile groups them; None: not one of the app's."""
    if int(pid) == server_pid:
        return "server"
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        command = f.read().replace(b"\0", b" ")
    if b"pareto_app.worker" in command:  # the fork server and its forks, the workers, share its command line
        with open(f"/proc/{pid}/stat") as f:
            parent = f.read().rsplit(")", 1)[1].split()[1]
        with open(f"/proc/{parent}/cmdline", "rb") as f:
            return "worker" if b"pareto_app.worker" in f.read() else "fork server"
    if b"chrom" in command:
        for kind in (b"renderer", b"gpu-process", b"utility", b"zygote"):
            if b"--type=" + kind in command:
                return "chromium " + kind.decode()
        return "chromium browser"
    return None


def cpu_by_kind(server_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the app's processes, summed per kind."""
    total: dict[str, float] = collections.defaultdict(float)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError):
            kind = _kind(pid, server_pid)
            if kind is None:
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total[kind] += (int(fields[11]) + int(fields[12])) / HZ
    return total


def timeline(pages: list, server_pid: int, store) -> None:
    """Click Start in every tab, then every 0.25 s until the runs have ended (and 1 s more): cores used per kind,
    and the steps of each run."""
    before = set(clicked_runs(store))
    for page in pages:
        press(page, "explore_start")
    at = last_t = time.monotonic()
    last = cpu_by_kind(server_pid)
    ended_at = None
    kinds = ("worker", "server", "chromium renderer", "chromium gpu-process", "chromium browser")
    print("    t  " + "  ".join(f"{k.split()[-1][:9]:>9s}" for k in kinds) + "   steps")
    while ended_at is None or time.monotonic() - ended_at < 1.0:
        time.sleep(0.25)
        now, t = cpu_by_kind(server_pid), time.monotonic()
        states = [store.state(r) for r in clicked_runs(store) if r not in before]
        print(f"{t - at:5.2f}  " + "  ".join(f"{(now[k] - last.get(k, 0.0)) / (t - last_t):9.2f}" for k in kinds)
              + "   " + " ".join(f"{s['iterations']}{'' if s['status'] in LIVE_STATES else '.'}" for s in states))
        if ended_at is None and len(states) == len(pages) and all(s["status"] not in LIVE_STATES for s in states):
            ended_at = t
        last, last_t = now, t


def start_js_profile(context: Any, page: Any) -> Any:
    """The DevTools protocol's sampling CPU profiler on `page`'s renderer (every 0.2 ms), started."""
    session = context.new_cdp_session(page)
    session.send("Profiler.enable")
    session.send("Profiler.setSamplingInterval", {"interval": 200})
    session.send("Profiler.start")
    return session


def print_js_profile(profile: dict[str, Any], wall: float, top: int = 15) -> None:
    """Busy share of the main thread and the ms/s of the busiest scripts and functions in `profile`."""
    frames = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    by_script: collections.Counter = collections.Counter()
    by_function: collections.Counter = collections.Counter()
    for sample, micros in zip(profile["samples"], profile["timeDeltas"]):
        frame = frames[sample]
        if frame["functionName"] == "(idle)":
            continue
        script = frame["url"].rsplit("/", 1)[-1].split("?", 1)[0] or "(native)"
        by_script[script] += micros
        by_function[f"{frame['functionName'] or '(anonymous)'} {script}:{frame['lineNumber'] + 1}"] += micros
    busy = sum(by_script.values()) / 1e6
    print(f"first tab's main thread: busy {busy / wall:.1%} of {wall:.1f} s")
    for title, counts in (("by script", by_script), ("by function", by_function)):
        print(f"  {title} (ms/s)")
        for name, micros in counts.most_common(top):
            print(f"    {micros / 1e3 / wall:7.1f}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="with --steps: runs one after the other, each tab")
    parser.add_argument("--steps", type=int, default=None,
                        help="instead: a run of this many steps in each tab, with the cores used every 0.25 s from "
                             "the Start click to its end (where a short run's time goes)")
    parser.add_argument("--js", action="store_true", help="also profile the first tab's main thread")
    parser.add_argument("--background", action="store_true",
                        help="every tab but the first in the background (hidden), as tabs of one browser window are")
    args = parser.parse_args(argv)
    if args.background and args.steps:
        parser.error("--background measures runs that go on (leave out --steps)")
    reason = missing()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from pareto_app.store import RunStore

    with tempfile.TemporaryDirectory(prefix="pareto-app-profile-") as tmp, serve(Path(tmp)) as server, \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        store = RunStore(server.db)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            pages = [open_app(context.new_page(), server.url) for _ in range(args.tabs)]
            for page in pages:
                set_number(page, "Steps", args.steps or LONG)
            settle_fork_server()
            if args.steps:
                for round_ in range(1, args.rounds + 1):
                    print(f"round {round_}/{args.rounds} ({len(clicked_runs(store))} runs in the archive before)")
                    timeline(pages, server.pid, store)
                    for page in pages:
                        wait_until(lambda page=page: page.locator(".st-key-explore_start button").is_enabled(),
                                   "the Start button", 60, page=page)
                return 0
            for page in pages:
                wait_until(lambda page=page: press(page, "explore_start"), "the Start button", 60, page=page)
            wait_until(lambda: len(runs := clicked_runs(store)) == args.tabs
                       and all(store.state(r)["iterations"] > 50 for r in runs), "every run to step", 120)
            time.sleep(2.0)  # past the first full rerun of each page
            if args.background:  # as a person switches tabs once a run is going
                for page in pages[1:]:
                    set_hidden(page, True)
                time.sleep(1.0)
            runs = clicked_runs(store)
            before, steps_before, at = cpu_by_kind(server.pid), [store.state(r)["iterations"] for r in runs], \
                time.monotonic()
            profiler = start_js_profile(context, pages[0]) if args.js else None
            time.sleep(args.seconds)
            after, steps_after, wall = cpu_by_kind(server.pid), [store.state(r)["iterations"] for r in runs], \
                time.monotonic() - at
            if profiler is not None:
                print_js_profile(profiler.send("Profiler.stop")["profile"], wall)
            hidden = " (all but the first in the background)" if args.background and args.tabs > 1 else ""
            print(f"{args.tabs} tab(s){hidden}, {wall:.1f} s: cores used")
            for kind in sorted(after, key=lambda k: -(after[k] - before.get(k, 0.0))):
                print(f"  {kind:24s} {(after[kind] - before.get(kind, 0.0)) / wall:5.2f}")
            print("  steps/s per run: " + ", ".join(f"{(b - a) / wall:.0f}" for a, b in zip(steps_before, steps_after)))
        finally:
            browser.close()
            stop_workers(server.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
