"""What a live view shows, read by the browser over HTTP, with no Streamlit rerun per update.

A rerun of a fragment costs the browser far more than the update it brings: Streamlit's frontend
re-renders the page's element tree for every script run, changed or not. Profiled in headless Chromium
while the default Explore run streamed, with the run panel and the objective space as fragments
ticking every 0.4 s: the page's main thread was busy 470 ms of every second, of which plotly.js (the
charts' own redraws) took 90 ms and Streamlit's React and styling about 250 ms; a ticking fragment
that changed nothing still took 250-310 ms/s. Those cycles came from the solver's core.

So a page publishes, per part it shows live (the status line, each chart), how to build that part's
content from the archive, and the browser asks for it at the pace the answer says (`every`). The
answer is the part as the page would draw it (built by the same code), or 204 when nothing changed
since the version the browser has. The builders run in the server process (they share the session's
objects, behind the session's lock); a part's URL carries an unguessable token, so only the page that
published it reads it.

Routes are mounted by app.py as an `st.App` (Starlette) route: `routes()`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PREFIX = "/api/live"
# A part nobody asked for this long (a closed tab) is forgotten at the next publish: what it holds (a
# session's views) is then free.
FORGET_AFTER_S = 600.0


@dataclass
class Update:
    """A part's content now: `version` says whether it changed, `content()` makes what to draw (JSON-ready;
    made only for a browser that has another version), `every` when to ask again (None: do not ask again
    until the page publishes anew)."""

    version: str
    content: Callable[[], Any]
    every: float | None


@dataclass
class _Part:
    build: Callable[..., Update]
    lock: threading.RLock
    asked: float = field(default_factory=time.monotonic)
    with_have: bool = False


_parts: dict[str, _Part] = {}
_registry_lock = threading.Lock()


def new_token() -> str:
    """A page's token (one per browser session: its parts' URLs are `PREFIX/<token>/<part>`)."""
    return secrets.token_urlsafe(16)


def url(token: str, part: str) -> str:
    """The URL path of `part` of the page with `token`, published or not (a part not published answers 404)."""
    return f"{PREFIX}/{token}/{part}"


def publish(token: str, part: str, build: Callable[..., Update], lock: threading.RLock, with_have: bool = False) -> str:
    """From now on, `PREFIX/<token>/<part>` answers with `build()` (called holding `lock`, the session's;
    `build(have)` with `with_have`: what to send may depend on the version the browser has, as a tail of points
    does); the URL path to ask."""
    now = time.monotonic()
    with _registry_lock:
        for key in [k for k, p in _parts.items() if now - p.asked > FORGET_AFTER_S]:
            del _parts[key]
        previous = _parts.get(f"{token}/{part}")
        _parts[f"{token}/{part}"] = _Part(build, lock, previous.asked if previous else now, with_have)
    return url(token, part)


def withdraw(token: str, part: str) -> None:
    """`part` is no longer shown live: its URL answers 404."""
    with _registry_lock:
        _parts.pop(f"{token}/{part}", None)


def answer(token: str, part: str, have: str | None) -> tuple[int, bytes]:
    """(HTTP status, body) for a browser that has version `have` of the part: 200 with
    {"version", "every", "content"}, 204 when it has the current version, 404 for a part not published
    (or forgotten), 500 with {"error"} when building it failed."""
    with _registry_lock:
        entry = _parts.get(f"{token}/{part}")
        if entry is not None:
            entry.asked = time.monotonic()
    if entry is None:
        return 404, b'{"error": "no such live view: reload the page"}'
    try:
        with entry.lock:
            update = entry.build(have) if entry.with_have else entry.build()
    except Exception as err:  # shown in the browser's console; the page itself says what went wrong on its rerun
        return 500, json.dumps({"error": f"{type(err).__name__}: {err}"}).encode()
    if have is not None and have == update.version:
        return 204, json.dumps({"every": update.every}).encode()
    try:
        with entry.lock:
            content = update.content()
        body = json.dumps({"version": update.version, "every": update.every, "content": content}, default=str)
    except Exception as err:
        return 500, json.dumps({"error": f"{type(err).__name__}: {err}"}).encode()
    return 200, body.encode()


def routes() -> list[Any]:
    """The Starlette route of the live parts, for `st.App(routes=...)`."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        # The builders read the archive and make figures: off the event loop, which carries every page's
        # websocket.
        code, body = await run_in_threadpool(answer, request.path_params["token"], request.path_params["part"],
                                             request.query_params.get("have"))
        headers = {"Cache-Control": "no-store"}
        if code == 204:  # no body allowed: when to ask again goes in a header
            every = json.loads(body)["every"]
            return Response(status_code=204, headers={**headers, "X-Every": "" if every is None else str(every)})
        return Response(body, status_code=code, media_type="application/json", headers=headers)

    return [Route(PREFIX + "/{token}/{part}", endpoint, methods=["GET"])]
