"""The installable package (issue 12): `import pareto_app` from any folder, the `pareto-app` command, a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "pareto-app"


def test_import_pareto_app_works_from_any_folder(tmp_path: Path) -> None:
    # No checkout on sys.path: Python starts in an empty folder, and PYTHONPATH is cleared.
    out = subprocess.run([sys.executable, "-c", "import pareto_app, sys; print(pareto_app.__file__); "
                          "print(pareto_app.tasks.names()[0])"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    location = Path(out.stdout.splitlines()[0]).resolve()
    assert location == ROOT / "pareto_app" / "__init__.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the pareto-app command is installed by `make install` (pip install -e .)")
def test_the_pareto_app_command_equals_python_m_pareto_app(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pareto_app.__main__ import main

    # Run from an empty folder: the command finds the installed package, not the checkout.
    by_script = subprocess.run([str(SCRIPT), "tasks"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin"})
    assert by_script.returncode == 0, by_script.stderr
    assert main(["tasks"]) == 0
    assert by_script.stdout == capsys.readouterr().out
    assert "toy-quadratic" in by_script.stdout


def test_pip_builds_a_wheel_of_the_library_alone(tmp_path: Path) -> None:
    # What `pip install .` installs: every module of pareto_app, the console script, and not the tests or pages.
    # Built from a copy: setuptools leaves build/ and an egg-info beside the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "reports",
                                                                 "docs"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
                          str(source)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("pareto_app-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pareto_app").rglob("*.py")}
    assert modules <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "pages/", "ui/"))]
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pareto-app = pareto_app.__main__:main" in zipfile.ZipFile(wheel).read(entry).decode()
