"""Writing a reproduction report: a markdown page with tables, and Plotly figures as HTML and PNG."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

PLOTLY_JS = "plotly.min.js"  # one copy for all reports, beside their folders
PNG_TIMEOUT_S = 120.0


class Report:
    """Collects sections and writes `reports/NAME/README.md` with its figures."""

    def __init__(self, name: str, title: str, out: str | Path, quick: bool) -> None:
        self.name, self.title, self.quick = name, title, quick
        self.dir = Path(out) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.parts: list[str] = []
        self.started = time.perf_counter()

    def text(self, markdown: str) -> None:
        self.parts.append(markdown.strip() + "\n")

    def table(self, frame: pd.DataFrame, caption: str = "") -> None:
        if caption:
            self.parts.append(f"**{caption}**\n")
        self.parts.append(to_markdown(frame) + "\n")

    def figure(self, fig: go.Figure, stem: str, caption: str) -> None:
        """Save `fig` as `stem.html` (interactive) and `stem.png`, and link both."""
        fig.update_layout(template="plotly_white", width=900, height=520)
        fig.write_html(self.dir / f"{stem}.html", include_plotlyjs=f"../{PLOTLY_JS}")
        png = self.dir / f"{stem}.png"
        try:
            _write_png(fig, png)
            self.parts.append(f"![{caption}]({stem}.png)\n\n*{caption}* ([interactive]({stem}.html))\n")
        except Exception as err:  # noqa: BLE001 - a report without its PNG is still a report
            self.parts.append(f"*{caption}*: [interactive figure]({stem}.html) (PNG not written: {err})\n")

    def write(self, settings: str) -> Path:
        _ensure_plotly_js(self.dir.parent)
        elapsed = time.perf_counter() - self.started
        head = [f"# {self.title}\n",
                f"Written by `python -m pareto_app reproduce {self.name}{' --quick' if self.quick else ''}` "
                f"in {elapsed:.0f} s on this machine. {settings.strip()}\n"]
        if self.quick:
            head.append("> **Quick mode**: CI-sized settings; the numbers are a smoke test, not the reproduction.\n")
        path = self.dir / "README.md"
        path.write_text("\n".join(head + self.parts))
        return path


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub table, without needing `tabulate`."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    arr = np.asarray(values, dtype=float) * scale
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1) if len(arr) > 1 else 0.0:.{digits}f}"


def log_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    mask = (x > 0) & (y > 0) & np.isfinite(y)
    return float(np.polyfit(np.log(x[mask]), np.log(y[mask]), 1)[0])


def progress(message: str) -> None:
    sys.stderr.write(f"\r{message[:150]:<150}")
    sys.stderr.flush()


def _write_png(fig: go.Figure, path: Path) -> None:
    # kaleido drives a Chrome; here that is Debian's chromium.
    if "BROWSER_PATH" not in os.environ and Path("/usr/bin/chromium").exists():
        os.environ["BROWSER_PATH"] = "/usr/bin/chromium"
    # A Chrome that never answers (seen once on a loaded 2-core machine) must not hang the report:
    # the export runs in a daemon thread, and a report past the limit goes on without its PNG.
    failure: list[BaseException] = []

    def export() -> None:
        try:
            _start_png_server()
            with warnings.catch_warnings():  # plotly passes kaleido options the shared Chrome already has
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                fig.write_image(path, scale=1)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(err)

    worker = threading.Thread(target=export, daemon=True)
    worker.start()
    worker.join(PNG_TIMEOUT_S)
    if worker.is_alive():
        raise TimeoutError(f"the PNG export (kaleido, Chrome) did not finish in {PNG_TIMEOUT_S:.0f} s")
    if failure:
        raise failure[0]


def _start_png_server() -> None:
    """One Chrome for every PNG this process writes: starting one takes seconds, a figure in a running
    one a third of a second (kaleido's sync server; stopped when the process exits)."""
    import kaleido

    global _png_server_started
    if not _png_server_started and hasattr(kaleido, "start_sync_server"):  # kaleido ≥ 1.1; before, one Chrome each
        kaleido.start_sync_server(silence_warnings=True)
        atexit.register(kaleido.stop_sync_server, silence_warnings=True)
        _png_server_started = True


_png_server_started = False


def _ensure_plotly_js(folder: Path) -> None:
    target = folder / PLOTLY_JS
    if target.exists():
        return
    import plotly

    source = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    shutil.copyfile(source, target)
