# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PORT ?= 8501
# The FinOps Foundation's FOCUS validator needs Python 3.12 and its own environment.
# The first Python 3.12 that really runs (a pyenv shim can exist without working).
FOCUS_PYTHON ?= $(shell for p in $$HOME/.pyenv/versions/3.12*/bin/python3.12 $$(command -v python3.12); do "$$p" -c "import sys" >/dev/null 2>&1 && echo "$$p" && break; done)
FOCUS_VENV := .focus-venv

.PHONY: run test install install-dev lint typecheck pytest migrate worker app clean focus-venv

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt $(VENV)/.runtime
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

migrate: install
	$(PY) -m tracker db upgrade

# Starts the worker in the background and the app in the foreground; Ctrl-C stops both.
run: migrate
	@mkdir -p data
	@echo "Starting the worker (log: data/worker.log) and the app on http://localhost:$(PORT)"
	@$(PY) worker.py >> data/worker.log 2>&1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

worker: migrate
	$(PY) worker.py

app: migrate
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy

# The FOCUS export test runs the validator from here (skipped without it, failed under CI).
$(FOCUS_VENV)/.installed:
	@if [ -z "$(FOCUS_PYTHON)" ]; then \
		if [ "$$CI" = "true" ]; then echo "Python 3.12 not found; set FOCUS_PYTHON" >&2; exit 1; fi; \
		echo "Python 3.12 not found: the FOCUS validator test will be skipped (set FOCUS_PYTHON)"; \
	else \
		$(FOCUS_PYTHON) -m venv $(FOCUS_VENV) && \
		$(FOCUS_VENV)/bin/pip install --quiet focus-validator==2.2.1 "pyarrow<18" && \
		touch $@; \
	fi

focus-venv: $(FOCUS_VENV)/.installed

# The single-sign-on test runs a real OpenID Connect provider (npm's oidc-provider) with Node.
OIDC_DIR := tests/oidc
$(OIDC_DIR)/node_modules/.installed: $(OIDC_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(OIDC_DIR) --no-audit --no-fund --silent && touch $@; \
	else \
		if [ "$$CI" = "true" ]; then echo "npm not found; install Node.js and npm" >&2; exit 1; fi; \
		echo "npm not found: the single-sign-on test will be skipped"; \
	fi

pytest: install-dev $(FOCUS_VENV)/.installed $(OIDC_DIR)/node_modules/.installed
	$(PY) -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(FOCUS_VENV) $(OIDC_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache
