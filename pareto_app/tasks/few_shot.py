"""`few-shot`: shared features, per-task heads over S few-shot tasks (mobl-wc-mhgd §6, deterministic).

Each task s is a 5-way 5-shot problem drawn from the digits: 5 random classes (relabelled
0..4), 5 support images, `query` query images and a further held-out query set per class.
x is a shared feature map, y the S linear heads:

    φ_x(a)    = tanh(W a + c),                 x = [W (hidden×64), c (hidden)]
    head_s(h) = V_s h + b_s,                   y = [V_1, b_1, ..., V_S, b_S],  V_s: 5×hidden
    g(x, y)   = Σ_s mean_{(a, b) ∈ support s} CE(head_s(φ_x(a)), b) + (l2/2) ‖y‖²
    f_s(x, y) = mean_{(a, b) ∈ query s} CE(head_s(φ_x(a)), b)

For fixed x, g is a sum of convex multinomial-logistic losses in y plus (l2/2)‖y‖², so it is
l2-strongly convex in y: y*(x) is the ridge-regularised heads fitted on each support set,
and f_s scores how well the features let task s generalise from 5 shots. The tasks share
x but not their classes, so the features they want differ: the objectives conflict.

Pixels are centred on the digits' mean image (a fixed shift) and W starts at a random
matrix scaled so the pre-activations are about unit size: at W = 0 all features vanish and
so does every hypergradient.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..problem import Problem
from .dataset import digits as digit_images
from .products import data_times
from .registry import Param, Task, register

WAYS = 5
SHOTS = 5
HELD_OUT = 20  # held-out query images per class, for `evaluate`
PIXELS = 64
CLASSES = 10
TOTAL_DIGITS = 1797
SMALLEST_CLASS = 174  # images of the rarest digit (8) in scikit-learn's set


def _episodes(S: int, query: int, seed: int, dtype: torch.dtype,
              device: torch.device) -> tuple[np.ndarray, tuple[torch.Tensor, ...]]:
    """Each task's 5 digits [S, 5], and its support, query and held-out images and labels, stacked over tasks."""
    digits = digit_images().splits((TOTAL_DIGITS,), seed, dtype, device)[0]
    features = digits.features - digits.features.mean(dim=0)
    labels = digits.labels.cpu().numpy()
    rng = np.random.default_rng(seed)
    per_class = SHOTS + query + HELD_OUT
    drawn = []
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("sa", "sb", "qa", "qb", "ha", "hb")}
    for _ in range(S):
        classes = rng.choice(CLASSES, size=WAYS, replace=False)
        drawn.append(classes)
        support, queries, held = [], [], []
        for cls in classes:
            idx = rng.choice(np.flatnonzero(labels == cls), size=per_class, replace=False)
            support.append(idx[:SHOTS])
            queries.append(idx[SHOTS:SHOTS + query])
            held.append(idx[SHOTS + query:])
        for key, chunks, count in (("s", support, SHOTS), ("q", queries, query), ("h", held, HELD_OUT)):
            index = torch.as_tensor(np.concatenate(chunks), device=device)
            parts[key + "a"].append(features[index])
            # Relabel: the j-th sampled class of this task is class j.
            parts[key + "b"].append(torch.arange(WAYS, device=device).repeat_interleave(count))
    return np.stack(drawn), tuple(torch.stack(parts[k]) for k in ("sa", "sb", "qa", "qb", "ha", "hb"))


def build(*, device: torch.device, dtype: torch.dtype, S: int, hidden: int, query: int, l2: float,
          seed: int) -> Problem:
    classes, (SA, SB, QA, QB, HA, HB) = _episodes(S, query, seed, dtype, device)  # [S, n, 64] and [S, n]
    q = S * WAYS * (hidden + 1)  # x has hidden·(64 + 1) entries

    def features(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        W, c = torch.split(x, [hidden * PIXELS, hidden])
        rows = data_times(a.reshape(-1, PIXELS), W.reshape(hidden, PIXELS))  # every episode's images at once
        return torch.tanh(rows.reshape(*a.shape[:-1], hidden) + c)

    def heads(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        blocks = y.reshape(S, WAYS, hidden + 1)
        return blocks[:, :, :hidden], blocks[:, :, hidden]  # V [S, 5, hidden], b [S, 5]

    def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        V, b = heads(y)
        logits = torch.bmm(features(x, SA), V.transpose(1, 2)) + b[:, None, :]  # [S, shots·ways, 5]
        ce = F.cross_entropy(logits.reshape(-1, WAYS), SB.reshape(-1), reduction="none")
        # Σ_s of each task's mean: every task has the same support size.
        return ce.sum() / (SHOTS * WAYS) + 0.5 * l2 * (y * y).sum()

    def upper_s(s: int):
        def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            V, b = heads(y)
            return F.cross_entropy(features(x, QA[s]) @ V[s].T + b[s], QB[s])

        return f

    def evaluate(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        out: dict[str, float] = {}
        with torch.no_grad():
            x, y = x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
            V, b = heads(y)
            for s in range(S):
                logits = features(x, HA[s]) @ V[s].T + b[s]
                out[f"acc_{s + 1}"] = float((logits.argmax(dim=1) == HB[s]).double().mean())
                # The objective's loss on the held-out images: f_s is fitted on the query set, this is not.
                out[f"held_out_loss_{s + 1}"] = float(F.cross_entropy(logits, HB[s]))
        out["acc_mean"] = float(np.mean([out[f"acc_{s + 1}"] for s in range(S)]))
        return out

    gen = torch.Generator().manual_seed(seed)
    # Unit-size pre-activations: ‖a‖² of a centred digit is ≈ 4.7 on average.
    scale = 1.0 / math.sqrt(float((SA * SA).sum(dim=-1).mean()))
    W0 = torch.randn(hidden * PIXELS, generator=gen, dtype=torch.float64) * scale
    x0 = torch.cat([W0, torch.zeros(hidden, dtype=torch.float64)]).to(device=device, dtype=dtype)
    return Problem(
        upper=[upper_s(s) for s in range(S)],
        lower=lower,
        x0=x0,
        # 0 is the uniform predictor; the inner loop fits the heads from there.
        y0=torch.zeros(q, dtype=dtype, device=device),
        strongly_convex=True,
        objective_names=[f"query loss {s + 1} (digits {','.join(map(str, sorted(classes[s])))})" for s in range(S)],
        # CE of the uniform 5-way predictor is ln 5; a margin keeps the start inside the box.
        reference_point=[1.1 * math.log(WAYS)] * S,
        evaluate=evaluate,
        data={"classes": classes, "ways": WAYS, "shots": SHOTS, "held_out": HELD_OUT},
    )


TASK = register(Task(
    name="few-shot",
    summary="Shared tanh feature map x and S per-task linear heads y over S 5-way 5-shot digit tasks; "
            "objectives: each task's query loss.",
    build=build,
    params={
        "S": Param(5, "number of few-shot tasks (objectives)", low=2, high=10),
        "hidden": Param(32, "features of the shared map 64 → hidden", low=2, high=256),
        "query": Param(10, "query images per class (the objectives)", low=1, high=SMALLEST_CLASS - SHOTS - HELD_OUT),
        "l2": Param(0.05, "ridge weight of the heads in the lower level", low=1e-6, high=100.0),
        "seed": Param(0, "seed of the tasks and of the feature map's start", low=0, high=2**31 - 1),
    },
))
