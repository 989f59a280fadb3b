"""The live views' feed (ui/live_feed.py): what a part's URL answers, over the route too, and what the
Explore page publishes while a run streams (its status line and charts follow the archive, no rerun)."""

import asyncio
import json
import threading
import time
from urllib.parse import urlparse

import pytest
from streamlit.testing.v1 import AppTest

import pareto_app as pa
from pareto_app import launcher
from pareto_app.store import LIVE_STATES
from ui import live_feed


@pytest.fixture(autouse=True)
def isolated_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_APP_DB", str(tmp_path / "runs.db"))


@pytest.fixture(scope="module", autouse=True)
def no_fork_server_left():
    yield
    launcher.shutdown_fork_server()


class Counter:
    """A part whose content counts how often it was made; `value` sets its version."""

    def __init__(self) -> None:
        self.value, self.made = 1, 0

    def build(self) -> live_feed.Update:
        def content():
            self.made += 1
            return {"value": self.value}

        return live_feed.Update(str(self.value), content, 0.25)


def test_a_part_answers_its_content_then_204_until_it_changes():
    token, part = live_feed.new_token(), Counter()
    path = live_feed.publish(token, "count", part.build, threading.RLock())
    assert path == f"{live_feed.PREFIX}/{token}/count"
    code, body = live_feed.answer(token, "count", None)
    assert code == 200 and json.loads(body) == {"version": "1", "every": 0.25, "content": {"value": 1}}
    code, body = live_feed.answer(token, "count", "1")
    assert code == 204 and json.loads(body) == {"every": 0.25}
    assert part.made == 1  # an unchanged part is not made again
    part.value = 2
    code, body = live_feed.answer(token, "count", "1")
    assert code == 200 and json.loads(body)["content"] == {"value": 2} and part.made == 2
    live_feed.withdraw(token, "count")
    assert live_feed.answer(token, "count", "2")[0] == 404


def test_an_unknown_token_or_a_failing_part_says_so():
    code, body = live_feed.answer(live_feed.new_token(), "status", None)
    assert code == 404 and "reload the page" in json.loads(body)["error"]
    token = live_feed.new_token()

    def broken() -> live_feed.Update:
        raise KeyError("run 7")

    live_feed.publish(token, "status", broken, threading.RLock())
    code, body = live_feed.answer(token, "status", None)
    assert code == 500 and json.loads(body)["error"] == "KeyError: 'run 7'"
    live_feed.withdraw(token, "status")


def test_parts_nobody_asked_for_are_forgotten(monkeypatch):
    old, new = live_feed.new_token(), live_feed.new_token()
    live_feed.publish(old, "count", Counter().build, threading.RLock())
    assert live_feed.answer(old, "count", None)[0] == 200
    monkeypatch.setattr(live_feed, "FORGET_AFTER_S", 0.0)
    time.sleep(0.01)
    live_feed.publish(new, "count", Counter().build, threading.RLock())  # publishing forgets the stale ones
    assert live_feed.answer(old, "count", None)[0] == 404
    live_feed.withdraw(new, "count")


def _get(path: str) -> tuple[int, dict[str, str], bytes]:
    """GET `path` from the feed's route, as the Starlette app app.py mounts (ASGI, no network)."""
    from starlette.applications import Starlette

    app = Starlette(routes=live_feed.routes())
    url = urlparse(path)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": url.path, "raw_path": url.path.encode(), "query_string": url.query.encode(), "headers": [],
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1234), "root_path": ""}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_the_route_answers_json_204_with_when_to_ask_and_404():
    token, part = live_feed.new_token(), Counter()
    path = live_feed.publish(token, "count", part.build, threading.RLock())
    code, headers, body = _get(path)
    assert code == 200 and headers["content-type"] == "application/json" and headers["cache-control"] == "no-store"
    assert json.loads(body)["content"] == {"value": 1}
    code, headers, body = _get(path + "?have=1")
    assert code == 204 and headers["x-every"] == "0.25" and body == b""
    live_feed.withdraw(token, "count")
    assert _get(path)[0] == 404


def _components(at: AppTest) -> dict[str, dict]:
    """{key: arguments} of the page's components (live charts and the status line)."""
    found = {}
    for element in at.get("component_instance"):
        args = json.loads(element.proto.json_args)
        found[args["key"]] = args
    return found


