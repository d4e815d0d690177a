# GDMCD Studio: `make app` sets up and starts the web app; `make test` sets up and runs every test.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup app test browser-deps lint bench-model screenshots docs

$(STAMP): requirements.txt requirements-app.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	$(VENV)/bin/pip install -q --no-deps -r requirements-nodeps.txt
	$(VENV)/bin/pip install -q --no-deps -e ".[app]"
	touch $(STAMP)

setup: $(STAMP)

app: setup
	$(VENV)/bin/streamlit run app.py

# The browser tests drive Playwright's own Chromium when installed (.venv/bin/python -m playwright install chromium),
# else Debian's /usr/bin/chromium. This installs Debian's only where it can (root and apt-get) and never fails the
# build: without a Chromium the browser tests are skipped with a line saying how to get one (under CI=true they fail).
browser-deps:
	@if [ -x /usr/bin/chromium ] || [ -n "$$GDMCD_CHROMIUM" ] || ls "$${PLAYWRIGHT_BROWSERS_PATH:-$$HOME/.cache/ms-playwright}"/chromium-* >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver) \
			|| echo "browser-deps: apt-get could not install chromium; the browser tests will say how to get one"; \
	else \
		echo "browser-deps: no Chromium (install Playwright's: $(PY) -m playwright install chromium)"; \
	fi

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
