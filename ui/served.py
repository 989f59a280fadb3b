"""The folder a component's files are served from.

Streamlit serves a component's files from one folder, and refuses a link that leads out of it: a
component that needs files kept elsewhere (plotly.js as the installed plotly package ships it, the feed
follower its pages share) is served from a folder of copies, made once in the user's cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

COMPONENTS = Path(__file__).resolve().parent / "components"
FEED_JS = COMPONENTS / "feed.js"  # what a live part's page uses to follow its feed (ui/live_feed.py)


def served_folder(name: str, files: dict[str, Path]) -> Path:
    """A folder holding a copy of each of `files` ({name in the folder: source}). In the user's cache
    (PARETO_APP_CACHE, else $XDG_CACHE_HOME or ~/.cache, /pareto-app), one folder per content of them all,
    made once; where that cannot be written, a private temporary folder for this server."""
    digest = hashlib.sha256()
    for target, source in sorted(files.items()):
        digest.update(target.encode() + b"\0" + source.read_bytes())
    root = Path(os.environ.get("PARETO_APP_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pareto-app")
    folder = root / f"{name}-{digest.hexdigest()[:12]}"
    try:
        if not all((folder / target).is_file() for target in files):
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(folder, ignore_errors=True)  # half of one (a cleaner took a file): made again
            _fill(Path(tempfile.mkdtemp(dir=root)), files).rename(folder)  # whole or not at all
    except OSError:  # read-only or full, or another server made it meanwhile
        if not all((folder / target).is_file() for target in files):
            return _fill(Path(tempfile.mkdtemp(prefix=f"pareto-app-{name}-")), files)
    return folder


def _fill(folder: Path, files: dict[str, Path]) -> Path:
    try:
        for target, source in files.items():
            shutil.copyfile(source, folder / target)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
