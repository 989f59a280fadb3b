"""`hyper-cleaning`: multi-objective data hyper-cleaning (forum §5.1, mobl-wc-mhgd §6).

S training sets of n digits each; set s has its labels corrupted at rate ρ_s (ρ = linspace(ρ_max/S,
ρ_max, S)) and lives in its own domain: a fixed symmetry T_s of the 8×8 image (upright,
mirrored, upside down, ...). One model y is trained on the weighted union; each training
sample i has a weight σ(x_i) in (0, 1), and x holds one logit per sample of all S sets
(pixels are centred on their domain's training mean, which keeps ∇²_yy g well conditioned):

    g(x, y)   = Σ_s (1/n) Σ_{i ∈ set s} σ(x_i) CE(model_y(T_s a_i), b̃_i) + (l2/2) ‖y‖²
    f_s(x, y) = (1/m) Σ_{j ∈ val s} CE(model_y(T_s a_j), b_j)          (clean labels b_j)

x reaches f_s only through y*(x), so the hypergradient −∇²_xy g [∇²_yy g]⁻¹ ∇_y f_s carries
the whole signal. The objectives conflict: a single model cannot fit all S domains at once,
so raising the weights of one domain's clean samples helps its f_s and hurts the others'.

`model="linear"` is multinomial logistic regression, y = [W (10×64), c (10)]: g(x, ·) is a
positively weighted sum of convex losses plus (l2/2)‖y‖², so it is l2-strongly convex for
every x. `model="mlp"` (64 → hidden → 10, tanh) makes g(x, ·) non-convex: declared not
strongly convex (use a penalty solver such as `wc-penalty`).

Your own data: `data` is a `.npz`/`.csv` file (`pareto_app.tasks.dataset.load`); K classes of
its (first) label column, d features. Features that form a square image (d = side²) get the
square's symmetries as domains, others a fixed random feature permutation per set; `depth`
hidden layers of `hidden` units make the MLP large enough for a GPU to matter.

Stochastic form: a lower batch is a uniform draw of training indices of the union (without
replacement), g ≈ S · mean_batch σ(x_i) CE_i + (l2/2)‖y‖², unbiased because every set has n
samples; an upper batch for objective s is a uniform draw of indices of validation set s.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..problem import Minibatches, Problem
from .dataset import corrupt_labels, dataset, domains
from .products import column_cross_entropy, columns_times
from .registry import Param, Task, register

MAX_SETS = 8  # the symmetries of the square: one domain each


Logits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _model(kind: str, hidden: int, depth: int, features: int, classes: int
           ) -> tuple[list[tuple[int, ...]], list[int], Logits]:
    """(shapes of y's blocks, their sizes, logits(y, a)) for a model on `features` inputs: samples as columns, a of
    shape (features, n) and the logits (classes, n) (`products.columns_times`)."""
    if kind == "linear":
        shapes = [(classes, features), (classes,)]
    else:
        widths = [features] + [hidden] * depth
        shapes = [s for fan_in, fan_out in zip(widths, widths[1:]) for s in ((fan_out, fan_in), (fan_out,))]
        shapes += [(classes, hidden), (classes,)]
    sizes = [math.prod(s) for s in shapes]

    def logits(y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        blocks = [p.reshape(s) for p, s in zip(torch.split(y, sizes), shapes)]
        for W, c in zip(blocks[:-2:2], blocks[1:-2:2]):
            # tanh, not ReLU: smooth, so ∇²_yy g exists everywhere for the HVP-based solvers.
            a = torch.tanh(columns_times(W, a) + c[:, None])
        W, c = blocks[-2:]
        return columns_times(W, a) + c[:, None]

    return shapes, sizes, logits


def build(*, device: torch.device, dtype: torch.dtype, S: int, max_rate: float, train_per_set: int,
          val_per_set: int, test_size: int, l2: float, model: str, hidden: int, depth: int, seed: int, data: str,
          label: str) -> Problem:
    source = dataset(data, label)
    need = S * (train_per_set + val_per_set + test_size)
    if need > len(source):
        raise ValueError(
            f"hyper-cleaning: S={S} sets of train_per_set={train_per_set} + val_per_set={val_per_set} + "
            f"test_size={test_size} samples need {need}; {source.name} has {len(source)}: accepted are "
            f"S·(train_per_set + val_per_set + test_size) ≤ {len(source)}")
    n, m = train_per_set, val_per_set
    classes, features = source.classes[0], source.dim
    rates = [max_rate * (s + 1) / S for s in range(S)]  # linspace(max_rate/S, max_rate, S)
    sizes_per_set = (n, m, test_size)
    splits = source.splits(sizes_per_set * S, seed, dtype, device)
    domain_maps = domains(source, S, seed)

    train_a, train_b, corrupted, val_a, val_b, test_a, test_b = ([] for _ in range(7))
    for s in range(S):
        perm = torch.as_tensor(domain_maps[s][1], device=device)
        tr, va, te = splits[3 * s:3 * s + 3]
        # A seed per set and per task seed: the corrupted indices differ between sets.
        noisy, mask = corrupt_labels(tr.labels, rates[s], seed=seed * 16 + s + 1, classes=classes)
        # Centre each domain's pixels on that domain's training mean (a fixed shift, applied
        # to its validation and test images too): raw [0, 1] pixels share a large mean
        # direction that makes ∇²_yy g about ten times stiffer (L_g ≈ 3 against ≈ 0.3), and
        # κ sets the inner steps D and so the cost of a step.
        centre = tr.features[:, perm].mean(dim=0)
        train_a.append(tr.features[:, perm] - centre)
        train_b.append(noisy)
        corrupted.append(mask)
        val_a.append(va.features[:, perm] - centre)
        val_b.append(va.labels)
        test_a.append(te.features[:, perm] - centre)
        test_b.append(te.labels)
    A, B, corrupted_mask = torch.cat(train_a), torch.cat(train_b), torch.cat(corrupted)  # the union, set-major
    VA, VB = torch.stack(val_a), torch.stack(val_b)  # [S, m, d], [S, m]
    # Samples as columns ([d, n]), the layout of the model's products.
    A_cols, VA_cols = A.T.contiguous(), [v.T.contiguous() for v in VA]
    test_cols = [t.T.contiguous() for t in test_a]
    shapes, sizes, logits = _model(model, hidden, depth, features, classes)
    p, q = S * n, sum(sizes)

    def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        losses = column_cross_entropy(logits(y, A_cols), B, reduction="none")
        # Σ_s (1/n) Σ_{i ∈ s}: every set has n samples, so one sum over the union divided by n.
        return (torch.sigmoid(x) * losses).sum() / n + 0.5 * l2 * (y * y).sum()

    def upper_s(s: int):
        def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return column_cross_entropy(logits(y, VA_cols[s]), VB[s])

        return f

    def lower_batch(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        losses = column_cross_entropy(logits(y, A_cols[:, idx]), B[idx], reduction="none")
        # g's data term is S · (mean over the union), so S · (mean over a uniform batch) is unbiased.
        return S * (torch.sigmoid(x[idx]) * losses).mean() + 0.5 * l2 * (y * y).sum()

    def upper_batch_s(s: int):
        def f(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return column_cross_entropy(logits(y, VA_cols[s][:, idx]), VB[s][idx])

        return f

    def draw(total: int, size: int, gen: torch.Generator) -> torch.Tensor:
        # Without replacement: still unbiased for the mean, and less variance; a batch at
        # least as large as the set is the set itself (the exact value).
        idx = torch.arange(total) if size >= total else torch.randperm(total, generator=gen)[:size]
        return idx.to(device)

    def sample_lower(size: int, gen: torch.Generator) -> torch.Tensor:
        return draw(p, size, gen)

    def sample_upper(s: int, size: int, gen: torch.Generator) -> torch.Tensor:
        return draw(m, size, gen)

    def evaluate(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        from sklearn.metrics import f1_score

        out: dict[str, float] = {}
        with torch.no_grad():
            y = y.to(device=device, dtype=dtype)
            for s in range(S):
                pred = logits(y, test_cols[s]).argmax(dim=0).cpu().numpy()
                truth = test_b[s].cpu().numpy()
                out[f"acc_{s + 1}"] = float((pred == truth).mean())
                out[f"f1_{s + 1}"] = float(f1_score(truth, pred, average="macro", labels=np.arange(classes),
                                                    zero_division=0))
            out["acc_mean"] = float(np.mean([out[f"acc_{s + 1}"] for s in range(S)]))
            out["f1_mean"] = float(np.mean([out[f"f1_{s + 1}"] for s in range(S)]))
            dropped = (x.to(device) < 0).cpu()  # σ(x) < 0.5
            mask = corrupted_mask.cpu()
            # Recall of the cleaning: corrupted samples down-weighted; and its false alarms.
            out["cleaning_recall"] = float(dropped[mask].double().mean()) if bool(mask.any()) else float("nan")
            out["clean_dropped"] = float(dropped[~mask].double().mean()) if bool((~mask).any()) else float("nan")
        return out

    if model == "linear":
        # The minimiser of g(0, ·) is near 0 at the start; 0 is the uniform predictor.
        y0 = torch.zeros(q, dtype=dtype)
    else:
        # A random start: at y = 0 every hidden unit is the same and the gradient of W1 vanishes.
        gen = torch.Generator().manual_seed(seed)
        scales = [1.0 / math.sqrt(features), 0.0] + [1.0 / math.sqrt(hidden), 0.0] * depth
        y0 = torch.cat([torch.randn(k, generator=gen, dtype=torch.float64) * sc for k, sc in zip(sizes, scales)])
        y0 = y0.to(dtype)
    domain_names = [domain_maps[s][0] for s in range(S)]
    return Problem(
        upper=[upper_s(s) for s in range(S)],
        lower=lower,
        x0=torch.zeros(p, dtype=dtype, device=device),
        y0=y0.to(device),
        strongly_convex=model == "linear",
        objective_names=[f"val loss {domain_names[s]} (rate {rates[s]:.2g})" for s in range(S)],
        minibatches=Minibatches(upper=[upper_batch_s(s) for s in range(S)], lower=lower_batch,
                                sample_upper=sample_upper, sample_lower=sample_lower),
        # CE of the uniform predictor is ln K; a margin keeps the start inside the box.
        reference_point=[1.1 * math.log(classes)] * S,
        evaluate=evaluate,
        data={"rates": rates, "domains": domain_names, "dataset": source.name, "corrupted": corrupted_mask.cpu().numpy(),
              "set_of_sample": np.repeat(np.arange(S), n), "shapes": shapes},
    )


TASK = register(Task(
    name="hyper-cleaning",
    summary="Per-sample weights σ(x) on S corrupted training sets, each in its own image domain, one shared "
            "model y; objectives: each set's clean validation loss.",
    build=build,
    params={
        "S": Param(5, "number of corrupted training sets (objectives), each in its own domain", low=2, high=MAX_SETS),
        "max_rate": Param(0.5, "largest corruption rate; set s has rate max_rate·s/S", low=0.0, high=0.9),
        "train_per_set": Param(100, "training samples per set (one weight each)", low=10, high=1_000_000),
        "val_per_set": Param(50, "clean validation samples per set (the objectives)", low=10, high=1_000_000),
        "test_size": Param(150, "clean held-out test samples per set (evaluate)", low=10, high=1_000_000),
        "l2": Param(0.01, "ridge weight of the model in the lower level", low=1e-6, high=100.0),
        "model": Param("linear", "linear (strongly convex lower level) or mlp (non-convex)",
                       choices=("linear", "mlp")),
        "hidden": Param(32, "hidden units per layer of the mlp model", low=2, high=4096),
        "depth": Param(1, "hidden layers of the mlp model", low=1, high=4),
        "seed": Param(0, "seed of the splits, the corruption and the mlp start", low=0, high=2**31 - 1),
        "data": Param("", "your data set: a .npz (X, y) or .csv file; empty for scikit-learn's digits"),
        "label": Param("label", "the label column of a .csv data file"),
    },
))
