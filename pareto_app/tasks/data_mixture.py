"""`data-mixture`: mixture weights over N data sources, a model trained on the mixture (ecmo poster).

Data curation as in the ecmo poster's experiment: x ∈ R^N are mixture logits, α = softmax(x)
the weight of data source T_n (m images each), y the model, trained on the α-weighted mixture
*without* regularisation; the upper level is M attribute losses on clean-labelled validation
data V_k:

    g(x, y)   = Σ_n α_n (1/(2m)) Σ_{i ∈ T_n} ‖W ā_i − e_{b_i}‖²,     y = vec(W), W ∈ R^{10×65}
    f_k(x, y) = c_k (1/(2|V_k|)) Σ_{j ∈ V_k} ‖W ā_j − e_{b_j}‖²

Least-squares regression onto one-hot targets (prediction: argmax W ā). c_k = 1 / (f_k at the
start) with `relative` (the default), else 1: the WC solvers compare λ_k f_k, and in these
units the start is 1 in every objective, so a WC optimum that beats 1 in its largest
objective beats the start in all of them.

Features. ā = [(mask ⊙ a − ā_train) Π, 1]: the 14 pixels inked in fewer than 5% of all 1797
digits (the left and right borders; 3 are never inked) are masked to 0 — unregularised least
squares otherwise gives a rarely inked pixel a huge weight and one validation image a huge
error — and the rest are centred and ZCA-whitened (Π) on the union of the sources. Π is
invertible on the span of the training images, so least squares fits and predicts as on raw
pixels; it only makes ∇²_yy g(x0, ·) a projector (eigenvalues 1 and 0) instead of spreading
over four decades, so that `wc-penalty`'s y settles on the lower level in tens of steps
rather than thousands (with raw pixels its x barely moves in a few thousand steps).

Convex, not strongly convex. ∇²_yy g = (Σ_n α_n Ā_nᵀĀ_n / m) ⊗ I_10 ⪰ 0 is singular: the masked
pixels are 0 in every image, so their weights enter neither g nor f. A minimiser always exists
(least squares), unlike for unregularised logistic regression on separable data, whose
minimiser escapes to infinity. Hypergradients are undefined; the problem is the ECMO problem
with h = ∇_y g = 0, the home ground of `wc-penalty` (the hypergradient solvers refuse it).

Sources (the first N; disjoint):                   Attributes (the first M; validation):
  1. digits 0-4     clean, digits 0-4 only            1. digits 0-4     clean digits 0-4
  2. digits 5-9     clean, digits 5-9 only            2. digits 5-9     clean digits 5-9
  3. shifted        all digits, one pixel right       3. shifted        all digits, one pixel right
  4. mislabelled    all digits, a `label_noise`        4. noisy pixels   all digits, pixel noise σ
                    fraction of labels wrong
  5. noisy pixels   all digits, pixel noise σ = `pixel_noise`

The attributes conflict: a class-restricted source fits its own half of the digits and not
the other (attributes 1 and 2 pull α_1 and α_2 apart), and the shifted source serves the
shifted attribute at the clean ones' expense. The mislabelled source (default: labels
independent of the images) helps no attribute, so equal weights (x = 0, the start) are
dominated: every attribute improves as its weight shrinks.

Your own data: `data` is a `.npz`/`.csv` file (`pareto_app.tasks.dataset.load`). Sources 1 and 2
then take the lower and upper half of its classes, "shifted" moves an image one pixel right
(features that are not a square image one place along), and the masked features are those
above their minimum in fewer than 5% of the samples.

y0 is the minimum-norm least-squares solution for equal weights, so the start is feasible
(h(x0, y0) = 0); `mixture_solution` gives y*(x) for any x. `wc-penalty` moves x and y jointly
and trades feasibility against the objectives through its penalties: its iterates lie only
near the lower level's solution set, and part of what its history shows is bought with
that violation. Re-solving the lower level at its x gives the bilevel objectives of that x.
"""

from __future__ import annotations

import numpy as np
import torch

from ..problem import Problem
from .dataset import Dataset, Split, corrupt_labels, dataset
from .products import data_times
from .registry import Param, Task, register

SOURCES = ("digits 0-4", "digits 5-9", "shifted", "mislabelled", "noisy pixels")
ATTRIBUTES = ("digits 0-4", "digits 5-9", "shifted", "noisy pixels")
RARE = 0.05  # pixels inked in fewer than this fraction of all digits are masked


