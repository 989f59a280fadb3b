"""Your own data (issue 12): data files for the data tasks, every bad file named, and an MLP run on one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import pareto_app as pa
from pareto_app.tasks import dataset as ds


def _blobs(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable-ish Gaussian classes (independent of the library's own generator)."""
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((classes, d))
    y = np.arange(n) % classes
    return centres[y] + rng.standard_normal((n, d)), y


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    X, y = _blobs(600, 36, 4)
    path = tmp_path / "blobs.npz"
    np.savez(path, X=X, y=y + 10)  # labels need not start at 0
    return path


def test_an_npz_file_loads_scaled_with_labels_renumbered(npz: Path) -> None:
    data = ds.load(npz)
    raw = np.load(npz)
    assert data.features.shape == (600, 36) and data.classes == (4,) and data.side == 6
    assert data.features.min() == 0.0 and data.features.max() == 1.0
    # One affine map: the features keep their order and relative scale.
    lo, hi = raw["X"].min(), raw["X"].max()
    np.testing.assert_allclose(data.features, (raw["X"] - lo) / (hi - lo))
    np.testing.assert_array_equal(data.labels[:, 0], raw["y"] - 10)


def test_a_csv_file_with_named_label_columns(tmp_path: Path) -> None:
    X, y = _blobs(300, 5, 3)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    frame.insert(2, "kind", np.array(["a", "b", "c"])[y])  # a text label column is fine
    frame["parity"] = y % 2
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    data = ds.load(path, label="kind,parity")
    assert data.features.shape == (300, 5) and data.classes == (3, 2) and data.label_names == ("kind", "parity")
    assert data.side is None
    np.testing.assert_array_equal(data.labels[:, 0], y)


def _write_npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


GOOD_X, GOOD_Y = _blobs(100, 4, 2)


