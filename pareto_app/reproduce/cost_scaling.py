"""forum Fig. 1: time and peak memory per iteration against the lower-level steps and against
the lower-level parameter count, for MOML, MoCo, FORUM and WC-MHGD (CG, Neumann).

Each configuration runs in its own process, so its peak memory is its own: Linux's peak
resident set size (VmHWM) is reset just before the timed iterations (`/proc/self/clear_refs`)
and read after them, minus the resident size before them; the first (untimed) step counts
toward the memory, since later steps reuse the heap it freed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .report import Report, progress

METHODS = {
    "MOML": ("moml", "T"),
    "MoCo": ("moco", "T"),
    "FORUM": ("forum", "T"),
    "WC-MHGD (CG)": ("wc-mhgd", "D"),
    "WC-MHGD (Neumann)": ("wc-mhgd", "D"),
}


def probe(method: str, lower_steps: int, hidden: int, iterations: int) -> dict[str, float]:
    """Seconds and peak memory (MiB) per iteration of one configuration, in this process."""
    import torch

    from .. import solvers, tasks
    from ..oracles import Oracles

    torch.set_num_threads(1)
    solver_name, steps_option = METHODS[method]
    model = {"model": "mlp", "hidden": hidden} if hidden else {"model": "linear"}
    problem = tasks.get("hyper-cleaning", S=2, **model)
    # Timing only: the mlp lower level is not strongly convex, and the hypergradient methods
    # would refuse it; here they only have to run, not to converge.
    problem = replace(problem, strongly_convex=True)
    solver = solvers.get(solver_name)
    options = {steps_option: lower_steps}
    if solver_name == "wc-mhgd":
        options.update(hypergrad="neumann" if "Neumann" in method else "cg", beta=1e-3, alpha=0.1)
    elif solver_name == "forum":
        options.update(mu=1e-3, eta=0.1)
    else:
        options.update({"mu" if solver_name == "moml" else "alpha": 1e-3, "eta": 0.1})
    opts = solvers.check_options(solver, options)
    r = np.full(problem.num_objectives, 1.0 / problem.num_objectives)
    with torch.no_grad():
        state = solver.init(problem, r, opts, Oracles(problem), torch.Generator().manual_seed(0))
        # The first step's allocations are the ones to see: later steps reuse freed heap.
        _reset_peak()
        before = _status_mib("VmRSS")
        state, _ = solver.step(state, r)
        start = time.perf_counter()
        for _ in range(iterations):
            state, _ = solver.step(state, r)
        seconds = (time.perf_counter() - start) / iterations
    peak = _status_mib("VmHWM") - before
    q = problem.dims[1]
    return {"seconds": seconds, "peak_mib": max(peak, 0.0), "q": q}


def ratio(a: float, b: float) -> str:
    """a/b as "k.k×", or "n/a" where b is zero (an in-process quick run can see no growth)."""
    return f"{a / b:.1f}×" if b > 0 and np.isfinite(a) else "n/a"


def _reset_peak() -> None:
    # "5" resets the peak resident set size of this process (Linux ≥ 4.0).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _run_probe(method: str, lower_steps: int, hidden: int, iterations: int) -> dict[str, float]:
    code = ("import json, sys; from pareto_app.reproduce.cost_scaling import probe; "
            "print(json.dumps(probe(*json.loads(sys.argv[1]))))")
    cmd = [sys.executable, "-c", code, json.dumps([method, lower_steps, hidden, iterations])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        return {"seconds": float("nan"), "peak_mib": float("nan"), "q": float("nan"), "error": done.stderr[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(*, quick: bool = False, out: str | Path = "reports") -> Path:
    report = Report("cost-scaling", "Time and memory per iteration (forum Fig. 1)", out, quick)
    steps_grid = [8, 16] if quick else [16, 32, 64, 128]
    hidden_grid = [16, 32] if quick else [32, 128, 256, 512]  # the task accepts up to 512
    iterations = 1 if quick else 5
    # Quick mode probes in this process (no interpreter start-ups); its memory figures are then
    # only indicative, since the heap is shared between configurations.
    measure = probe if quick else _run_probe
    rows = []
    for method in METHODS:
        for T in steps_grid:
            progress(f"cost-scaling: {method}, lower-level steps {T}")
            rows.append({"method": method, "sweep": "lower-level steps", "lower-level steps": T, "hidden": 0,
                         **measure(method, T, 0, iterations)})
        for hidden in hidden_grid:
            progress(f"cost-scaling: {method}, hidden {hidden}")
            rows.append({"method": method, "sweep": "parameters", "lower-level steps": 32, "hidden": hidden,
                         **measure(method, 32, hidden, iterations)})
    data = pd.DataFrame(rows)
    report.text(f"""
