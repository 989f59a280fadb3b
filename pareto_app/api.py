"""The three ways to run a solver: `stream` (iterate by iterate), `solve` and `sweep`."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import solvers, sync
from .batched_sweep import BATCHED, STREAM_EVERY_S, batched_results
from .controller import Controller
from .indicators import hypervolume, nondominated
from .metrics import point_metrics
from .oracles import Oracles
from .preference import normalize_preference
from .problem import Problem
from .result import Iterate, Result, _jsonable
from .termination import divergence_reason

# An objective this many times larger than its start (plus one) is taken as divergence: the run
# stops there and keeps the iterate before. 1e8 kept iterates a million times the start (issue 10);
# a healthy run's objectives stay within a few times their start, so 1e3 still leaves room.
DIVERGENCE_FACTOR = 1e3
BACKENDS = ("local", "ray")  # where pa.sweep runs its chunks: this process, or Ray tasks


class Diverged(RuntimeError):
    """A run stopped itself: non-finite or exploding values. `last` is the last good iterate."""

    def __init__(self, message: str, last: Iterate | None) -> None:
        super().__init__(message)
        self.last = last


@dataclass
class Prepared:
    problem: Problem
    solver: solvers.Solver
    options: dict[str, Any]
    preference: np.ndarray


def prepare(problem: Problem, solver: str, preference: Sequence[float] | None, device: str,
            options: dict[str, Any]) -> Prepared:
    """Check everything a run needs before it starts; ValueError on bad input."""
    if not isinstance(problem, Problem):
        raise ValueError(f"expected a pareto_app.Problem; got {type(problem).__name__}")
    algo = solvers.get(solver)
    if algo.needs_strong_convexity and not problem.strongly_convex:
        raise ValueError(
            f"solver {solver!r} needs a strongly convex lower level (its hypergradients are undefined otherwise); "
            f"{problem.name!r} is declared merely convex: use 'wc-penalty' or 'wc-al'"
        )
    opts = solvers.check_options(algo, options)
    r = normalize_preference(preference, problem.num_objectives)
    return Prepared(problem.to(device), algo, opts, r)


def stream(problem: Problem, solver: str = "wc-mhgd", preference: Sequence[float] | None = None, *,
           steps: int | None = 1000, seed: int = 0, device: str = "auto", controller: Controller | None = None,
           metrics_every: int = 10, divergence_factor: float = DIVERGENCE_FACTOR, **options: Any) -> Iterator[Iterate]:
    """Run `solver` on `problem`, yielding an Iterate per step.

    `controller` steers it from another thread (preference, pause, resume, stop);
    `steps=None` runs until stopped. Raises Diverged (with the last good iterate) when
    the objectives become non-finite or exceed `divergence_factor` × (|their start| + 1).
    """
    steps = None if steps is None else whole_number("steps", steps, 1, "or None to run until stopped")
    metrics_every, seed = whole_number("metrics_every", metrics_every, 1), whole_number("seed", seed, 0)
    divergence_factor = check_divergence_factor(divergence_factor)
    run = prepare(problem, solver, preference, device, options)
    return iter(Run(run, steps, seed, controller, metrics_every, divergence_factor=divergence_factor))


def check_divergence_factor(value: Any) -> float:
    """`value` as a float > 1; ValueError naming it otherwise."""
    try:
        finite = math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        finite = False
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not finite or not value > 1:
        raise ValueError(f"divergence_factor={value!r}; accepted: a finite number > 1 (objectives this many times "
                         f"their start, plus one, end the run; default {DIVERGENCE_FACTOR:g})")
    return float(value)


def whole_number(name: str, value: Any, low: int, alternative: str = "", high: int = 2**63 - 1) -> int:
    """`value` as an int in [`low`, `high`]; ValueError naming `name`, the value and what is accepted.

    `high` defaults to the largest int64: torch and numpy take nothing bigger (a seed, a step count)."""
    accepted = f"a whole number ≥ {low} and ≤ {high}" + (f" ({alternative})" if alternative else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r} is not a number; accepted: {accepted}")
    # Python ints of any size compare exactly; math.isfinite would overflow on them.
    if isinstance(value, (float, np.floating)) and not math.isfinite(value) or int(value) != value \
            or not low <= int(value) <= high:
        raise ValueError(f"{name}={value!r}; accepted: {accepted}")
    return int(value)


@dataclass
class _Pending:
    """A step whose output is still on the device, with what its Iterate needs from the time it ran."""

    step: int
    out: solvers.StepOutput
    violation: torch.Tensor | None  # ‖∇_y g‖ on the device; None at a recorded step (all its metrics come later)
    preference: np.ndarray
    changed: bool
    seen: int
    oracle_calls: dict[str, int]
    elapsed: float
    state: Any  # the solver's state after the step: what a checkpoint taken at this iterate continues from
    rng: tuple[torch.Tensor, torch.Tensor] | None  # the random states after the step, where later steps ran ahead


class Run:
    """One run as an iterator of Iterates; `options` holds the resolved option values once started.

    `checkpoint()` (after any iterate) captures what continues the run: x, y, the solver's
    state, oracle counts, the preference and the random state; `Run(..., resume=that)` goes on
    from the step after it. A controller with a `poll()` method is also called between oracle
    calls, so a slow step can be paused or stopped from inside.
    """

    def __init__(self, run: Prepared, steps: int | None, seed: int, controller: Controller | None,
                 metrics_every: int, resume: dict[str, Any] | None = None,
                 divergence_factor: float = DIVERGENCE_FACTOR) -> None:
        self.prepared, self.steps, self.seed = run, steps, seed
        self.divergence_factor = divergence_factor
        self.controller, self.metrics_every = controller, metrics_every
        self.options: dict[str, Any] = dict(run.options)
        self.resume = resume
        self.oracles: Oracles | None = None  # the solver's counted oracles, once the run has started
        self._state: Any = None
        self._next = 0  # the step the state is ready for
        self._r = run.preference
        self._first: np.ndarray | None = None
        self._elapsed = 0.0
        self._seen = 0  # the controller's preference version the run has taken up
        self._last: Iterate | None = None  # the last iterate recorded (a diverged run keeps it)
        self._rng: tuple[torch.Tensor, torch.Tensor] | None = None  # the random states after it, where steps ran ahead

    def __iter__(self) -> Iterator[Iterate]:
        problem, algo, r = self.prepared.problem, self.prepared.solver, self.prepared.preference
        steps, controller = self.steps, self.controller
        torch.manual_seed(self.seed)
        self._generator = generator = torch.Generator().manual_seed(self.seed)
        oracles = self.oracles = Oracles(problem)
        measure = Oracles(problem)  # metrics cost oracle calls too, but not the solver's
        oracles.poll = measure.poll = getattr(controller, "poll", None)
        if controller is not None:
            controller.num_objectives = problem.num_objectives
        start = time.perf_counter()
        k = 0
        if self.resume is None:
            with torch.no_grad():
                state = algo.init(problem, r, dict(self.options, steps=steps), oracles, generator)
            self.options = {k: v for k, v in state.options.items() if k != "steps"}
        else:
            state, k, r = self._restore(problem, algo, oracles, generator)
            start -= self._elapsed
        self._state, self._next, self._r = state, k, r
        seen = self._seen
        # On the CPU reading a value costs nothing, so every step is recorded as it ends. On a GPU a read waits
        # for the device: the steps' outputs stay there and come to the host together (issue 9), at a recorded
        # step (every `metrics_every`), every STREAM_EVERY_S, before a pause or a stop, and at the end.
        buffered = not sync.may_read(problem.x0)
        pending: list[_Pending] = []
        flushed = time.monotonic()
        while steps is None or k < steps:
            changed = False
            if controller is not None:
                if pending and (controller.paused or controller.stopped):
                    yield from self._record(pending, measure, algo.name)
                    pending = []
                controller.wait_while_paused()
                if controller.stopped:
                    return
                seen, new = controller.take_preference(seen)
                if new is not None:
                    r, changed = normalize_preference(new, problem.num_objectives), True
            try:
                with torch.no_grad():
                    state, out = algo.step(state, r)
            except Exception as err:
                # Whatever ends a step (the control channel stopping it between oracle calls, an error) keeps the
                # steps computed before it.
                yield from self._record(pending, measure, algo.name)
                if isinstance(err, ValueError) and "non-finite" in str(err):
                    # Non-finite values can surface inside a step (e.g. in the weighting QP): the run diverged.
                    raise Diverged(f"{algo.name} diverged at step {k}: {err}; the last good iterate is kept. "
                                   "Try a smaller step size.", self._last) from err
                raise
            final_step = steps is not None and k == steps - 1
            record = k % self.metrics_every == 0 or final_step
            with torch.no_grad():
                violation = None if record else measure.lower_grad_y(out.x, out.y).norm()
            pending.append(_Pending(
                step=k, out=out, violation=violation, preference=r.copy(), changed=changed, seen=seen,
                oracle_calls=oracles.counts.as_dict(), elapsed=time.perf_counter() - start, state=state,
                rng=(self._generator.get_state(), torch.get_rng_state()) if buffered else None))
            k += 1
            if not buffered or record or time.monotonic() - flushed >= STREAM_EVERY_S:
                yield from self._record(pending, measure, algo.name)
                pending, flushed = [], time.monotonic()

    def _record(self, pending: list[_Pending], measure: Oracles, solver: str) -> Iterator[Iterate]:
        """The Iterates of the steps in `pending`, their values copied to the host at once (one copy a field for
        all of them); Diverged at the first bad one, its `last` the iterate before. A recorded step (no
        `violation` yet) gets its metrics here."""
        if not pending:
            return
        host = _host_values(pending)
        for j, p in enumerate(pending):
            out, f = p.out, host["f"][j]
            if self._first is None:
                self._first = np.abs(f)
            finite_weighting, finite_x, finite_y = host["finite"][j]
            bad = "" if finite_weighting else "the weighting QP's Gram matrix has non-finite entries (nan or inf)"
            bad = bad or divergence_reason(f, bool(finite_x and finite_y), self._first, self.divergence_factor)
            if bad:
                raise Diverged(f"{solver} diverged at step {p.step}: {bad}; the last good iterate is kept. "
                               "Try a smaller step size.", self._last)
            weights = host["weights"][j]
            if p.violation is None:
                multipliers = None if "multipliers" not in host else host["multipliers"][j]
                with torch.no_grad():
                    m = point_metrics(measure, out.x, out.y, p.preference, weights, multipliers)
                violation, stationarity, kkt = m.constraint_violation, m.stationarity, m.kkt_residual
            else:
                violation, stationarity, kkt = float(host["violation"][j]), float("nan"), float("nan")
            schedule = {name.split(":", 1)[1]: float(v[j]) for name, v in host.items() if name.startswith("schedule:")}
            it = Iterate(
                step=p.step, x=out.x, y=out.y, objectives=f, weights=weights, preference=p.preference,
                constraint_violation=violation, stationarity=stationarity, kkt_residual=kkt,
                direction_norm=float(host["norm"][j]), oracle_calls=p.oracle_calls, elapsed=p.elapsed,
                preference_changed=p.changed, schedule=schedule or None,
            )
            self._last = it
            self._state, self._next, self._r, self._elapsed, self._seen = p.state, p.step + 1, p.preference, \
                p.elapsed, p.seen
            self._rng = p.rng
            yield it

    def checkpoint(self) -> dict[str, Any]:
        """What continues this run after its latest iterate: tensors and plain numbers only
        (`torch.save` of it loads with `weights_only=True`)."""
        state = self._state
        if state is None:
            raise ValueError("the run has not started: nothing to checkpoint")
        tensors, arrays, numbers = {}, {}, {}
        for f in dataclasses.fields(state):
            value = getattr(state, f.name)
            if isinstance(value, torch.Tensor):
                tensors[f.name] = value.detach().cpu().clone()
            elif isinstance(value, np.ndarray):
                arrays[f.name] = torch.from_numpy(np.array(value, dtype=float))
            elif isinstance(value, (bool, int, float)) or (isinstance(value, list)
                                                           and all(isinstance(v, (int, float)) for v in value)):
                numbers[f.name] = value
        return {
            "next_step": self._next, "tensors": tensors, "arrays": arrays, "numbers": numbers,
            "options": json.dumps(_jsonable(state.options), default=str),
            # The counts at the latest iterate: later steps may have run already (their outputs not yet copied).
            "oracle_calls": state.oracles.counts.as_dict() if self._last is None else dict(self._last.oracle_calls),
            "preference": [float(v) for v in self._r],
            "elapsed": self._elapsed, "first": None if self._first is None else [float(v) for v in self._first],
            "rng": self._generator.get_state() if self._rng is None else self._rng[0],
            "torch_rng": torch.get_rng_state() if self._rng is None else self._rng[1], "seen": self._seen,
        }

    def _restore(self, problem: Problem, algo: solvers.Solver, oracles: Oracles,
                 generator: torch.Generator) -> tuple[Any, int, np.ndarray]:
        saved = self.resume
        assert saved is not None
        options = json.loads(saved["options"])
        # init at the saved point with the resolved options, so nothing is re-estimated; then
        # the saved state (tensors, numbers) replaces what init made.
        declared = {k: v for k, v in options.items() if k in algo.options and v is not None}
        x, y = saved["tensors"]["x"], saved["tensors"]["y"]
        at = dataclasses.replace(problem, x0=x.to(problem.device, problem.dtype), y0=y.to(problem.device, problem.dtype))
        r = np.asarray(saved["preference"], dtype=float)
        with torch.no_grad():
            state = algo.init(at, r, dict(self.options, **declared, steps=self.steps), oracles, generator)
        restored: dict[str, Any] = {k: v.to(problem.device) for k, v in saved["tensors"].items()}
        restored.update({k: v.double().numpy() for k, v in saved["arrays"].items()})
        restored.update(saved["numbers"])
        # A checkpoint of an earlier version may hold a field its solver's state no longer has (a warm start
        # kept under another name): the run continues without it.
        fields = {f.name for f in dataclasses.fields(state)}
        restored = {k: v for k, v in restored.items() if k in fields}
        state = dataclasses.replace(state, **restored, options=options)
        for name, count in saved["oracle_calls"].items():
            setattr(oracles.counts, name, int(count))
        generator.set_state(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        self.options = {k: v for k, v in options.items() if k != "steps"}
        self._elapsed = float(saved["elapsed"])
        self._seen = int(saved.get("seen", 0))
        self._first = None if saved["first"] is None else np.asarray(saved["first"], dtype=float)
        return state, int(saved["next_step"]), r


def _host_values(pending: list[_Pending]) -> dict[str, np.ndarray]:
    """What the Iterates of `pending` read, stacked on the device and copied to the host once a field: row j is
    step j's (objectives, weights, ‖d‖², ‖∇_y g‖, the finiteness of the weighting's input, x and y, ω, schedule)."""
    outs = [p.out for p in pending]
    ok = torch.ones((), dtype=torch.bool, device=outs[0].x.device)
    fields: dict[str, list[torch.Tensor]] = {
        "f": [o.objectives for o in outs], "weights": [o.weights for o in outs], "norm": [o.direction_norm for o in outs],
        "finite": [torch.stack([ok if o.finite_weighting is None else o.finite_weighting, torch.isfinite(o.x).all(),
                                torch.isfinite(o.y).all()]) for o in outs],
        "violation": [torch.full_like(o.direction_norm, float("nan")) if p.violation is None else p.violation
                      for p, o in zip(pending, outs)],
    }
    if outs[0].multipliers is not None:
        fields["multipliers"] = [o.multipliers for o in outs]
    for name in outs[0].schedule or {}:
        fields[f"schedule:{name}"] = [o.schedule[name] for o in outs]
    host = {}
    for name, values in fields.items():
        stacked = torch.stack([v.detach().double() if v.is_floating_point() else v.detach() for v in values])
        host[name] = stacked.cpu().numpy()
    return host


def solve(problem: Problem, solver: str = "wc-mhgd", preference: Sequence[float] | None = None, *,
          steps: int = 1000, seed: int = 0, device: str = "auto", controller: Controller | None = None,
          metrics_every: int = 10, progress: Callable[[Iterate, int], None] | None = None,
          divergence_factor: float = DIVERGENCE_FACTOR, **options: Any) -> Result:
    """Run `solver` for `steps` steps and return the Result (history as a DataFrame).

    A run whose objectives turn non-finite or exceed `divergence_factor` × (|start| + 1) ends
    with status "diverged" and its last good iterate."""
    steps, seed = whole_number("steps", steps, 1), whole_number("seed", seed, 0)
    metrics_every = whole_number("metrics_every", metrics_every, 1)
    divergence_factor = check_divergence_factor(divergence_factor)
    run = prepare(problem, solver, preference, device, options)
    rows: list[dict[str, Any]] = []
    last: Iterate | None = None
    status, message = "finished", ""
    runner = Run(run, steps, seed, controller, metrics_every, divergence_factor=divergence_factor)
    try:
        for it in runner:
            rows.append(it.row())
            last = it
            if progress is not None:
                progress(it, steps)
    except Diverged as err:
        status, message = "diverged", str(err)
    if status == "finished" and last is not None and last.step < steps - 1:
        status, message = "stopped", f"stopped at step {last.step}"
    if last is None:
        raise Diverged(message or "the run produced no finite iterate", None)
    return make_result(runner, pd.DataFrame(rows), last, status, message)


def make_result(runner: Run, history: pd.DataFrame, last: Iterate, status: str, message: str,
                metadata: dict[str, Any] | None = None) -> Result:
    """The one builder of a Result: a run's history, its last good iterate, and what reproduces it."""
    problem = runner.prepared.problem
    return Result.of_run(
        solver=runner.prepared.solver.name, task=problem.name, task_params=problem.params, options=runner.options,
        seed=runner.seed, steps=runner.steps if runner.steps is not None else last.step + 1, device=str(problem.device),
        history=history, x=last.x, y=last.y, status=status, message=message,
        metadata={"oracle_calls": last.oracle_calls, "elapsed": last.elapsed, **(metadata or {})},
    )


