"""The data of the data tasks: scikit-learn's bundled digits, or the user's own file.

A `Dataset` is features in [0, 1] (n × d, float64) and one or more integer label columns
(n × T, classes 0..K_t − 1). The digits (8×8 images, 10 classes; no download) are the default;
`load(path)` reads a user's `.npz` (arrays `X` and `y`) or `.csv` (label columns named, the
other columns features) and names what is wrong with a bad file. Splits are random, disjoint
and fixed by the seed; corruption replaces a label by another class of the same column.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

SUFFIXES = (".npz", ".csv")
MAX_FILE_BYTES = 500 * 2**20  # a data file above this is refused (the app's upload box says so)
MIN_PER_CLASS = 5  # a class with fewer samples cannot appear in every split


@dataclass(frozen=True)
class Dataset:
    name: str
    features: np.ndarray  # [n, d] float64 in [0, 1]
    labels: np.ndarray  # [n, T] int64, column t in 0..classes[t] - 1
    label_names: tuple[str, ...]
    classes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.features)

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    @property
    def side(self) -> int | None:
        """√d when the features can be read as a square image (its symmetries are then domains)."""
        side = math.isqrt(self.dim)
        return side if side * side == self.dim and side > 1 else None

    @property
    def is_digits(self) -> bool:
        return self.name == "digits"

    def splits(self, sizes: tuple[int, ...], seed: int, dtype: torch.dtype, device: torch.device,
               what: str = "the splits") -> list[Split]:
        """Disjoint random splits of the given sizes (their sum ≤ len(self))."""
        if sum(sizes) > len(self):
            raise ValueError(f"{self.name} has {len(self)} samples; {what} ask for {sum(sizes)} ({list(sizes)}): "
                             f"lower the sizes or give a larger data set")
        order = np.random.default_rng(seed).permutation(len(self))
        out, start = [], 0
        for size in sizes:
            idx = order[start:start + size]
            start += size
            out.append(Split(torch.tensor(self.features[idx], dtype=dtype, device=device),
                             torch.tensor(self.labels[idx, 0], dtype=torch.long, device=device),
                             torch.tensor(self.labels[idx], dtype=torch.long, device=device)))
        return out


@dataclass(frozen=True)
class Split:
    features: torch.Tensor  # [n, d]
    labels: torch.Tensor  # [n] int64: the first label column
    columns: torch.Tensor  # [n, T] int64: every label column

    def __len__(self) -> int:
        return len(self.labels)


@lru_cache(maxsize=1)
def digits() -> Dataset:
    """The 1797 digits of scikit-learn, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return Dataset("digits", (data.data / 16.0).astype(np.float64), data.target.astype(np.int64)[:, None],
                   ("digit",), (10,))


def upload_folder() -> Path:
    """Where the app keeps uploaded data files (PARETO_APP_DATA, else ~/.cache/pareto-app/data)."""
    return Path(os.environ.get("PARETO_APP_DATA") or Path.home() / ".cache" / "pareto-app" / "data")


def save_upload(name: str, content: bytes) -> Path:
    """Keep an uploaded file under its content hash (a worker process reads it by path); its path.

    Only the suffix of `name` is kept: a name from a browser is no path to trust."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"uploaded file {name!r}: a {suffix or 'suffix-less'} file is not accepted; accepted: .npz "
                         f"(arrays X and y) or .csv (a header row and a label column)")
    if len(content) > MAX_FILE_BYTES:
        raise ValueError(f"uploaded file {name!r} has {len(content) / 2**20:.0f} MiB; accepted: at most "
                         f"{MAX_FILE_BYTES // 2**20} MiB")
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(name).stem)[:40] or "data"
    folder = upload_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{hashlib.sha256(content).hexdigest()[:16]}{suffix}"
    if not path.exists():
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(content)
        partial.replace(path)  # a reader never sees half a file
    return path


def dataset(path: str = "", label: str = "label") -> Dataset:
    """The digits when `path` is empty, else the user's file (cached while the file is unchanged)."""
    if not path:
        return digits()
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except OSError as err:
        raise ValueError(f"data file {str(file)!r} cannot be read ({err.strerror}); give the path of a .npz or .csv "
                         f"file") from None
    return _load(str(file.resolve()), label, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _load(path: str, label: str, mtime_ns: int, size: int) -> Dataset:
    return load(path, label)


def load(path: str | os.PathLike, label: str = "label") -> Dataset:
    """Read a data set file; ValueError naming the file and what is wrong with it.

    `.npz`: `X` (n × d numbers) and `y` (n integer labels, or n × T for T tasks).
    `.csv`: a header row; `label` names the label column (several, comma-separated, for several
    tasks; numbers or class names); every other column is a feature.
    """
    file = Path(path)
    where = f"data file {str(file)!r}"
    if file.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{where}: a {file.suffix or 'suffix-less'} file is not accepted; accepted: .npz (arrays X "
                         f"and y) or .csv (a header row and a label column)")
    if not file.is_file():
        raise ValueError(f"{where} does not exist or is not a file")
    if file.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{where} has {file.stat().st_size / 2**20:.0f} MiB; accepted: at most "
                         f"{MAX_FILE_BYTES // 2**20} MiB")
    if file.suffix.lower() == ".npz":
        X, y, names = _read_npz(file, where)
    else:
        X, y, names = _read_csv(file, where, label)
    return _checked(file.stem, X, y, names, where)