Task `hyper-cleaning` (S = 2). Left: the linear model with 16 to 128 lower-level steps per
iteration. Right: 32 lower-level steps with an MLP lower level of growing width (its parameter
count q is in the table); for timing only, the MLP is treated as strongly convex so that every
method runs. Each configuration runs in its own process on one CPU thread: {iterations}
iterations after one warm-up; peak memory is the growth of the peak resident set during them.
""")
    for sweep, x, title in (("lower-level steps", "lower-level steps", "lower-level steps T"),
                            ("parameters", "q", "lower-level parameters q")):
        part = data[data["sweep"] == sweep]
        for column, label, stem in (("seconds", "seconds per iteration", "time"),
                                    ("peak_mib", "peak memory (MiB)", "memory")):
            fig = go.Figure()
            for method in METHODS:
                m = part[part["method"] == method]
                fig.add_trace(go.Scatter(x=m[x], y=m[column], mode="lines+markers", name=method))
            fig.update_xaxes(title=title, type="log")
            fig.update_yaxes(title=label)
            fig.update_layout(title=f"{label} against {title}")
            report.figure(fig, f"{stem}_vs_{'T' if sweep == 'lower-level steps' else 'q'}", f"{label} against {title}")
    shown = data.drop(columns=[c for c in ("error",) if c in data]).copy()
    shown["seconds"] = shown["seconds"].map(lambda v: f"{v * 1e3:.1f} ms")
    shown["peak_mib"] = shown["peak_mib"].map(lambda v: f"{v:.1f}")
    report.table(shown, "All configurations")
    steps_part = data[data["sweep"] == "lower-level steps"]
    by_T = steps_part.pivot(index="lower-level steps", columns="method", values="peak_mib")
    time_T = steps_part.pivot(index="lower-level steps", columns="method", values="seconds")
    by_q = data[data["sweep"] == "parameters"].pivot(index="q", columns="method", values="peak_mib")
    T_hi, q_hi = max(steps_grid), by_q.index.max()

    def grow(method: str) -> str:
        return ratio(by_T.loc[T_hi, method], by_T.loc[min(steps_grid), method])
    report.text(f"""
## What came out

From T = {min(steps_grid)} to T = {T_hi} lower-level steps, peak memory per iteration grows
{grow("MOML")} for MOML and {grow("MoCo")} for MoCo (they keep the graph of all T
unrolled steps), {grow("FORUM")} for FORUM and {grow("WC-MHGD (CG)")} for WC-MHGD (CG). At
T = {T_hi} an MOML iteration takes {ratio(time_T.loc[T_hi, "MOML"], time_T.loc[T_hi, "FORUM"])} as long as a FORUM one. At
the largest lower level (q = {int(q_hi)}), MOML needs {by_q.loc[q_hi, "MOML"]:.0f} MiB per iteration against
{by_q.loc[q_hi, "FORUM"]:.0f} MiB for FORUM and {by_q.loc[q_hi, "WC-MHGD (CG)"]:.0f} MiB for WC-MHGD (CG). This is
the shape of forum's Figure 1: MOML and MoCo grow with T and q, FORUM stays nearly flat. WC-MHGD
with Neumann (Eq. 4) keeps the D inner iterates, not a graph, so its memory grows little with T
while its time grows linearly, like the ITD methods'.
""")
    progress("")
    return report.write(f"Settings: lower-level steps {steps_grid}; MLP widths {hidden_grid}; {iterations} iterations.")