@dataclass
class Sweep:
    """Many runs over a set of preferences, and the front they trace."""

    results: list[Result]
    preferences: np.ndarray

    @property
    def objectives(self) -> np.ndarray:
        return np.array([r.objectives for r in self.results])

    @property
    def front_mask(self) -> np.ndarray:
        return nondominated(self.objectives)

    def hypervolume(self, reference: Sequence[float] | None = None) -> float:
        return hypervolume(self.objectives[self.front_mask], reference)


def sweep(problem: Problem, solver: str = "wc-mhgd", preferences: np.ndarray | Sequence[Sequence[float]] = (), *,
          steps: int = 500, seed: int = 0, device: str = "auto", metrics_every: int = 10,
          divergence_factor: float = DIVERGENCE_FACTOR, batched: bool | None = None, batch_size: int = 64,
          backend: str = "local", address: str | None = None,
          progress: Callable[[int, int], None] | None = None, **options: Any) -> Sweep:
    """One run per row of `preferences` (B×S), each equal to its `pa.solve` with the same seed.

    `batched` (default: wherever the solver has a batched step, `batched_sweep.BATCHED`) runs up to
    `batch_size` preferences as one batched run on the device; otherwise one run after another.
    `backend="ray"` runs the same chunks as Ray tasks (`address`: a cluster's "host:port", or None
    for a local Ray instance; `pareto_app.ray_sweep`), and gathers the same Sweep.
    `progress(done, total)` counts runs, or steps of all chunks when batched (runs on Ray)."""
    steps, seed = whole_number("steps", steps, 1), whole_number("seed", seed, 0)
    metrics_every = whole_number("metrics_every", metrics_every, 1)
    batch_size = whole_number("batch_size", batch_size, 1, "preferences per batched run")
    divergence_factor = check_divergence_factor(divergence_factor)
    if not isinstance(problem, Problem):
        raise ValueError(f"expected a pareto_app.Problem; got {type(problem).__name__}")
    try:
        rows = 0 if isinstance(preferences, (str, bytes, dict)) else len(preferences)
    except TypeError:  # a scalar, a 0-d array or tensor
        rows = 0
    if rows == 0:
        raise ValueError(f"preferences={preferences!r:.80}; accepted: a non-empty B×S array or list of rows, "
                         f"S = {problem.num_objectives}")
    P = np.array([_preference_row(i, row, problem.num_objectives) for i, row in enumerate(preferences)])
    if batched is None:
        batched = solver in BATCHED
    elif not isinstance(batched, (bool, np.bool_)):
        raise ValueError(f"batched={batched!r:.40}; accepted: True, False or None (batched where the solver can be)")
    elif batched and solver not in BATCHED:
        raise ValueError(f"batched=True: solver {solver!r} has no batched step yet; batched solvers: "
                         f"{', '.join(BATCHED)} (batched=False runs one preference after another)")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r:.40}; accepted: {', '.join(map(repr, BACKENDS))}")
    if address is not None and backend != "ray":
        raise ValueError(f"address={address!r:.60} is for backend='ray' (a Ray cluster's host:port); "
                         f"backend={backend!r} runs on this machine")
    run_args = dict(steps=steps, seed=seed, device=device, metrics_every=metrics_every,
                    divergence_factor=divergence_factor, **options)
    if backend == "ray":
        from .ray_sweep import ray_sweep

        prepare(problem, solver, P[0], device, options)  # bad options are named here, not in a Ray task
        results = ray_sweep(problem, solver, P, chunk_size=batch_size if batched else 1, address=address,
                            progress=progress, run_args=dict(batched=batched, **run_args))
        return Sweep(results=results, preferences=P)
    if not batched:
        return Sweep(results=sweep_chunk(problem, solver, P, batched=False, progress=progress, **run_args),
                     preferences=P)
    chunks = [P[i:i + batch_size] for i in range(0, len(P), batch_size)]
    results = []
    for c, chunk in enumerate(chunks):
        def chunk_progress(done: int, total: int, c: int = c) -> None:
            if progress is not None:
                progress(c * total + done, len(chunks) * total)

        results += _within_memory(lambda rows, cp=chunk_progress: sweep_chunk(
            problem, solver, rows, batched=True, progress=cp, **run_args), chunk)
    return Sweep(results=results, preferences=P)


