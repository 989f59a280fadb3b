"""Per-call timing of the fast simplex-QP solver against the cvxpy reference.

    python -m pareto_app.bench_qp

The instances mimic a WC-MHGD step: a Gram matrix of fewer gradients than objectives (so
it is singular) plus a linear term.  The baseline is cvxpy called afresh on each problem,
as a solver loop would call it; a parametrised cvxpy problem (compiled once per size,
only its parameter values changed per call) is timed as well, for information only.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from .qp import solve_simplex_qp, solve_simplex_qp_reference

Instance = tuple[np.ndarray, np.ndarray]


def _instances(size: int, calls: int, rng: np.random.Generator) -> list[Instance]:
    out = []
    for _ in range(calls):
        rank = int(rng.integers(max(1, size - 2), size)) if size > 1 else 1
        grads = rng.standard_normal((rank, size)) * rng.uniform(0.5, 2.0, size)
        gram = grads.T @ grads
        u = 10.0 ** rng.uniform(-3.0, 0.0)
        out.append((gram, -u * rng.uniform(0.0, 2.0, size) * float(np.abs(gram).max())))
    return out


def _per_call_us(solve: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 instances: Sequence[Instance], repeats: int) -> tuple[float, list[np.ndarray]]:
    """Mean microseconds per call over all instances, best of `repeats` passes (the
    minimum filters out pauses of a shared machine; every solver gets the same passes)."""
    solve(*instances[0])  # warm-up: imports, caches, first-call compilation
    best, answers = np.inf, []
    for _ in range(repeats):
        start = time.perf_counter()
        answers = [solve(Q, c) for Q, c in instances]
        best = min(best, time.perf_counter() - start)
    return best / len(instances) * 1e6, answers


def _parametrised_solver(size: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """cvxpy problem built once with Parameters; each call only sets values and solves."""
    import cvxpy as cp

    factor, linear, w = cp.Parameter((size, size)), cp.Parameter(size), cp.Variable(size)
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(factor.T @ w) + linear @ w),
                         [w >= 0, cp.sum(w) == 1])

    def solve(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
        tau = max(float(np.abs(Q).max()), float(np.abs(c).max()))
        vals, vecs = np.linalg.eigh(Q / tau)
        factor.value = vecs * np.sqrt(np.clip(vals, 0.0, None))
        linear.value = c / tau
        problem.solve(solver="CLARABEL")
        return np.asarray(w.value, dtype=float)

    return solve


def _relative_gap(Q: np.ndarray, c: np.ndarray, fast: np.ndarray, ref: np.ndarray) -> float:
    """(f(fast) - f(ref)) on the instance scaled to max |Q|, |c| = 1, relative to max(1, |f|)."""
    tau = max(float(np.abs(Q).max()), float(np.abs(c).max()))
    f_fast = (0.5 * fast @ Q @ fast + c @ fast) / tau
    f_ref = (0.5 * ref @ Q @ ref + c @ ref) / tau
    return float((f_fast - f_ref) / max(1.0, abs(f_ref)))


def run_qp_bench(sizes: Sequence[int] = (2, 3, 5, 10), calls: int = 200, seed: int = 0,
                 *, repeats: int = 2) -> list[dict]:
    """Time solve_simplex_qp against the cvxpy reference on `calls` instances per size.

    Returns one dict per size: fast_us, reference_us (plain per-call cvxpy), ratio
    (reference_us / fast_us), parametrised_us (cvxpy with Parameters, information only),
    max_abs_gap (largest |objective difference|, scaled as in _relative_gap) and
    max_fast_excess (largest amount by which the fast objective exceeds the reference's;
    <= 0 means the fast solver was never worse).
    """
    rng = np.random.default_rng(seed)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's "solution may be inaccurate" notes
        for size in sizes:
            instances = _instances(size, calls, rng)
            fast_us, fast = _per_call_us(solve_simplex_qp, instances, repeats)
            ref_us, ref = _per_call_us(solve_simplex_qp_reference, instances, repeats)
            param_us, _ = _per_call_us(_parametrised_solver(size), instances, repeats)
            gaps = [_relative_gap(Q, c, a, b) for (Q, c), a, b in zip(instances, fast, ref, strict=True)]
            rows.append({
                "size": size,
                "calls": calls,
                "fast_us": fast_us,
                "reference_us": ref_us,
                "ratio": ref_us / fast_us,
                "parametrised_us": param_us,
                "max_abs_gap": max(abs(g) for g in gaps),
                "max_fast_excess": max(gaps),
            })
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """Plain-text table of run_qp_bench's rows."""
    head = (f"{'S':>3} {'fast us':>9} {'cvxpy us':>10} {'ratio':>7} {'param us':>9} "
            f"{'max |gap|':>10} {'fast excess':>12}")
    lines = [head]
    for r in rows:
        lines.append(f"{r['size']:>3} {r['fast_us']:>9.1f} {r['reference_us']:>10.1f} "
                     f"{r['ratio']:>7.0f} {r['parametrised_us']:>9.1f} "
                     f"{r['max_abs_gap']:>10.1e} {r['max_fast_excess']:>12.1e}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(run_qp_bench()))
