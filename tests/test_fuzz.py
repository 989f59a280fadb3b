"""Property-based fuzzing of the public entry points (issue 10): whatever a caller passes, the answer is a
result, a diverged run, or a ValueError whose message names the argument that was wrong — never another
exception, never a traceback from the CLI.

Each example perturbs one argument of an otherwise valid call, so the test knows which name the message
must contain. `make test` runs 25 examples per test (fixed, derandomised); `make fuzz` (FUZZ_EXAMPLES=2000) many more.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import pickle
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pareto_app as pa
from pareto_app.__main__ import main
from pareto_app.exports import export_json

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

TOY = pa.tasks.get("toy-quadratic")
LLGC = pa.tasks.get("toy-llgc")

# Values a caller might pass by mistake: wrong types, the edges of the number line, containers.
SPECIALS = st.sampled_from([
    None, True, False, 0, 1, -1, 2, 0.5, -0.5, 1e-300, 1e300, math.nan, math.inf, -math.inf, 2**63, 10**30, -(10**30),
    "", "x", "1", "cg", "cpu", "nan", [], [1], [0.5, 0.5], {}, {"a": 1}, (1, 2), b"\x00", np.float64(np.nan),
    np.int64(-3), np.array([1.0, 2.0]), torch.tensor(1.0), object(),
])
NUMBERS = st.one_of(st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True))
WEIRD = st.one_of(SPECIALS, NUMBERS, st.text(max_size=6), st.lists(st.one_of(SPECIALS, NUMBERS), max_size=4))


def assert_clear(err: ValueError, *names: str) -> None:
    message = str(err)
    assert message and "Traceback" not in message
    assert any(name in message for name in names), f"{message!r} does not name any of {names}"


def run_or_clear_error(call, *names: str) -> None:
    try:
        out = call()
    except ValueError as err:
        assert_clear(err, *names)
    except pa.Diverged:
        pass
    else:
        if isinstance(out, pa.Result):
            assert out.status in ("finished", "stopped", "diverged")
            assert len(out.history) >= 1 and np.all(np.isfinite(out.objectives))


def solve_with(solver: str, **changes):
    problem = LLGC if solver == "wc-penalty" else TOY
    kwargs = dict(steps=2, seed=0, device="cpu")
    kwargs.update(changes)
    return lambda: pa.solve(problem, solver, kwargs.pop("preference", None), **kwargs)


OPTION_CALLS = st.sampled_from([(name, option) for name in pa.solvers.names()
                                for option in pa.solvers.get(name).options])


@FUZZ
@given(choice=OPTION_CALLS, value=WEIRD)
def test_solver_options(choice, value):
    solver, option = choice
    run_or_clear_error(solve_with(solver, **{option: value}), option, solver)


@FUZZ
@given(solver=st.sampled_from(pa.solvers.names()), preference=WEIRD)
def test_preferences(solver, preference):
    run_or_clear_error(solve_with(solver, preference=preference), "preference")


@FUZZ
@given(argument=st.sampled_from(["steps", "seed", "metrics_every", "divergence_factor", "device"]), value=WEIRD)
def test_run_arguments(argument, value):
    if argument == "steps" and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 3:
        value = -abs(value)  # a valid huge step count would only make the test slow
    run_or_clear_error(solve_with("wc-mhgd", **{argument: value}), argument)


@FUZZ
@given(value=WEIRD, steps=st.sampled_from([None, 2]))
def test_stream_and_sweep(value, steps):
    def streamed():
        return list(itertools.islice(pa.stream(TOY, "mgda", value, steps=steps, device="cpu"), 2))

    run_or_clear_error(streamed, "preference")
    run_or_clear_error(lambda: pa.sweep(TOY, "linear", value, steps=2, device="cpu"), "preference")
    run_or_clear_error(lambda: pa.sweep(TOY, "linear", [[0.5, 0.5], value], steps=2, device="cpu"), "preference")


TASK_PARAMS = st.sampled_from([(name, param) for name in pa.tasks.names() if name.startswith("toy")
                               for param in pa.tasks.spec(name).params])


@FUZZ
@given(choice=TASK_PARAMS, value=WEIRD)
def test_task_parameters(choice, value):
    task, param = choice
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > 64 and param in ("p", "q", "S"):
        value = -abs(value)  # a valid huge dimension would only make the test slow
    run_or_clear_error(lambda: pa.tasks.get(task, **{param: value}), param)


@FUZZ
@given(field=st.sampled_from(["upper", "lower", "x0", "y0", "strongly_convex", "name", "objective_names",
                              "reference_point"]), value=WEIRD)
def test_problem_fields(field, value):
    fields = dict(upper=[lambda x, y: (x - y).square().sum(), lambda x, y: x.square().sum()],
                  lower=lambda x, y: (y - x).square().sum(), x0=torch.zeros(2, dtype=torch.float64),
                  y0=torch.zeros(2, dtype=torch.float64))
    fields[field] = value
    run_or_clear_error(lambda: pa.Problem(**fields), field, "Problem")


@FUZZ
@given(value=WEIRD)
def test_controller_preference(value):
    controller = pa.Controller()
    run_or_clear_error(lambda: controller.set_preference(value), "preference")
    controller.num_objectives = 2
    run_or_clear_error(lambda: controller.set_preference(value), "preference")


def _json_like(depth: int = 2):
    leaves = st.one_of(st.none(), st.booleans(), NUMBERS.filter(lambda v: not isinstance(v, float) or math.isfinite(v)),
                       st.text(max_size=5))
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=8)


VALID = json.loads(export_json(pa.solve(TOY, "linear", steps=3, device="cpu")))


@FUZZ
@given(key=st.sampled_from(sorted(VALID)), value=_json_like(), raw=st.binary(max_size=64), suffix=st.sampled_from(
    [".json", ".pt"]))
def test_result_files(tmp_path_factory, key, value, raw, suffix):
    folder = tmp_path_factory.mktemp("files")
    changed = dict(VALID, **{key: value})
    planted = {".json": json.dumps(changed).encode(), ".pt": _torch_bytes(changed)}[suffix]
    for content in (planted, raw):
        path = folder / f"r{suffix}"
        path.write_bytes(content)
        run_or_clear_error(lambda: pa.Result.load(path), str(path))


def _torch_bytes(data) -> bytes:
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


CLI_FLAGS = ["--task", "--solver", "--preference", "--steps", "--seed", "--device", "--param", "--option",
             "--metrics-every", "--divergence-factor", "--out"]
TOKENS = st.one_of(st.sampled_from(["", "-1", "0", "1e999", "nan", "-Infinity", "null", "true", "x=1", "u=null",
                                    "p=-Infinity", "gamma=NaN", "99999999999999999999999", "0,0", "1,2,3", "a,b",
                                    "/nonexistent/dir/r.json", "r.txt", "cuda", "--steps", "=", "u=", "D=1e400"]),
                   st.text(max_size=8).filter(lambda t: not t.startswith("-")))


@FUZZ
@given(flag=st.sampled_from(CLI_FLAGS), token=TOKENS)
def test_cli_prints_one_error_line(tmp_path_factory, flag, token):
    argv = ["solve", "--steps", "2", "--device", "cpu", flag, token]
    if flag == "--steps" and re.fullmatch(r"-?[0-9]+", token) and int(token) > 3:  # not str.isdigit: "²" is a digit
        argv[-1] = "-" + token.lstrip("-")
    err, out = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cli"))  # a relative --out lands in a temporary folder
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(argv)
            except SystemExit as exit_:
                code = exit_.code
    finally:
        os.chdir(cwd)
    assert code in (0, 2, 3), (argv, code, err.getvalue())
    if code == 2:
        errors = [line for line in err.getvalue().replace("\r", "\n").splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in err.getvalue(), err.getvalue()


class Planted:
    """A pickle that would create a file if it were ever unpickled."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("suffix", [".pt", ".json"])
def test_a_planted_pickle_never_runs(tmp_path, suffix):
    marker = tmp_path / "code-ran"
    payload = dict(VALID, x=Planted(marker))
    for content in (pickle.dumps(Planted(marker)), pickle.dumps(payload)):
        path = tmp_path / f"evil{suffix}"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a pareto-app result"):
            pa.Result.load(path)
        assert not marker.exists()