@pytest.mark.parametrize("arrays, message", [
    ({"X": GOOD_X}, "lacks array(s) ['y']"),
    ({"features": GOOD_X, "y": GOOD_Y}, "lacks array(s) ['X']"),
    ({"X": GOOD_X[:, 0], "y": GOOD_Y}, "X is 1-d"),
    ({"X": GOOD_X.astype(str), "y": GOOD_Y}, "accepted: a 2-d array of numbers"),
    ({"X": GOOD_X, "y": GOOD_Y[:-1]}, "one per row of X"),
    ({"X": np.where(np.eye(100, 4, k=-7) > 0, np.nan, GOOD_X), "y": GOOD_Y}, "first at row 7, column 0"),
    ({"X": GOOD_X, "y": GOOD_Y + 0.5}, "fractional"),
    ({"X": GOOD_X, "y": np.zeros(100, dtype=int)}, "single class"),
    ({"X": GOOD_X, "y": np.r_[np.zeros(97, int), 1, 1, 1]}, "too few samples of class(es) [1]"),
    ({"X": np.ones((100, 4)), "y": GOOD_Y}, "nothing to learn"),
    ({"X": GOOD_X, "y": GOOD_Y.astype(str)}, "integer class labels"),
])
def test_each_bad_npz_is_named(tmp_path: Path, arrays: dict, message: str) -> None:
    path = _write_npz(tmp_path, **arrays)
    with pytest.raises(ValueError) as err:
        ds.load(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_an_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(path, X=np.array([object()] * 4, dtype=object), y=GOOD_Y[:4])
    with pytest.raises(ValueError, match="plain numeric arrays"):
        ds.load(path)


@pytest.mark.parametrize("content, label, message", [
    ("a,b,label\n1,2,0\n", "target", "no label column ['target']; its columns are ['a', 'b', 'label']"),
    ("a,b,label\n1,x,0\n2,3,1\n", "label", "feature column(s) ['b'] are not numbers"),
    ("", "label", "not a readable CSV table"),
])
def test_each_bad_csv_is_named(tmp_path: Path, content: str, label: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        ds.load(path, label=label)
    assert message in str(err.value)


def test_bad_paths_and_sizes_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, npz: Path) -> None:
    with pytest.raises(ValueError, match=r"\.txt file is not accepted; accepted: \.npz"):
        ds.load(tmp_path / "data.txt")
    with pytest.raises(ValueError, match="does not exist"):
        ds.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a readable .npz"):
        ds.load(tmp_path / "junk.npz")
    monkeypatch.setattr(ds, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ValueError, match="accepted: at most"):
        ds.load(npz)
    with pytest.raises(ValueError, match="cannot be read"):
        pa.tasks.get("hyper-cleaning", data=str(tmp_path / "nowhere.npz"))


def test_every_data_task_builds_on_a_data_file(tmp_path: Path, npz: Path) -> None:
    problem = pa.tasks.get("hyper-cleaning", data=str(npz), S=3, train_per_set=60, val_per_set=30, test_size=30)
    # 36 features are a 6×6 image: the square's symmetries are the domains, 4 classes.
    assert [n.split(" (")[0] for n in problem.objective_names] == ["val loss upright", "val loss mirrored",
                                                                    "val loss upside down"]
    assert problem.y0.numel() == 4 * 36 + 4
    assert problem.data["dataset"] == "blobs"
    mixture = pa.tasks.get("data-mixture", data=str(npz), N=3, M=3, source_size=100, val_size=100, test_size=100)
    assert mixture.objective_names[:2] == ["val loss: classes 0-1 (rel.)", "val loss: classes 2-3 (rel.)"]
    assert mixture.y0.numel() == 4 * 37
    X, y = _blobs(400, 7, 4, seed=3)
    np.savez(tmp_path / "tasks.npz", X=X, y=np.stack([y, y % 2, (y >= 2).astype(int)], axis=1))
    multi = pa.tasks.get("multitask-weighting", data=str(tmp_path / "tasks.npz"), S=3, train_size=200, val_size=100,
                         test_size=100)
    assert multi.objective_names == ["val loss: task 1 (rel.)", "val loss: task 2 (rel.)", "val loss: task 3 (rel.)"]
    # Every objective is 1 at the start in relative units, as on the digits.
    np.testing.assert_allclose([f(multi.x0, multi.y0).item() for f in multi.upper], 1.0, rtol=1e-9)
    # 7 features are no image: the domains are fixed feature permutations.
    flat = pa.tasks.get("hyper-cleaning", data=str(tmp_path / "tasks.npz"), S=2, train_per_set=100, val_per_set=50,
                        test_size=50)
    assert flat.objective_names[1].startswith("val loss permuted 1")


def test_data_too_small_for_the_splits_is_named(npz: Path) -> None:
    with pytest.raises(ValueError, match="blobs has 600: accepted are"):
        pa.tasks.get("hyper-cleaning", data=str(npz), S=5, train_per_set=100)
    with pytest.raises(ValueError, match="S=4 tasks, but blobs has 1 label column"):
        pa.tasks.get("multitask-weighting", data=str(npz), S=4, train_size=100, val_size=100, test_size=100)


def test_a_generated_image_set_of_realistic_shape() -> None:
    X, y = ds.synthetic(2000, 784, classes=10, seed=0)
    assert X.shape == (2000, 784) and X.dtype == np.float32 and set(np.unique(y)) == set(range(10))


def test_an_mlp_hyper_cleaning_run_on_5000_generated_samples_lowers_every_objective(tmp_path: Path) -> None:
    X, y = _blobs(5000, 25, 5, seed=1)
    np.savez(tmp_path / "five_thousand.npz", X=X, y=y)
    problem = pa.tasks.get("hyper-cleaning", data=str(tmp_path / "five_thousand.npz"), S=2, train_per_set=1500,
                           val_per_set=500, test_size=500, model="mlp", hidden=16, depth=2)
    assert not problem.strongly_convex and problem.y0.numel() == 25 * 16 + 16 + 16 * 16 + 16 + 5 * 16 + 5
    start = np.array([f(problem.x0, problem.y0).item() for f in problem.upper])
    result = pa.solve(problem, "wc-penalty", [0.5, 0.5], steps=60, metrics_every=60)
    assert result.status == "finished"
    assert (result.objectives < 0.98 * start).all(), (start, result.objectives)
    assert torch.isfinite(result.y).all()
    # The model learned the classes (chance is 1/5) on held-out samples of both domains.
    scores = problem.evaluate(result.x, result.y)
    assert scores["acc_1"] > 0.5 and scores["acc_2"] > 0.5, scores


def test_make_data_writes_a_set_that_bench_sweep_runs_on(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pareto_app.__main__ import main

    out = tmp_path / "generated.npz"
    assert main(["make-data", str(out), "--samples", "400", "--features", "16", "--classes", "4"]) == 0
    data = ds.load(out)
    assert data.features.shape == (400, 16) and data.classes == (4,) and data.side == 4
    assert main(["bench", "sweep", "--task", "hyper-cleaning", "--data", str(out), "--param", "S=2",
                 "--param", "train_per_set=40", "--param", "val_per_set=20", "--param", "test_size=20",
                 "--B", "2", "--steps", "2", "--inner", "2", "8"]) == 0
    printed = capsys.readouterr().out
    assert "speedup" in printed and "reads per recorded step" in printed and "ratio 8/2" in printed
    assert main(["make-data", str(tmp_path / "x.csv")]) == 2
    assert main(["bench", "qp", "--data", str(out)]) == 2
    capsys.readouterr()
    assert main(["bench", "sweep", "--task", "toy-llgc", "--solver", "wc-penalty", "--B", "2", "--steps", "2",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "wc-penalty" in printed and "need a task with a strongly convex lower level" in printed
    assert main(["bench", "sweep", "--inner", "8", "2"]) == 2
    assert "--inner 8 2: accepted: two whole numbers 1 ≤ FEW < MANY" in capsys.readouterr().err
    assert main(["bench", "sweep", "--solver", "nope"]) == 2
    assert "--solver nope: accepted: wc-mhgd" in capsys.readouterr().err
