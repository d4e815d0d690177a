# GDMCD Studio: `make app` sets up and starts the web app; `make test` sets up and runs every test.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup app test browser-deps lint bench-model screenshots docs

$(STAMP): requirements.txt requirements-app.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	$(VENV)/bin/pip install -q --no-deps -e ".[app]"
	touch $(STAMP)

setup: $(STAMP)

app: setup
	$(VENV)/bin/streamlit run app.py

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
browser-deps:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

test: setup browser-deps lint
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check gdmcd_core gdmcd_app tests bench app.py
	$(VENV)/bin/ruff format --check gdmcd_core gdmcd_app tests bench app.py

# Render the tables of docs/benchmarks/ from the committed measurements (bench/results/*.json, the checkpoint
# cards, the repair ledger): seconds, no benchmark is re-run. A benchmark run with --doc writes its own page.
docs: setup
	$(PY) -m bench.docs

# Regenerate the README's screenshots (assets/screenshots/*.png) with the browser test, using the
# committed checkpoint and the real data: one short design run, then every page.
screenshots: setup browser-deps
	GDMCD_SCREENSHOTS=1 GDMCD_TEST_CHECKPOINT=checkpoints/tc_default.pt $(PY) -m pytest -m browser tests/test_browser.py
