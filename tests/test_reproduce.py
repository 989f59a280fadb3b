"""Each reproduction runs end to end in --quick mode and writes its report."""

import re
import shutil

import pytest

from pareto_app.__main__ import main
from pareto_app.reproduce import names, run


@pytest.mark.parametrize("name", names())
def test_quick_reproduction_writes_a_report(name, tmp_path):
    path = run(name, quick=True, out=tmp_path)
    text = path.read_text()
    assert path == tmp_path / name / "README.md"
    assert "Quick mode" in text and "## What came out" in text
    assert re.search(r"^\| .* \|$", text, re.M), "the report has a table"
    html = list((tmp_path / name).glob("*.html"))
    assert html and (tmp_path / "plotly.min.js").exists()
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        pngs = list((tmp_path / name).glob("*.png"))
        assert len(pngs) == len(html)
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "nan" not in text.lower().replace("nan-", "")


def test_unknown_reproduction_is_a_clear_error(capsys):
    assert main(["reproduce", "nope"]) == 2
    assert "hyper-cleaning-table" in capsys.readouterr().err
