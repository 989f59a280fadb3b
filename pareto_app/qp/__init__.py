"""Exact solvers for the tiny quadratic programs behind each multi-gradient step.

Every MGDA / WC-MHGD / FORUM step solves a QP over the probability simplex whose Hessian is
an S x S Gram matrix of gradients (S <= ~20). Such Gram matrices are routinely singular
(collinear, duplicated or vanishing gradients) and badly scaled (gradient norms spanning
many orders of magnitude). One module a concept:

- `simplex`: the simplex QP, one instance on the CPU, with the min-norm rule and Eq. (5): DAQP's
  answer (`dual`, a dual active-set solver in C) when it comes with an optimality certificate,
  else the exact primal active-set method (`active_set`), which never needs a positive definite
  Hessian;
- `forum`: FORUM's QP (12) on the same two methods;
- `simplex_batched`, `forum_batched`: the same problems for B runs at once on their device, with
  nothing that waits for the host (issue 9);
- `reference`: cvxpy versions of them, the references of the tests and the benchmark.
"""

from .forum import forum_weights
from .forum_batched import forum_weights_batched
from .reference import forum_weights_reference, solve_simplex_qp_reference
from .simplex import min_norm_weights, solve_simplex_qp, wc_weights
from .simplex_batched import (
    min_norm_weights_batched,
    project_simplex_batched,
    solve_simplex_qp_batched,
    wc_weights_batched,
)

__all__ = [
    "forum_weights",
    "forum_weights_batched",
    "forum_weights_reference",
    "min_norm_weights",
    "min_norm_weights_batched",
    "project_simplex_batched",
    "solve_simplex_qp",
    "solve_simplex_qp_batched",
    "solve_simplex_qp_reference",
    "wc_weights",
    "wc_weights_batched",
]
