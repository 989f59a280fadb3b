"""Command line: `python -m pareto_app tasks | solvers | solve ... | make-data ... | bench qp|hvp|iteration|sweep|app`."""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any, NoReturn

from . import solvers, tasks
from .api import DIVERGENCE_FACTOR, Diverged, solve, whole_number
from .bench import bench_hvp, bench_iteration, bench_qp, print_rows
from .result import Iterate, writable_result_path


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: list[str], what: str) -> dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{what} {item!r} must look like name=value")
        key, value = item.split("=", 1)
        out[key] = _parse_value(value)
    return out


def _preference(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--preference {text!r} must be comma-separated numbers, e.g. 0.7,0.3") from None


class ProgressLine:
    """A single live line: step, objectives, stationarity, iterations per second."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.last_stationarity = float("nan")
        self.open = False  # a line written without its newline yet

    def close(self) -> None:
        """End the line of a run that ended early (stopped, diverged), so that what follows starts a line."""
        if self.open:
            (self.stream or sys.stderr).write("\n")
            self.open = False

    def __call__(self, it: Iterate, steps: int) -> None:
        if it.stationarity == it.stationarity:
            self.last_stationarity = it.stationarity
        if it.step % 10 and it.step != steps - 1:
            return
        out = self.stream or sys.stderr
        rate = (it.step + 1) / it.elapsed if it.elapsed > 0 else 0.0
        f = ", ".join(f"{v:.4g}" for v in it.objectives)
        bar = int(30 * (it.step + 1) / steps)
        out.write(f"\r[{'#' * bar}{'.' * (30 - bar)}] {it.step + 1}/{steps}  F=({f})  "
                          f"stationarity={self.last_stationarity:.2e}  {rate:.0f} it/s ")
        out.flush()
        self.open = True
        if it.step == steps - 1:
            self.close()


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line `error: …` and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m pareto_app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list the tasks and their parameters")
    sub.add_parser("solvers", help="list the solvers and their options")
    p_solve = sub.add_parser("solve", help="run one solver on one task")
    p_solve.add_argument("--task", default="toy-quadratic")
    p_solve.add_argument("--solver", default="wc-mhgd")
    p_solve.add_argument("--preference", default=None, help="comma-separated, e.g. 0.7,0.3")
    p_solve.add_argument("--steps", type=int, default=500)
    p_solve.add_argument("--seed", type=int, default=0)
    p_solve.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p_solve.add_argument("--param", action="append", default=[], help="task parameter name=value (repeatable)")
    p_solve.add_argument("--option", action="append", default=[], help="solver option name=value (repeatable)")
    p_solve.add_argument("--metrics-every", type=int, default=10)
    p_solve.add_argument("--divergence-factor", type=float, default=DIVERGENCE_FACTOR,
                         help="end the run when an objective exceeds this many times its start (plus one)")
    p_solve.add_argument("--out", default=None, help="save the result (.json, .csv or .pt)")
    p_rep = sub.add_parser("reproduce", help="reproduce a paper's claim into reports/NAME/")
    p_rep.add_argument("name", help="hyper-cleaning-table | preference-study | cost-scaling | rates")
    p_rep.add_argument("--quick", action="store_true", help="CI-sized settings")
    p_rep.add_argument("--out", default="reports")
    p_data = sub.add_parser("make-data", help="write a generated image-like data set (.npz: X, y) for the data tasks")
    p_data.add_argument("out", help="the .npz file to write")
    p_data.add_argument("--samples", type=int, default=50_000)
    p_data.add_argument("--features", type=int, default=784, help="a square number reads as an image (784: 28×28)")
    p_data.add_argument("--classes", type=int, default=10)
    p_data.add_argument("--seed", type=int, default=0)
    p_bench = sub.add_parser("bench", help="benchmarks: qp, hvp, iteration, sweep, app")
    p_bench.add_argument("what", choices=("qp", "hvp", "iteration", "sweep", "app"))
    p_bench.add_argument("--task", nargs="+", default=None, help="bench sweep: tasks (toy-quadratic hyper-cleaning)")
    p_bench.add_argument("--B", type=int, default=None, help="bench sweep: preferences in the batch (64)")
    p_bench.add_argument("--device", "--bench-device", dest="bench_device", default=None, choices=("cpu", "cuda"),
                         help="bench sweep: the device of both the batched and the sequential sweep")
    p_bench.add_argument("--solver", default=None, help="bench sweep: the solver (wc-mhgd; every solver has a "
                                                         "batched step)")
    p_bench.add_argument("--param", action="append", default=None,
                         help="bench sweep: task parameter name=value (repeatable), e.g. model=mlp")
    p_bench.add_argument("--data", default=None, help="bench sweep: a data set file for the data tasks (make-data "
                                                       "writes one of realistic size)")
    p_bench.add_argument("--inner", type=int, nargs=2, default=None, metavar=("FEW", "MANY"),
                         help="bench sweep: the inner steps per step whose peak memory is compared (16 128)")
    p_bench.add_argument("--tabs", type=int, nargs="+", default=None, help="bench app: tabs running at once (1 4)")
    p_bench.add_argument("--steps", type=int, default=None, help="bench app: steps of the timed run (500)")
    p_bench.add_argument("--rounds", type=int, default=None,
                         help="bench app: app runs per number of tabs, each between two library runs; their ratios' "
                              "median (3)")
    p_bench.add_argument("--page-apart", action="store_true",
                         help="bench app: also with the browser and the server on the last core, the solvers on "
                              "the others (as if the browser ran on the user's own computer)")
    p_bench.add_argument("--background", action="store_true",
                         help="bench app: also more than one tab with all tabs but the first in the background "
                              "(hidden), as tabs of one browser window are")
    args = parser.parse_args(argv)

    try:
        if args.command == "tasks":
            for name in tasks.names():
                spec = tasks.spec(name)
                print(f"{name}: {spec.summary}")
                for key, p in spec.params.items():
                    print(f"    {key} = {p.default!r}  ({p.help})")
        elif args.command == "solvers":
            for name in solvers.names():
                solver = solvers.get(name)
                print(f"{name}: {solver.summary}")
                for key, opt in solver.options.items():
                    default = "auto" if opt.default is None else repr(opt.default)
                    print(f"    {key} = {default}  ({opt.help})")
        elif args.command == "solve":
            if args.out:
                writable_result_path(args.out)  # before the run: its work is not lost to a bad path
            problem = tasks.get(args.task, **_pairs(args.param, "--param"))
            line = ProgressLine()
            try:
                result = solve(problem, args.solver, _preference(args.preference), steps=args.steps, seed=args.seed,
                               device=args.device, metrics_every=args.metrics_every, progress=line,
                               divergence_factor=args.divergence_factor, **_pairs(args.option, "--option"))
            finally:
                line.close()
            final = result.history.iloc[-1]
            print(f"status: {result.status}{' — ' + result.message if result.message else ''}")
            print("objectives: " + ", ".join(f"{v:.6g}" for v in result.objectives))
            print(f"stationarity: {final['stationarity']:.3e}  kkt_residual: {final['kkt_residual']:.3e}  "
                  f"constraint_violation: {final['constraint_violation']:.3e}")
            print("options: " + json.dumps({k: v for k, v in result.options.items()}, default=str))
            if args.out:
                print(f"saved: {result.save(args.out)}")
            return 0 if result.status != "diverged" else 3
        elif args.command == "reproduce":
            from .reproduce import run as reproduce

            print(f"written: {reproduce(args.name, quick=args.quick, out=args.out)}")
        elif args.command == "make-data":
            _make_data(args)
        elif args.command == "bench":
            if args.what not in ("app", "sweep") and args.steps is not None:
                raise ValueError("--steps is an option of `bench app` and `bench sweep` only")
            if args.what != "app" and (args.tabs is not None or args.rounds is not None or args.page_apart
                                       or args.background):
                raise ValueError("--tabs, --rounds, --page-apart and --background are options of `bench app` only")
            sweep_flags = (args.task, args.B, args.bench_device, args.param, args.data, args.solver, args.inner)
            if args.what != "sweep" and sweep_flags != (None,) * len(sweep_flags):
                raise ValueError("--task, --B, --device, --param, --data, --solver and --inner are options of "
                                 "`bench sweep` only")
            if args.what == "app":
                return _bench_app(args.tabs, args.steps, args.rounds, args.page_apart, args.background)
            if args.what == "sweep":
                from .batched_sweep import BATCHED
                from .bench_sweep import run_sweep_bench

                B = whole_number("--B", 64 if args.B is None else args.B, 1, "preferences in the batch")
                steps = whole_number("--steps", 50 if args.steps is None else args.steps, 1)
                few, many = args.inner or (16, 128)
                if not 1 <= few < many:
                    raise ValueError(f"--inner {few} {many}: accepted: two whole numbers 1 ≤ FEW < MANY")
                names = args.task or ["toy-quadratic", "hyper-cleaning"]
                params = _pairs(args.param or [], "--param")
                if args.data is not None:
                    params["data"] = args.data
                solver = args.solver or "wc-mhgd"
                if solver not in BATCHED:
                    raise ValueError(f"--solver {solver}: accepted: {', '.join(BATCHED)} (the solvers with a "
                                     f"batched step)")
                rows = run_sweep_bench(names, device=args.bench_device or "cpu", B=B, steps=steps, params=params,
                                       solver=solver)
                print_rows("batched sweep vs the same preferences one after another (speedup = sequential / "
                           "batched)", rows)
                from .bench_engine import host_reads_per_step, inner_steps_memory

                device = args.bench_device or "cpu"
                # As many steps as the sweep, a quarter of them recorded; at least two recorded intervals.
                every = max(1, steps // 4)
                print_rows("host reads (what a GPU waits for) during a batched sweep, CPU shortcuts off",
                           [host_reads_per_step(name, solver, device=device, B=B, steps=max(steps, 2 * every),
                                                metrics_every=every, params=params) for name in names])
                convex = [name for name in names if tasks.get(name, device=device, **params).strongly_convex]
                if convex:  # the last named (by default hyper-cleaning, larger than toy-quadratic)
                    print_rows("peak tensor memory of the steps against the inner steps per step",
                               inner_steps_memory(convex[-1], device=device, inner=(few, many), params=params))
                else:
                    print("peak memory against inner steps: wc-mhgd and forum need a task with a strongly convex "
                          "lower level (toy-quadratic, hyper-cleaning, ...)")
                return 0
            if args.what == "qp":
                print_rows("fast simplex QP vs cvxpy, per call (ratio = cvxpy / fast)", bench_qp())
            elif args.what == "hvp":
                print_rows("HVP time / gradient time, 64-256-10 MLP on digits", bench_hvp())
            else:
                print_rows("wc-mhgd iteration: share of time outside oracle calls", bench_iteration())
                print("goal ≤ 0.15 on the MLP (the bench hvp model); on the 4×6 toy every oracle takes microseconds,\n"
                      "so the fixed Python cost of a step (CG bookkeeping, the weighting QP) shows as a larger share")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Diverged as err:  # not one finite iterate: nothing to save or show
        print(f"error: {err}", file=sys.stderr)
        return 3
    return 0


def _make_data(args: argparse.Namespace) -> None:
    import numpy as np

    from .tasks.dataset import synthetic

    out = Path(args.out)
    if out.suffix != ".npz" or not out.parent.is_dir():
        raise ValueError(f"{args.out!r}: accepted: a .npz file in an existing folder")
    samples = whole_number("--samples", args.samples, 10, high=10_000_000)
    features = whole_number("--features", args.features, 1, high=100_000)
    classes = whole_number("--classes", args.classes, 2, high=1000)
    X, y = synthetic(samples, features, classes=classes, seed=whole_number("--seed", args.seed, 0))
    np.savez(out, X=X, y=y)
    print(f"written: {out} (X {samples} × {features} float32, y {classes} classes)")


def _bench_app(tabs: list[int] | None, steps: int | None, rounds: int | None = None, page_apart: bool = False,
               background: bool = False) -> int:
    """tools/bench_app.py of the repository checkout: the app in a browser against the library.

    Run from its file, not imported: it needs Streamlit and Playwright, which the library never imports."""
    script = Path(__file__).resolve().parent.parent / "tools" / "bench_app.py"
    if not script.is_file():
        raise ValueError(f"bench app needs the repository checkout's {script.parent.name}/{script.name} "
                         f"(not found at {script})")
    argv = [*(["--tabs", *map(str, tabs)] if tabs else []), *(["--steps", str(steps)] if steps is not None else []),
            *(["--rounds", str(rounds)] if rounds is not None else []), *(["--page-apart"] if page_apart else []),
            *(["--background"] if background else [])]
    return int(runpy.run_path(str(script))["main"](argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
