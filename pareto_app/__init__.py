"""pareto-app: explore the Pareto fronts of multi-objective bilevel learning problems.

    import pareto_app as pa
    problem = pa.tasks.get("toy-quadratic", S=2)
    result = pa.solve(problem, solver="wc-mhgd", preference=[0.7, 0.3], steps=500)
"""

from . import solvers, store, tasks
from .api import Diverged, Sweep, solve, stream, sweep
from .compare import compare
from .controller import Controller
from .indicators import hypervolume, nondominated
from .problem import Minibatches, Problem
from .result import Iterate, Result
from .runspec import RunSpec
from .termination import Termination

__all__ = [
    "Controller", "Diverged", "compare", "Iterate", "Minibatches", "Problem", "Result", "RunSpec", "Sweep",
    "Termination", "hypervolume", "nondominated", "solve", "solvers", "store", "stream", "sweep", "tasks",
]
