# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: install run test lint bench fuzz clean

install: $(STAMP)

# Reinstalls only when requirements.txt or pyproject.toml change, so `make install` is idempotent and quick.
# pareto_app itself is installed editable (with Ray, the optional backend of sweeps): `import pareto_app`
# works from any folder, and `pareto-app` is the command line.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ".[ray]"
	touch $(STAMP)

run: install
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

# Two CPU-bound test processes on the 2-core CI machine (pytest-xdist), then the browser tests alone:
# they time what a person sees (pause, stop, redraws), which a second busy process would blur.
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist worksteal --ignore=tests/test_browser.py
	$(PY) -m pytest -q tests/test_browser.py

# The property-based fuzz of the API, the CLI and result files with many more examples than `make test`
# runs (tests/test_fuzz.py; FUZZ_EXAMPLES=N for another number, random rather than fixed examples).
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-2000} $(PY) -m pytest -q tests/test_fuzz.py

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) -m pareto_app bench qp
	$(PY) -m pareto_app bench hvp
	$(PY) -m pareto_app bench iteration

# PNGs of every page for the docs (docs/*.png): its own server and archive, Debian's chromium (headless).
.PHONY: screenshots
screenshots: install
	$(PY) tools/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
