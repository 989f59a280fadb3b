"""The benchmarks behind `python -m pareto_app bench` run and measure what they claim (tiny sizes)."""

import pytest

from pareto_app import bench
from pareto_app.__main__ import main


def test_bench_qp_rows_agree_with_cvxpy():
    rows = bench.bench_qp(calls=4)
    assert [row["size"] for row in rows] == [2, 3, 5, 10]
    for row in rows:
        assert row["max_abs_gap"] <= 1e-6  # the fast solver's answers match cvxpy's
        assert row["ratio"] == pytest.approx(row["reference_us"] / row["fast_us"])


def test_bench_hvp_reports_both_second_order_modes():
    rows = bench.bench_hvp(repeats=1, rounds=1)
    assert [row["mode"] for row in rows] == ["reverse", "forward"]
    for row in rows:
        assert row["grad_ms"] > 0 and row["hvp_ms"] > 0
        assert row["hvp_over_grad"] > 0 and row["hvp_reused_over_grad"] > 0


def test_bench_iteration_shares_are_fractions():
    rows = bench.bench_iteration(steps=2)
    assert [row["problem"] for row in rows] == ["digits-mlp", "toy-quadratic"]
    assert all(0.0 <= row["outside_oracles_share"] < 1.0 for row in rows)


def test_bench_cli_prints_a_table(capsys, monkeypatch):
    monkeypatch.setattr("pareto_app.__main__.bench_iteration", lambda: bench.bench_iteration(steps=2))
    assert main(["bench", "iteration"]) == 0
    out = capsys.readouterr().out
    assert "outside_oracles_share" in out and "digits-mlp" in out and "goal" in out
