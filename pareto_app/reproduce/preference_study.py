"""mobl-wc-mhgd Fig. 1: preferred (r_s = 0.8) and extremely preferred (r_s = 0.96) objectives.

Few-shot meta-learning with S tasks; for each s, WC-MHGD runs with r_s = level and the rest
shared equally, and the preferred task's query accuracy is set against the others'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import tasks
from ..api import solve
from .report import Report, progress

LEVELS = {"preferred": 0.8, "extremely preferred": 0.96}


def run(*, quick: bool = False, out: str | Path = "reports") -> Path:
    steps = 10 if quick else 300
    params = {"S": 5}
    options = {"D": 32, "u": 10.0}  # the paper's D and u (mobl-wc-mhgd §6)
    problem = tasks.get("few-shot", **params)
    S = problem.num_objectives
    report = Report("preference-study", "Preference-guided exploration (mobl-wc-mhgd Fig. 1)", out, quick)

    def accuracies(r: np.ndarray) -> np.ndarray:
        result = solve(problem, "wc-mhgd", r, steps=steps, device="cpu", metrics_every=steps, **options)
        scores = problem.evaluate(result.x, result.y)
        return np.array([scores[f"acc_{s + 1}"] for s in range(S)])

    progress("preference-study: uniform preference")
    uniform = accuracies(np.full(S, 1.0 / S))
    rows = []
    for name, level in LEVELS.items():
        for s in range(S):
            progress(f"preference-study: {name}, task {s + 1}")
            r = np.full(S, (1 - level) / (S - 1))
            r[s] = level
            acc = accuracies(r)
            others = np.delete(acc, s)
            rows.append({"preference": name, "r_s": level, "task s": s + 1, "accuracy of s (%)": 100 * acc[s],
                         "mean accuracy of the others (%)": 100 * others.mean(),
                         "s under uniform r (%)": 100 * uniform[s],
                         "gain of s over uniform (pts)": 100 * (acc[s] - uniform[s])})
    table = pd.DataFrame(rows)
    report.text(f"""
Task `few-shot` (S = {S} five-way five-shot tasks built from digits; shared feature map x,
per-task heads y), deterministic WC-MHGD (CG) with D = {options['D']}, u = {options['u']},
{steps} steps. For each task s, r_s = 0.8 ("preferred") or 0.96 ("extremely preferred"),
the other tasks share the rest equally. Accuracy on held-out query images.
""")
    report.table(table, "Query accuracy of the preferred task against the others")
    fig = go.Figure()
    for name in LEVELS:
        part = table[table["preference"] == name]
        fig.add_trace(go.Scatter(x=part["mean accuracy of the others (%)"], y=part["accuracy of s (%)"], mode="markers+text",
                                 text=[f"s={s}" for s in part["task s"]], textposition="top center",
                                 marker={"size": 12}, name=name))
    lo = float(min(table["mean accuracy of the others (%)"].min(), table["accuracy of s (%)"].min())) - 2
    hi = float(max(table["mean accuracy of the others (%)"].max(), table["accuracy of s (%)"].max())) + 2
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dot", "color": "#999"},
                             name="equal accuracy"))
    fig.update_layout(xaxis_title="mean accuracy of the other tasks (%)", yaxis_title="accuracy of the preferred task (%)",
                      title="Preferred task against the others")
    report.figure(fig, "preferred_vs_others", "Each point: one run; above the diagonal, the preferred task wins")
    above = {name: int((table[table["preference"] == name]["accuracy of s (%)"]
                        > table[table["preference"] == name]["mean accuracy of the others (%)"]).sum()) for name in LEVELS}
    gains = {name: float(table[table["preference"] == name]["gain of s over uniform (pts)"].mean()) for name in LEVELS}
    report.text(f"""
## What came out

The preferred task beats the mean of the others in {above['preferred']}/{S} runs at r_s = 0.8 and
{above['extremely preferred']}/{S} at r_s = 0.96. Against the uniform preference, the preferred
task gains {gains['preferred']:+.2f} points on average at 0.8 and {gains['extremely preferred']:+.2f}
at 0.96. The paper's claim is that preferred objectives are consistently more accurate and that
the effect grows for extremely preferred ones; the table shows where that holds here and where
it does not (few-shot tasks differ in difficulty, so "beats the others" mixes the preference's
effect with each task's own difficulty — the gain over the uniform run isolates the former).
""")
    progress("")
    return report.write(f"Settings: task parameters {params}, options {options}, {steps} steps.")
