# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What gets installed: the package in editable mode with test tools. The Dockerfile runs
# `make install INSTALL_SPEC=.` so the image is built by this same recipe.
INSTALL_SPEC ?= -e .[dev]

.PHONY: run test install lint bench bench-kpis clean env

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(INSTALL_SPEC)
	touch $(STAMP)

install: $(STAMP)

# A first run writes .env with fresh random secrets, so the connector starts with no setup.
.env:
	$(PYTHON) scripts/make_env.py > .env
	@echo "wrote .env with generated secrets (WACRM_ADMIN_TOKEN, WHATSAPP_APP_SECRET, ...)"

env: .env

run: $(STAMP) .env
	$(BIN)/wacrm db upgrade
	$(BIN)/wacrm serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# wrk drives the closed-loop runs (a Python client would be the bottleneck on 2 cores).
bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk || echo "wrk unavailable: Python client"
	$(BIN)/python benchmarks/ingest.py

# KPI recompute on 1 M conversations / 10 M messages (PostgreSQL wacrm_bench and SQLite).
bench-kpis: $(STAMP)
	$(BIN)/python benchmarks/kpis.py

clean:
	rm -rf $(VENV) *.egg-info build