def _ask(path: str, have: str | None = None) -> tuple[int, dict | None]:
    _, _, token, part = urlparse(path).path.rsplit("/", 3)
    code, body = live_feed.answer(token, part, have)
    return code, (json.loads(body) if code == 200 else None)


def test_explore_publishes_feeds_that_follow_the_run_until_it_ends():
    at = AppTest.from_file("../pages/explore.py", default_timeout=60)
    at.run()
    # Every chart is on the page before a run starts (its frame loads plotly.js then, not while the solver
    # steps), with its feed's address and nothing published there yet.
    idle = _components(at)
    for key in ("explore_objective_space", "explore_metrics", "explore_weights"):
        assert key in idle and idle[key]["feed"] and idle[key]["every"] is None, key
        assert _ask(idle[key]["feed"])[0] == 404, key
    # The status line's frame too is there before any run, so that Start does not make one while the solver steps.
    assert idle["explore_status"]["feed"] is None and idle["explore_status"]["content"]["line"][0][0].startswith("Set a")
    at.number_input(key="setup_steps").set_value(100_000)
    at.button(key="explore_start").click()
    at.run()
    assert not at.exception, at.exception
    run_id = at.session_state["explore_run"]
    store = pa.store.RunStore()
    try:
        deadline = time.monotonic() + 60
        while store.state(run_id)["iterations"] < 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Start reran the panel alone: it published every part's feed at the addresses the charts have, and its
        # status line tells them to ask (`kick`).
        for key in ("explore_objective_space", "explore_metrics", "explore_weights"):
            code, chart = _ask(idle[key]["feed"])
            assert code == 200 and json.loads(chart["content"]["spec"])["layout"], key
        at.run()
        parts = _components(at)
        status = parts["explore_status"]
        assert status["feed"] and status["every"] == pytest.approx(0.25) and status["kick"] == str(run_id)
        first = int(status["content"]["line"][2][0])
        # With no rerun of the page, its feeds show the run going on, as the worker wrote it.
        deadline = time.monotonic() + 30
        while True:
            code, answer = _ask(status["feed"])
            assert code == 200
            step = int(answer["content"]["line"][2][0])
            if step > first + 20:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert answer["content"]["line"][0] == [f"run #{run_id}: wc-mhgd", True]
        assert answer["content"]["caption"].startswith("weights: f1 ")
        assert answer["content"]["state"] == "running|run|rows"
        assert _ask(status["feed"], answer["version"])[0] in (200, 204)
        assert store.control(run_id)["watched"] is not None  # a page asking is a page watching
        for key in ("explore_objective_space", "explore_metrics", "explore_weights"):
            code, chart = _ask(parts[key]["feed"])
            assert code == 200, key
            spec = json.loads(chart["content"]["spec"])
            assert spec["data"], key
        code, chart = _ask(parts["explore_objective_space"]["feed"])
        trajectory = next(t for t in json.loads(chart["content"]["spec"])["data"] if t.get("name") == "trajectory")
        points = trajectory["x"]  # plotly's binary arrays: {dtype: f8, bdata: base64}
        assert (len(points) if isinstance(points, list) else len(points["bdata"]) * 3 // 4 // 8) > 20
        store.command(run_id, "pause")
        deadline = time.monotonic() + 15
        while (answer := _ask(status["feed"])[1]) is None or answer["content"]["state"] != "paused|pause|rows":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert answer["every"] == pytest.approx(1.0)  # a paused run is asked slowly
    finally:
        store.command(run_id, "stop")
    deadline = time.monotonic() + 30
    while store.state(run_id)["status"] in LIVE_STATES or store.state(run_id)["pid"] is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    code, answer = _ask(status["feed"])
    assert code == 200 and answer["content"]["state"].startswith("stopped|") and answer["every"] is None
    at.run()
    assert not at.exception, at.exception
    parts = _components(at)
    assert parts["explore_status"]["feed"] is None and parts["explore_status"]["kick"] is None
    assert _ask(status["feed"])[0] == 404  # withdrawn: an ended run is not followed
    for key in ("explore_objective_space", "explore_metrics", "explore_weights"):
        assert parts[key]["every"] is None and _ask(parts[key]["feed"])[0] == 404, key
