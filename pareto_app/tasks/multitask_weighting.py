"""`multitask-weighting`: loss weights of S tasks on the same digits, one shared model (forum §5.2).

Every digit image has S labels, one per task: which digit (10 classes), its parity, whether
it is ≥ 5, the digit mod 3 (the first S of these). Task t is labelled on a set I_t of the n
training images: the main task (digit) on all of them, each auxiliary task on its own random
`aux_fraction` of them (auxiliary labels are the scarce ones). x ∈ R^S are loss-weight
logits, α = softmax(x), and y = [Z, W_2, ..., W_S] is one linear model:

    logits_1(a) = Z ā,   logits_t(a) = C_t Z ā + W_t ā  (t ≥ 2),   ā = [a − mean of training a, 1] ∈ R^65
    g(x, y)   = Σ_t α_t L_t^train(y) + (l2/2) ‖y‖²,     L_t^train = (1/|I_t|) Σ_{i ∈ I_t} CE(logits_t(a_i), b_ti)
    f_t(x, y) = L_t^val(y) / L_t^val(y*(0))   (`relative`, the default)   or   L_t^val(y)

Z (10×65) is the shared linear component, ten digit scores; C_t is a fixed c_t×10 matrix
that averages the scores of the digits in each class of task t; W_t (c_t×65) is auxiliary
task t's own head. Every logit is linear in y and cross-entropy is convex in the logits, so
g(x, ·) is a positively weighted sum of convex functions plus (l2/2)‖y‖²: l2-strongly convex
for every x. Validation images carry every task's label.

How the weights trade the tasks off. Z and the heads share the one ridge term, so raising
α_t lowers task t's effective regularisation l2/α_t and raises everyone else's (softmax keeps
Σα = 1), and it pulls the shared scores Z towards what task t wants. Where every task
underfits that is a pure trade-off: more weight on t lowers f_t and raises the others. An
auxiliary head fitted on few labels overfits instead, while the digit task, fitted on all
labels, teaches Z scores from which C_t reads every auxiliary task. So equal weights (x = 0,
the start) are dominated: moving weight to the digit task first lowers every validation
loss, until the auxiliary heads lack weight and the losses conflict (the Pareto set lies
towards the digit corner; each auxiliary loss is lowest at a small weight of its own). With
every task fully labelled (aux_fraction = 1) the equal-weight point is Pareto stationary
already, and no solver could improve every objective from there.

`relative` divides each validation loss by its value at equal weights: cross-entropies of a
10-way and a 2-way task are not in common units, and the weighted-Chebyshev solvers compare
r_t f_t across tasks. In these units the start is 1 in every objective, as in the Δp metric
of forum §5.2 (relative to a baseline), and a WC optimum that beats 1 in its largest
objective beats the start in all of them.

Pixels are centred on the training mean: raw [0, 1] pixels share a large mean direction
that makes ∇²_yy g stiffer, and κ sets the inner steps of the hypergradient solvers. y0 is
y*(x0), solved at build time by L-BFGS, so a run starts on the lower level's solution and
what it gains comes from x.

Your own data: `data` is a `.npz` whose `y` has one label column per task (or a `.csv` whose
`label` names them, comma-separated); the first column is the main task, Z's classes. C_t
then maps each main class to the task-t class most of its samples carry (for the digits'
derived tasks that is exactly the map above; an auxiliary class no main class maps to is
read by its head W_t alone).

Stochastic form: a lower batch holds, for each task t, a uniform draw (with replacement) of
training images from I_t; task t's term is its mean CE over its own draw, unbiased for
L_t^train. An upper batch for objective t is a uniform draw of validation images.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..problem import Minibatches, Problem
from .dataset import Dataset, dataset, digits
from .products import data_times
from .registry import Param, Task, register

# (name, label of each digit 0..9): the digits' tasks, in the order S picks them.
TASKS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("digit", tuple(range(10))),
    ("parity", tuple(d % 2 for d in range(10))),
    ("digit ≥ 5", tuple(int(d >= 5) for d in range(10))),
    ("digit mod 3", tuple(d % 3 for d in range(10))),
)


def _digit_tasks() -> Dataset:
    """The digits with one label column per task of TASKS."""
    source = digits()
    maps = np.array([labels for _, labels in TASKS])  # [T, 10]
    labels = maps[:, source.labels[:, 0]].T  # [n, T]
    return Dataset(source.name, source.features, labels, tuple(name for name, _ in TASKS),
                   tuple(int(m.max()) + 1 for m in maps))


def _aggregation(main: np.ndarray, labels: np.ndarray, main_classes: int, classes: int, dtype: torch.dtype
                 ) -> torch.Tensor:
    """C_t: row k averages the main-task scores of the main classes whose samples mostly carry label k.

    An average, not a sum, so ‖C_t‖ ≤ 1 and Z's curvature (hence κ) does not grow with
    the number of main classes per class.
    """
    counts = np.zeros((main_classes, classes))
    np.add.at(counts, (main, labels), 1)
    majority = counts.argmax(axis=1)  # the task-t class of each main class
    C = torch.zeros(classes, main_classes, dtype=dtype)
    C[torch.tensor(majority), torch.arange(main_classes)] = 1.0
    return C / C.sum(dim=1, keepdim=True).clamp(min=1.0)


def lower_solution(lower: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, q: int,
                   tol: float = 1e-9) -> torch.Tensor:
    """y*(x) by L-BFGS from 0, to ‖∇_y g‖_∞ ≤ tol (g is smooth and strongly convex: ~100 evaluations).

    In float64 the gradient's round-off floor is about 1e-10, so a tighter `tol` only burns
    the iteration budget.
    """
    y = torch.zeros(q, dtype=x.dtype, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([y], lr=1.0, max_iter=400, tolerance_grad=tol, tolerance_change=0.0,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = lower(x, y)
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(closure)
    return y.detach()


def build(*, device: torch.device, dtype: torch.dtype, S: int, train_size: int, aux_fraction: float,
          val_size: int, test_size: int, l2: float, relative: bool, seed: int, data: str, label: str) -> Problem:
    source = dataset(data, label) if data else _digit_tasks()
    if S > len(source.classes):
        raise ValueError(f"multitask-weighting: S={S} tasks, but {source.name} has {len(source.classes)} label "
                         f"column(s) {list(source.label_names)}: accepted is S ≤ {len(source.classes)}")
    if train_size + val_size + test_size > len(source):
        raise ValueError(
            f"multitask-weighting: train_size={train_size} + val_size={val_size} + test_size={test_size} samples "
            f"are {train_size + val_size + test_size}; {source.name} has {len(source)}: accepted is a sum ≤ {len(source)}")
    counts = [train_size] + [int(round(aux_fraction * train_size))] * (S - 1)
    if counts[-1] < 2:
        raise ValueError(f"multitask-weighting: aux_fraction={aux_fraction} of train_size={train_size} labels "
                         f"{counts[-1]} image(s) per auxiliary task; accepted: at least 2")
    # Data and y0 are made in float64 on the CPU, then moved: every dtype and device sees
    # the same problem (and the same start).
    cpu, f64 = torch.device("cpu"), torch.float64
    tr, va, te = source.splits((train_size, val_size, test_size), seed, f64, cpu)
    centre = tr.features.mean(dim=0)

    def design(a: torch.Tensor) -> torch.Tensor:
        return torch.cat([a - centre, torch.ones(len(a), 1, dtype=f64)], dim=1)

    names = list(source.label_names[:S])
    classes = list(source.classes[:S])
    main_classes, features = classes[0], source.dim + 1  # d centred features and a constant 1 (the bias)
    # Which training images carry task t's label: all for the main task, a random subset
    # (its own per task) for each auxiliary one.
    rng = np.random.default_rng(seed + 7919)
    labelled = np.zeros((S, train_size), dtype=bool)
    for t in range(S):
        labelled[t, rng.choice(train_size, size=counts[t], replace=False)] = True
    counts = labelled.sum(axis=1)

    # y = [Z, W_2, ..., W_S]: the digit task reads the shared scores Z alone (C_1 = I); a head
    # of its own would only duplicate Z.
    shapes = [(main_classes, features)] + [(c, features) for c in classes[1:]]
    sizes = [math.prod(s) for s in shapes]
    q = sum(sizes)
    offsets = np.concatenate([[0], np.cumsum(classes)]).tolist()  # task t's logits: columns offsets[t]:offsets[t+1]
    total = offsets[-1]

    def make(dt: torch.dtype, dev: torch.device, units: list[float]):
        """The functions on `dev` in `dt`; objective t is multiplied by units[t]."""
        A_tr, A_va, A_te = (design(s.features).to(device=dev, dtype=dt) for s in (tr, va, te))
        # All tasks' logits from one matmul: rows V = [C_1; ...; C_S] Z + [0; W_2; ...; W_S].
        C = torch.cat([_aggregation(source.labels[:, 0], source.labels[:, t], main_classes, classes[t], dt)
                       for t in range(S)]).to(dev)  # [Σc, K]
        zeros = torch.zeros(main_classes, features, dtype=dt, device=dev)
        # The true class of each task as a column of the Σc logits, one-hot, and the block
        # indicator of each task, so the true logits of all tasks are one product.
        cols = tr.columns[:, :S].T + torch.tensor(offsets[:-1])[:, None]  # [S, n]
        onehot_tr = torch.zeros(train_size, total, dtype=dt).scatter(1, cols.T, 1.0).to(dev)
        segment = torch.zeros(total, S, dtype=dt)
        for t in range(S):
            segment[offsets[t]:offsets[t + 1], t] = 1.0
        segment = segment.to(dev)
        labels_va = va.columns[:, :S].to(dev)  # [m, S]
        labels_te = te.columns[:, :S].to(dev)
        # Per-sample weight of task t's training loss: 1/|I_t| on I_t, 0 elsewhere, so one
        # weighted sum over all n images is L_t^train (no data-dependent indexing in g).
        M = torch.tensor(labelled.T / counts, dtype=dt, device=dev)  # [n, S]

        def rows(y: torch.Tensor) -> torch.Tensor:
            """V [Σc, 65]: the weights of every task's logits."""
            Z = y[:sizes[0]].reshape(main_classes, features)
            return C @ Z + torch.cat([zeros, y[sizes[0]:].reshape(-1, features)])

        def train_losses(y: torch.Tensor, A: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
            """[n, S]: the cross-entropy of every task on every image (log-sum-exp of its block − true logit)."""
            logits = data_times(A, rows(y))
            lse = torch.stack([torch.logsumexp(logits[:, offsets[t]:offsets[t + 1]], dim=1) for t in range(S)], dim=1)
            return lse - (logits * onehot) @ segment

        def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            alpha = torch.softmax(x, dim=0)
            return (M * train_losses(y, A_tr, onehot_tr)).sum(dim=0) @ alpha + 0.5 * l2 * (y * y).sum()

        def lower_batch(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            # idx [S, b]: row t is a draw from I_t. All tasks' losses on all S·b images cost
            # little; task t's term is the mean of its own column over its own row.
            alpha = torch.softmax(x, dim=0)
            flat = idx.reshape(-1)
            losses = train_losses(y, A_tr[flat], onehot_tr[flat]).reshape(S, -1, S)
            return torch.diagonal(losses, dim1=0, dim2=2).mean(dim=0) @ alpha + 0.5 * l2 * (y * y).sum()

        def task_logits(y: torch.Tensor, A: torch.Tensor, t: int) -> torch.Tensor:
            return A @ rows(y)[offsets[t]:offsets[t + 1]].T

        def upper_s(t: int):
            def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return units[t] * F.cross_entropy(task_logits(y, A_va, t), labels_va[:, t])

            return f

        def upper_batch_s(t: int):
            def f(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                return units[t] * F.cross_entropy(task_logits(y, A_va[idx], t), labels_va[idx, t])

            return f

        def accuracy(y: torch.Tensor) -> dict[str, float]:
            with torch.no_grad():
                y = y.to(device=dev, dtype=dt)
                hits = [(task_logits(y, A_te, t).argmax(dim=1) == labels_te[:, t]).to(dt).mean() for t in range(S)]
                return {f"test acc: {names[t]}": float(hits[t]) for t in range(S)}

        return lower, lower_batch, upper_s, upper_batch_s, accuracy

    # y0 = y*(x0) in float64 on the CPU, and the validation losses there (the units of `relative`).
    lower64, _, upper64, _, _ = make(f64, cpu, [1.0] * S)
    x_start = torch.zeros(S, dtype=f64)
    y_start = lower_solution(lower64, x_start, q)
    baseline = [float(upper64(t)(x_start, y_start)) for t in range(S)]
    units = [1.0 / b for b in baseline] if relative else [1.0] * S

    lower, lower_batch, upper_s, upper_batch_s, accuracy = make(dtype, device, units)

    members = [torch.from_numpy(np.flatnonzero(labelled[t])) for t in range(S)]  # I_t as indices

    def sample_lower(size: int, gen: torch.Generator) -> torch.Tensor:
        # [S, size]: row t is a uniform draw (with replacement, so unbiased at any size) from
        # the images labelled for task t. Drawing from all images and reweighting the scarce
        # labels by n/|I_t| would also be unbiased, but a small batch would then see a few
        # auxiliary labels at 1/aux_fraction times the weight: a curvature spike that breaks
        # the Neumann series of the stochastic solvers.
        return torch.stack([m[torch.randint(len(m), (size,), generator=gen)] for m in members]).to(device)

    def sample_upper(s: int, size: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(val_size, (size,), generator=gen).to(device)

    def evaluate(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        out = accuracy(y)
        out["test acc: mean"] = float(np.mean(list(out.values())))
        return out

    return Problem(
        upper=[upper_s(t) for t in range(S)],
        lower=lower,
        x0=torch.zeros(S, dtype=dtype, device=device),
        y0=y_start.to(device=device, dtype=dtype),
        strongly_convex=True,
        objective_names=[f"val loss: {name}" + (" (rel.)" if relative else "") for name in names],
        minibatches=Minibatches(upper=[upper_batch_s(t) for t in range(S)], lower=lower_batch,
                                sample_upper=sample_upper, sample_lower=sample_lower),
        # 20% worse than equal weighting, in every objective: the front lies around the start.
        reference_point=[1.2 * b * u for b, u in zip(baseline, units)],
        evaluate=evaluate,
        data={"tasks": names, "classes": classes, "labelled": labelled, "shapes": shapes,
              "y_star_x0": y_start.numpy(), "baseline": baseline},
    )


TASK = register(Task(
    name="multitask-weighting",
    summary="Loss weights softmax(x) of S tasks on the same digits (digit, parity, ≥ 5, mod 3), one shared "
            "model y; objectives: each task's validation loss.",
    build=build,
    params={
        "S": Param(3, "number of tasks (objectives): digit, parity, digit ≥ 5, digit mod 3 (your data: its first S "
                   "label columns)", low=2, high=8),
        "train_size": Param(300, "training images (all labelled for the digit task)", low=20, high=1_000_000),
        "aux_fraction": Param(0.2, "fraction of the training images labelled for each auxiliary task",
                              low=0.01, high=1.0),
        "val_size": Param(300, "validation images, labelled for every task (the objectives)", low=10, high=1_000_000),
        "test_size": Param(500, "held-out test images (evaluate)", low=10, high=1_000_000),
        "l2": Param(0.003, "ridge weight of the model in the lower level", low=1e-5, high=10.0),
        "relative": Param(True, "objectives relative to their value at equal weights (the start)"),
        "seed": Param(0, "seed of the splits and of the auxiliary labels", low=0, high=2**31 - 1),
        "data": Param("", "your data set: a .npz (X, y with one column per task) or .csv file; empty for the digits"),
        "label": Param("label", "the label column(s) of a .csv data file, comma-separated, main task first"),
    },
))
