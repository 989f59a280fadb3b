"""MGDA on hypergradients: WC-MHGD with no preference (the P4 special case, u = 0, r uniform).

Each step moves along the min-norm element of the convex hull of the S hypergradients,
a common descent direction; it stops at a Pareto-stationary point it does not choose.
"""

from ..weighting import MinNorm
from .wc_mhgd import HypergradientDescent

SOLVER = HypergradientDescent(
    name="mgda",
    summary="MGDA on hypergradients: min-norm common descent, no preference",
    rule=lambda options: MinNorm(),
)