def _names(source: Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sources' and attributes' names: the digits' own, or by class halves for other data."""
    if source.is_digits:
        return SOURCES, ATTRIBUTES
    half, k = source.classes[0] // 2, source.classes[0]
    low, high = f"classes 0-{half - 1}", f"classes {half}-{k - 1}"
    noisy = "noisy pixels" if source.side else "noisy features"
    return (low, high, "shifted", "mislabelled", noisy), (low, high, "shifted", noisy)


def _alive(source: Dataset) -> np.ndarray:
    """The features above their minimum in at least 5% of the samples (for the digits: inked pixels, 50 of 64)."""
    return (source.features > 0).mean(axis=0) >= RARE


def _shift(a: np.ndarray, side: int | None) -> np.ndarray:
    """Every image moved one pixel to the right (the left column blank); other features one place along."""
    if side is None:
        out = np.zeros_like(a)
        out[:, 1:] = a[:, :-1]
        return out
    img = a.reshape(-1, side, side)
    out = np.zeros_like(img)
    out[:, :, 1:] = img[:, :, :-1]
    return out.reshape(-1, side * side)


def weighted_lstsq(features: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The minimum-norm minimiser of ½ Σ_i w_i ‖W a_i − t_i‖², as vec(W) (float64, W row-major)."""
    root = np.sqrt(weights)[:, None]
    solution, *_ = np.linalg.lstsq(root * features, root * targets, rcond=None)  # [65, 10] = Wᵀ
    return solution.T.reshape(-1)


def mixture_solution(problem: Problem, x: torch.Tensor) -> torch.Tensor:
    """y*(x): the minimum-norm least-squares model for the mixture softmax(x) (on x's device and dtype)."""
    data = problem.data
    alpha = torch.softmax(x.detach().double().cpu(), dim=0).numpy()
    weights = alpha[data["source_of_sample"]] / data["source_size"]
    y = weighted_lstsq(data["train_features"], data["train_targets"], weights)
    return torch.as_tensor(y, dtype=x.dtype, device=x.device)


def build(*, device: torch.device, dtype: torch.dtype, N: int, M: int, source_size: int, val_size: int,
          test_size: int, pixel_noise: float, label_noise: float, relative: bool, seed: int, data: str,
          label: str) -> Problem:
    origin = dataset(data, label)
    total = len(origin)
    pool = total - val_size - test_size
    if N * source_size > pool:
        raise ValueError(
            f"data-mixture: N={N} sources of source_size={source_size} samples, val_size={val_size} and "
            f"test_size={test_size} need {N * source_size + val_size + test_size}; {origin.name} has {total}: "
            f"accepted is N·source_size + val_size + test_size ≤ {total}")
    classes, side = origin.classes[0], origin.side
    features = origin.dim + 1  # and a constant 1 (the bias)
    source_names, attribute_names = _names(origin)
    half = classes // 2
    val, test, rest = origin.splits((val_size, test_size, pool), seed, torch.float64, torch.device("cpu"))
    alive = _alive(origin)
    rng = np.random.default_rng(seed + 104729)

    def noisy(a: np.ndarray) -> np.ndarray:
        return a + pixel_noise * rng.standard_normal(a.shape)

    # Disjoint sources drawn from the pool in one random order; sources 1 and 2 take only
    # their half of the classes.
    pool_a, pool_b = rest.features.numpy(), rest.labels.numpy()
    free = np.ones(pool, dtype=bool)
    order = rng.permutation(pool)
    sources_a, sources_b = [], []
    for kind, name in zip(SOURCES[:N], source_names):
        wanted = {"digits 0-4": pool_b < half, "digits 5-9": pool_b >= half}.get(kind, np.ones(pool, dtype=bool))
        pick = [i for i in order if free[i] and wanted[i]][:source_size]
        if len(pick) < source_size:
            raise ValueError(f"data-mixture: source {name!r} needs source_size={source_size} images; only {len(pick)} "
                             f"of its kind are left of the {pool} outside validation and test: lower source_size")
        free[pick] = False
        a, b = pool_a[pick], pool_b[pick]
        if kind == "noisy pixels":
            a = noisy(a)
        elif kind == "mislabelled":
            b = corrupt_labels(torch.as_tensor(b), label_noise, seed=seed + 7, classes=classes)[0].numpy()
        elif kind == "shifted":
            a = _shift(a, side)
        sources_a.append(a)
        sources_b.append(b)
    train_a = np.concatenate(sources_a) * alive
    train_b = np.concatenate(sources_b)
    centre = train_a.mean(axis=0)  # zero on the masked pixels
    # ZCA whitening on the training images' span: an invertible map there, so least squares
    # fits (and predicts) exactly as on raw pixels, but ∇²_yy g(0, ·) becomes a projector (its
    # eigenvalues 1 and 0) instead of spanning four decades. WC-Penalty's y then settles on
    # the lower level in tens of steps, not thousands; with raw pixels its x barely moves
    # within a few thousand steps. Directions without training variance (the masked pixels
    # above all) map to 0, and they are the null space of ∇²_yy g.
    variances, U = np.linalg.eigh(np.cov(train_a.T, bias=True))
    kept = variances > 1e-8 * variances.max()
    whiten = (U[:, kept] / np.sqrt(variances[kept])) @ U[:, kept].T

    def design(a: np.ndarray) -> np.ndarray:
        return np.concatenate([(a * alive - centre) @ whiten, np.ones((len(a), 1))], axis=1)

    eye = np.eye(classes)
    A, Y = design(train_a), eye[train_b]
    source_of_sample = np.repeat(np.arange(N), source_size)

    def attribute_sets(split: Split) -> list[tuple[np.ndarray, np.ndarray]]:
        a, b = split.features.numpy(), split.labels.numpy()
        sets = {"digits 0-4": (a[b < half], b[b < half]), "digits 5-9": (a[b >= half], b[b >= half]),
                "shifted": (_shift(a, side), b), "noisy pixels": (noisy(a), b)}
        return [(design(sets[k][0]), sets[k][1]) for k in ATTRIBUTES[:M]]

    val_sets, test_sets = attribute_sets(val), attribute_sets(test)
    y_start = weighted_lstsq(A, Y, np.full(len(A), 1.0 / (N * source_size)))

    def val_loss(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
        residual = a @ y.reshape(classes, features).T - eye[b]
        return 0.5 * float((residual * residual).sum()) / len(a)

    baseline = [val_loss(a, b, y_start) for a, b in val_sets]
    units = [1.0 / v for v in baseline] if relative else [1.0] * M

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    A_t, Y_t = tensor(A), tensor(Y)
    V = [(tensor(a), tensor(eye[b])) for a, b in val_sets]
    T = [(tensor(a), torch.as_tensor(b, device=device)) for a, b in test_sets]

    def model(y: torch.Tensor) -> torch.Tensor:
        return y.reshape(classes, features)

    def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        alpha = torch.softmax(x, dim=0)
        residual = data_times(A_t, model(y)) - Y_t  # [N·m, 10], source-major
        per_source = (residual * residual).sum(dim=1).reshape(N, source_size).sum(dim=1)
        return 0.5 * (alpha @ per_source) / source_size

    def upper_k(k: int):
        a, t = V[k]
        unit = units[k]

        def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            residual = data_times(a, model(y)) - t
            return unit * 0.5 * (residual * residual).sum() / len(a)

        return f

    def evaluate(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        out: dict[str, float] = {}
        with torch.no_grad():
            W = model(y.to(device=device, dtype=dtype))
            for k in range(M):
                a, b = T[k]
                out[f"test acc: {attribute_names[k]}"] = float((a @ W.T).argmax(dim=1).eq(b).double().mean())
        out["test acc: mean"] = float(np.mean(list(out.values())))
        return out

    suffix = " (rel.)" if relative else ""
    return Problem(
        upper=[upper_k(k) for k in range(M)],
        lower=lower,
        x0=torch.zeros(N, dtype=dtype, device=device),
        y0=tensor(y_start),
        strongly_convex=False,
        objective_names=[f"val loss: {name}{suffix}" for name in attribute_names[:M]],
        # ½‖0 − e_b‖² = 0.5 per image: the loss of the model that predicts nothing.
        reference_point=[0.5 * u for u in units],
        evaluate=evaluate,
        data={"sources": list(source_names[:N]), "attributes": list(attribute_names[:M]), "dataset": origin.name,
              "train_features": A, "train_targets": Y, "source_of_sample": source_of_sample, "source_size": source_size,
              "alive_pixels": alive, "baseline": baseline, "y_start": y_start},
    )


TASK = register(Task(
    name="data-mixture",
    summary="Mixture weights softmax(x) over N digit sources of differing quality, a least-squares model "
            "trained on the mixture (convex lower level, no regularisation); objectives: M attribute losses.",
    build=build,
    params={
        "N": Param(4, "number of data sources: digits 0-4, digits 5-9, shifted, mislabelled, noisy pixels",
                   low=2, high=5),
        "M": Param(3, "number of attributes (objectives): digits 0-4, digits 5-9, shifted, noisy pixels",
                   low=2, high=4),
        "source_size": Param(200, "training images per source", low=10, high=1_000_000),
        "val_size": Param(300, "validation images (the attributes' losses)", low=20, high=1_000_000),
        "test_size": Param(400, "held-out test images (evaluate)", low=20, high=1_000_000),
        "pixel_noise": Param(0.3, "pixel noise σ of the noisy source and attribute (pixels in [0, 1])",
                             low=0.0, high=2.0),
        "label_noise": Param(0.9, "fraction of the mislabelled source's labels replaced by other classes "
                             "(0.9: labels independent of the images)", low=0.0, high=0.9),
        "relative": Param(True, "objectives relative to their value at equal weights (the start)"),
        "seed": Param(0, "seed of the splits, the sources and the corruptions", low=0, high=2**31 - 1),
        "data": Param("", "your data set: a .npz (X, y) or .csv file; empty for the digits (sources 1-2 then "
                      "split its classes in halves)"),
        "label": Param("label", "the label column of a .csv data file"),
    },
))
