"""The run archive (pareto_app.store): save, list, load, delete, concurrency, and the exports."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import pareto_app as pa
from pareto_app.store import (
    SCHEMA_VERSION,
    RunStore,
    default_db_path,
    export_csv,
    export_json,
    export_point,
    export_torch,
)


def _solve(preference: Sequence[float] = (0.6, 0.4), **options: Any) -> pa.Result:
    return pa.solve(pa.tasks.get("toy-quadratic", S=2), "wc-mhgd", list(preference), steps=20, device="cpu", **options)


@pytest.fixture(scope="module")
def result() -> pa.Result:
    return _solve()


@pytest.fixture(scope="module")
def diverged() -> pa.Result:
    out = pa.solve(pa.tasks.get("toy-quadratic", S=2), "wc-mhgd", [0.6, 0.4], steps=200, device="cpu", beta=50.0)
    assert out.status == "diverged"  # the premise of the test that uses it
    return out


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs.db")


def assert_same_result(got: pa.Result, want: pa.Result) -> None:
    pd.testing.assert_frame_equal(got.history, want.history, check_exact=True)
    assert got.x.dtype == want.x.dtype and torch.equal(got.x, want.x.cpu())
    assert got.y.dtype == want.y.dtype and torch.equal(got.y, want.y.cpu())
    np.testing.assert_array_equal(got.objectives, want.objectives)
    assert got.options == want.options
    assert got.metadata == want.metadata
    for name in ("solver", "task", "task_params", "preference", "seed", "steps", "status", "message", "device"):
        assert getattr(got, name) == getattr(want, name), name


def test_save_list_load_delete_round_trip(store, result):
    run_id = store.save(result, label="baseline")
    assert isinstance(run_id, int) and store.count() == 1

    listing = store.list()
    assert len(listing) == 1
    row = listing.iloc[0]
    assert row["id"] == run_id and row["label"] == "baseline" and row["task"] == result.task
    assert row["solver"] == "wc-mhgd" and row["status"] == "finished" and row["steps"] == 20
    assert row["preference"] == pytest.approx([0.6, 0.4])
    assert [row["f1"], row["f2"]] == [float(v) for v in result.objectives]
    final = result.history.iloc[-1]
    for name in ("stationarity", "kkt_residual", "constraint_violation"):
        assert row[name] == final[name]
    assert listing["created"].dt.tz is not None  # UTC timestamps
    assert "payload" not in listing.columns and "x" not in listing.columns

    assert_same_result(store.load(run_id), result)

    store.delete(run_id)
    assert store.count() == 0 and store.list().empty
    with pytest.raises(KeyError, match=str(run_id)):
        store.load(run_id)


def test_float32_tensors_and_odd_options_round_trip(store, result):
    odd = dataclasses.replace(result, x=result.x.float(), y=result.y.float(),
                              options={**result.options, "schedule": (1, 2), "note": None, "scale": math.inf})
    back = store.load(store.save(odd))
    assert back.x.dtype == torch.float32 and torch.equal(back.x, odd.x) and torch.equal(back.y, odd.y)
    assert back.options["schedule"] == [1, 2] and back.options["note"] is None and back.options["scale"] == math.inf


def test_newest_first_and_filter_by_task(store, result):
    other = dataclasses.replace(result, task="other-task")
    ids = [store.save(result, label="a"), store.save(other, label="b"), store.save(result, label="c")]
    listing = store.list()
    assert listing["id"].tolist() == ids[::-1]
    assert listing["label"].tolist() == ["c", "b", "a"]
    assert listing["created"].is_monotonic_decreasing

    mine = store.list(task=result.task)
    assert mine["id"].tolist() == [ids[2], ids[0]]
    assert store.list(task="other-task")["label"].tolist() == ["b"]
    assert store.list(task="no-such-task").empty


def test_ids_are_not_reused_after_delete(store, result):
    first = store.save(result)
    store.delete(first)
    assert store.save(result) != first


def test_listing_mixed_objective_counts(store, result):
    three = dataclasses.replace(result, objectives=np.array([1.0, 2.0, 3.0]))
    store.save(result)
    store.save(three)
    listing = store.list()
    assert listing.loc[0, ["f1", "f2", "f3"]].tolist() == [1.0, 2.0, 3.0]
    assert math.isnan(listing.loc[1, "f3"])


def test_env_var_sets_the_default_path(tmp_path, monkeypatch, result):
    target = tmp_path / "nested" / "deeper" / "mine.db"
    monkeypatch.setenv("PARETO_APP_DB", str(target))
    assert default_db_path() == target
    store = RunStore()
    assert store.path == target and target.parent.is_dir()
    store.save(result)
    assert RunStore(target).count() == 1


def test_default_path_honours_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("PARETO_APP_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "pareto-app" / "runs.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "pareto-app" / "runs.db"


def test_concurrent_writes_from_threads(store, result):
    errors: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(k: int) -> None:
        try:
            start.wait()
            for i in range(5):
                run_id = store.save(result, label=f"t{k}-{i}")
                with lock:
                    ids.append(run_id)
                store.list()  # readers interleave with the other writers
        except BaseException as err:  # any failure inside a thread must fail the test, not vanish with it
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 20 and len(set(ids)) == 20
    assert sorted(store.list()["label"]) == sorted(f"t{k}-{i}" for k in range(4) for i in range(5))


def test_unknown_id_raises_key_error(store, result):
    store.save(result)
    for call in (store.load, store.delete):
        with pytest.raises(KeyError, match="12345"):
            call(12345)
    assert store.count() == 1


def test_bad_paths_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="directory") as err:
        RunStore(tmp_path)
    assert str(tmp_path) in str(err.value)

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="a-file"):
        RunStore(blocker / "runs.db")

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a sqlite database, not at all" * 100)
    with pytest.raises(ValueError, match="garbage.db"):
        RunStore(garbage)


def test_schema_version_and_newer_database_refused(tmp_path):
    path = tmp_path / "runs.db"
    RunStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ValueError, match="newer"):
        RunStore(path)


def test_live_runs_are_found_on_an_index_and_an_older_archive_gets_it(tmp_path):
    """How many workers step (asked at each feed answer of every page) and which runs are live (`reap`) are read off
    an index of the runs' status, not by reading every archived run's row; an archive of the version before gets
    the index when opened, its runs kept."""
    path = tmp_path / "runs.db"
    store = RunStore(path)
    spec = pa.RunSpec(task="toy-quadratic", preference=[0.5, 0.5]).to_dict()
    live = [store.create(spec, num_objectives=2) for _ in range(3)]
    store.append(live[0], [], [], status="running", progress=0.0, pid=os.getpid())
    store.append(live[1], [], [], status="running", progress=0.0, pid=os.getpid())
    assert store.stepping_workers() == 1  # two runs, one worker process
    with sqlite3.connect(path) as conn:
        for query in ("SELECT COUNT(DISTINCT pid) FROM runs WHERE status = 'running' AND pid IS NOT NULL",
                      "SELECT id, pid, heartbeat FROM runs WHERE status IN ('queued', 'running', 'paused')"):
            plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + query))
            assert "USING" in plan and "INDEX runs_status" in plan, plan
        conn.execute("DROP INDEX runs_status")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    store = RunStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'runs_status'").fetchone() is not None
    assert store.stepping_workers() == 1 and sorted(store.list()["id"]) == live


def test_diverged_run_is_stored_with_its_message(store, diverged):
    run_id = store.save(diverged)
    row = store.list().iloc[0]
    assert row["status"] == "diverged" and "diverged" in row["message"]
    assert row["iterations"] == len(diverged.history) < row["steps"] == 200
    back = store.load(run_id)
    assert back.status == "diverged" and back.message == diverged.message
    assert_same_result(back, diverged)


def test_export_json(result):
    data = json.loads(export_json(result))
    assert data["task"] == result.task and data["solver"] == "wc-mhgd" and data["seed"] == result.seed
    assert data["options"] == result.options and data["task_params"] == result.task_params
    back = pa.Result.from_dict(data)
    np.testing.assert_array_equal(back.objectives, result.objectives)
    assert torch.equal(back.x, result.x) and torch.equal(back.y, result.y) and back.x.dtype == result.x.dtype
    # Full precision, NaN as null: the history compares equal once NaN is restored.
    pd.testing.assert_frame_equal(back.history, result.history, check_exact=True)


@pytest.mark.parametrize("suffix", [".json", ".pt"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_save_then_load_is_bit_exact(tmp_path, result, diverged, suffix, dtype):
    for original in (result, diverged):
        want = dataclasses.replace(original, x=original.x.to(dtype), y=original.y.to(dtype))
        back = pa.Result.load(want.save(tmp_path / f"r{suffix}"))
        assert_same_result(back, want)


def test_a_csv_export_reads_back_bit_exact(tmp_path, result):
    from pareto_app.result import read_history_csv

    pd.testing.assert_frame_equal(read_history_csv(result.save(tmp_path / "r.csv")), result.history, check_exact=True)


def test_export_csv(result):
    history = pd.read_csv(io.BytesIO(export_csv(result)))
    pd.testing.assert_frame_equal(history, result.history, check_exact=True)


def test_export_torch(result):
    data = torch.load(io.BytesIO(export_torch(result)), weights_only=False)
    assert torch.equal(data["x"], result.x) and torch.equal(data["y"], result.y)
    assert data["task"] == result.task and data["options"] == result.options and data["seed"] == result.seed
    assert data["metadata"] == result.metadata
    assert pa.Result.from_dict(data).status == "finished"


@pytest.mark.parametrize("step", [0, 7, 19])
def test_export_point_matches_history_row(result, step):
    point = export_point(result, step)
    json.dumps(point, allow_nan=False)  # strict JSON, ready for a download
    row = result.history.loc[result.history["step"] == step].iloc[0]
    assert point["step"] == step
    assert point["objectives"] == [row["f1"], row["f2"]]
    assert point["weights"] == [row["w1"], row["w2"]]
    assert point["preference"] == [row["r1"], row["r2"]]
    for name in ("constraint_violation", "stationarity", "kkt_residual"):
        want = row[name]
        assert point["metrics"][name] == (None if math.isnan(want) else want)
    assert point["oracle_calls"] == {k: int(row[f"oracle_{k}"]) for k in ("ul_grad", "ll_grad", "jvp", "hvp")}
    assert point["oracle_total"] == row["oracle_total"]
    assert (point["task"], point["solver"], point["seed"]) == (result.task, result.solver, result.seed)
    assert point["task_params"] == result.task_params and point["options"] == result.options
    if step == 19:  # the last iterate is the run's point
        assert point["x"] == result.x.double().tolist()
    else:
        assert point["x"] is None


def test_export_point_unknown_step(result):
    with pytest.raises(KeyError, match="999"):
        export_point(result, 999)


def test_empty_listing_has_the_columns(store):
    listing = store.list()
    assert listing.empty and store.count() == 0
    assert {"id", "created", "label", "task", "solver", "status", "steps", "preference", "stationarity",
            "kkt_residual", "constraint_violation"} <= set(listing.columns)
    assert listing["id"].dtype == np.int64 and listing["stationarity"].dtype == np.float64


def test_the_rows_where_a_preference_changed_are_read_through_their_own_index(tmp_path):
    """A page reading a long live run's preference changes reads only those rows (schema version 3)."""
    from pareto_app.store import _PREFERENCE_CHANGED

    RunStore(tmp_path / "runs.db")
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        plan = " ".join(str(r) for r in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT seq, row FROM iterates WHERE run_id = 1 AND {_PREFERENCE_CHANGED} AND seq > 0 "
            "AND step <= 9 ORDER BY seq"))
    assert "iterates_preference_changes" in plan