def _read_npz(file: Path, where: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    if not zipfile.is_zipfile(file):  # np.load would try it as a pickle
        raise ValueError(f"{where} is not a readable .npz archive (not a zip file); write it with numpy.savez(path, X=X, "
                         f"y=y)")
    try:
        with np.load(file, allow_pickle=False) as archive:
            found = list(archive.files)
            missing = [k for k in ("X", "y") if k not in found]
            if missing:
                raise ValueError(f"{where} lacks array(s) {missing}; found {found}; accepted: X (n × d features) "
                                 f"and y (n integer labels, or n × T for T tasks)")
            X, y = archive["X"], archive["y"]
    except ValueError as err:
        if str(err).startswith(where):
            raise
        # allow_pickle=False refuses object arrays: nothing in the file is ever run.
        raise ValueError(f"{where}: X and y must be plain numeric arrays ({err})") from None
    except (OSError, EOFError) as err:  # not a zip, truncated
        raise ValueError(f"{where} is not a readable .npz archive ({err})") from None
    names = ("label",) if y.ndim == 1 else tuple(f"task {t + 1}" for t in range(y.shape[1] if y.ndim == 2 else 0))
    return X, y, names


def _read_csv(file: Path, where: str, label: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    import pandas as pd

    try:
        frame = pd.read_csv(file)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{where} is not a readable CSV table ({str(err).splitlines()[0]})") from None
    wanted = [c.strip() for c in str(label).split(",") if c.strip()]
    missing = [c for c in wanted if c not in frame.columns]
    if not wanted or missing:
        raise ValueError(f"{where} has no label column {missing or [label]}; its columns are "
                         f"{list(map(str, frame.columns))[:20]}; name the label column(s) with the `label` parameter")
    features = frame.drop(columns=wanted)
    text = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise ValueError(f"{where}: feature column(s) {text[:5]} are not numbers; accepted: numeric features only "
                         f"(encode categories as numbers first)")
    labels = frame[wanted]
    if labels.isna().any().any():
        row = int(np.flatnonzero(labels.isna().any(axis=1).to_numpy())[0])
        raise ValueError(f"{where}: a label is missing at data row {row + 1}; accepted: a label on every row")
    # Class names as text are classes too (numbered in sorted order), as a table often has them.
    columns = [labels[c].to_numpy() if pd.api.types.is_numeric_dtype(labels[c])
               else np.unique(labels[c].astype(str).to_numpy(), return_inverse=True)[1] for c in wanted]
    return features.to_numpy(dtype=np.float64), np.stack(columns, axis=1), tuple(wanted)


def _checked(name: str, X: np.ndarray, y: np.ndarray, names: tuple[str, ...], where: str) -> Dataset:
    if X.dtype.kind not in "biuf" or X.ndim != 2:
        raise ValueError(f"{where}: X is {X.ndim}-d of dtype {X.dtype}; accepted: a 2-d array of numbers (n × d)")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != len(X):
        raise ValueError(f"{where}: y has shape {tuple(y.shape)} and X {tuple(X.shape)}; accepted: y of n = {len(X)} "
                         f"labels (or n × T), one per row of X")
    if X.shape[1] < 1 or len(X) < 2:
        raise ValueError(f"{where}: X has shape {tuple(X.shape)}; accepted: at least 2 samples and 1 feature")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{where}: X has {int(bad.sum())} missing or non-finite value(s), the first at row {row}, "
                         f"column {col}; accepted: finite numbers only (fill or drop them first)")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{where}: the labels have missing or non-finite values; accepted: integer labels")
        if (y != np.round(y)).any():
            raise ValueError(f"{where}: the labels are fractional numbers (dtype {y.dtype}); accepted: integer "
                             f"class labels (this is classification, not regression)")
    elif y.dtype.kind not in "biu":
        raise ValueError(f"{where}: the labels have dtype {y.dtype}; accepted: integer class labels")
    low, high = X.min(), X.max()
    if high == low:
        raise ValueError(f"{where}: every feature of every sample equals {low:g}; nothing to learn from")
    labels = np.empty(y.shape, dtype=np.int64)
    classes = []
    for t in range(y.shape[1]):
        values, labels[:, t], counts = np.unique(y[:, t], return_inverse=True, return_counts=True)
        if len(values) < 2:
            raise ValueError(f"{where}: label column {names[t]!r} has a single class ({values[0]!r}); accepted: at "
                             f"least 2 classes")
        if counts.min() < MIN_PER_CLASS:
            few = values[counts < MIN_PER_CLASS]
            raise ValueError(f"{where}: label column {names[t]!r} has too few samples of class(es) "
                             f"{few[:5].tolist()} (fewest: {counts.min()}); accepted: at least {MIN_PER_CLASS} per class")
        classes.append(len(values))
    # One affine map for all features (the digits' pixels are scaled by 1/16 alike): relative
    # scales between features are the user's to choose; each task centres what it needs.
    features = (X - low) / (high - low)
    return Dataset(name, features, labels, names, tuple(classes))


def corrupt_labels(labels: torch.Tensor, rate: float, seed: int, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a `rate` fraction of labels by a different random class; returns (labels, corrupted mask)."""
    gen = np.random.default_rng(seed)
    n = len(labels)
    mask = np.zeros(n, dtype=bool)
    mask[gen.choice(n, size=int(round(rate * n)), replace=False)] = True
    noisy = labels.cpu().numpy().copy()
    shift = gen.integers(1, classes, size=mask.sum())
    noisy[mask] = (noisy[mask] + shift) % classes
    return torch.tensor(noisy, dtype=torch.long, device=labels.device), torch.tensor(mask, device=labels.device)


def square_symmetries(side: int) -> list[tuple[str, np.ndarray]]:
    """The 8 symmetries of a side × side image as pixel permutations, most dissimilar first.

    The order puts the mirror images early: they disagree with the upright image on most
    pixels, so even S = 2 has a clear trade-off.
    """
    grid = np.arange(side * side).reshape(side, side)
    maps = [
        ("upright", grid),
        ("mirrored", grid[:, ::-1]),
        ("upside down", grid[::-1, :]),
        ("rotated 180", grid[::-1, ::-1]),
        ("transposed", grid.T),
        ("rotated 90", np.rot90(grid, 1)),
        ("rotated 270", np.rot90(grid, 3)),
        ("anti-transposed", np.rot90(grid, 2).T),
    ]
    return [(name, m.reshape(-1).copy()) for name, m in maps]


def domains(data: Dataset, count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """`count` domains as feature permutations: an image's symmetries, else fixed random permutations.

    Features that are not a square image have no symmetries; a seeded permutation of them is
    a domain in the same sense (one model cannot fit all orders of its inputs at once).
    """
    if data.side is not None:
        return square_symmetries(data.side)[:count]
    rng = np.random.default_rng(seed + 65537)
    out = [("as given", np.arange(data.dim))]
    out += [(f"permuted {k}", rng.permutation(data.dim)) for k in range(1, count)]
    return out


def synthetic(samples: int, features: int, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A generated image-like classification set (X, y): each class a smooth random template plus noise.

    For benchmarks and tests at realistic sizes (e.g. 50,000 × 784) with no download.
    """
    rng = np.random.default_rng(seed)
    side = math.isqrt(features)
    templates = rng.standard_normal((classes, features))
    if side * side == features and side > 2:  # blur each template: neighbouring pixels correlate as in images
        grid = templates.reshape(classes, side, side)
        for axis in (1, 2):
            grid = (grid + np.roll(grid, 1, axis=axis) + np.roll(grid, -1, axis=axis)) / 3
        templates = grid.reshape(classes, features)
    y = rng.integers(classes, size=samples)
    X = templates[y] + 1.5 * rng.standard_normal((samples, features))
    return X.astype(np.float32), y.astype(np.int64)
