"""Linear scalarization: gradient descent on Σ_s r_s φ_s with the hypergradients of Alg. 1.

The weighted-sum baseline: fixed weights r, so it reaches only the convex part of a front
and its point moves with r in a way that depends on the objectives' scales.
"""

from ..weighting import Fixed
from .wc_mhgd import HypergradientDescent

SOLVER = HypergradientDescent(
    name="linear",
    summary="Linear scalarization: fixed weights r on the hypergradients",
    rule=lambda options: Fixed(),
)