def _within_memory(run_rows: Callable[[np.ndarray], list[Result]], rows: np.ndarray) -> list[Result]:
    """`run_rows(rows)`, halving the batch while it does not fit in the device's memory (issue 9: a sweep
    too large for the device is chunked, not crashed). Each half is a batched run of its own."""
    try:
        return run_rows(rows)
    except (torch.OutOfMemoryError, RuntimeError) as err:
        if not (isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in str(err)) or len(rows) == 1:
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = (len(rows) + 1) // 2
    warnings.warn(f"a batch of {len(rows)} runs does not fit in the device's memory: running it as batches of "
                  f"{half} (set batch_size={half} or lower to start there)", stacklevel=3)
    return _within_memory(run_rows, rows[:half]) + _within_memory(run_rows, rows[half:])


def sweep_chunk(problem: Problem, solver: str, rows: np.ndarray, *, batched: bool, steps: int, seed: int, device: str,
                metrics_every: int, divergence_factor: float, progress: Callable[[int, int], None] | None = None,
                **options: Any) -> list[Result]:
    """The runs of `rows` (preferences normalised already): one batched run, or one `solve` per row.

    What every chunk of `sweep` runs, here or in a Ray task. A chunk of one row is the sequential
    run: the same run without the batch's overhead. `progress(done, total)` counts steps when
    batched (or one row), else runs."""
    common = dict(steps=steps, seed=seed, device=device, metrics_every=metrics_every,
                  divergence_factor=divergence_factor, **options)
    if batched and len(rows) == 1:
        return [solve(problem, solver, rows[0], **common,
                      progress=None if progress is None else lambda it, total: progress(it.step + 1, total))]
    if not batched:
        results = []
        for i, r in enumerate(rows):
            results.append(solve(problem, solver, r, **common))
            if progress is not None:
                progress(i + 1, len(rows))
        return results
    run = prepare(problem, solver, rows[0], device, options)
    return batched_results(run.problem, run.solver, run.options, rows, steps=steps, seed=seed,
                           metrics_every=metrics_every, divergence_factor=divergence_factor, progress=progress)


def _preference_row(i: int, row: Any, S: int) -> np.ndarray:
    try:
        return normalize_preference(row, S)
    except ValueError as err:
        raise ValueError(f"preferences row {i}: {err}") from None
