# Tenure: `make run` starts the whole local stack; `make test` runs lint and the test suite.
# GNU make. Everything runs from the project's virtualenv, created on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The whole suite must finish well under 15 minutes on 2 cores; past this, pytest is interrupted
# (SIGINT, so it still prints which test hung), then killed 30 s later.
TEST_TIMEOUT ?= 900
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run status test lint fmt bench bench-intake bench-reviews bench-pim clean clean-state

help:
	@echo "make run          start the local stack (Temporal, Graph + SCIM emulators, worker, API)"
	@echo "make status       check every endpoint of the running local stack"
	@echo "make test         ruff + the whole test suite (TEST_TIMEOUT=$(TEST_TIMEOUT)s)"
	@echo "make bench        joiner throughput benchmark"
	@echo "make bench-intake HR intake: cost of the inbound checks and the event-id record"
	@echo "make bench-reviews access review of 100,000 items, start to applied, hires meanwhile"
	@echo "make bench-pim    PIM activation to Graph, and 50 incidents at once, hires meanwhile"
	@echo "make lint / fmt   ruff check / ruff format"
	@echo "make clean        remove the virtualenv and caches (keeps .tenure)"
	@echo "make clean-state  remove .tenure: the local stack's workflows, directories, credentials"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "Tenure needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 | head -n1)." >&2; \
		echo "Run e.g. 'make PYTHON=python3.12 ...'." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tenure stack run

status: $(STAMP)
	$(VENV)/bin/tenure stack status

test: $(STAMP)
	$(VENV)/bin/ruff check .
	timeout --signal=INT --kill-after=30 $(TEST_TIMEOUT) $(VENV)/bin/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m bench.joiners

bench-intake: $(STAMP)
	$(PY) -m bench.intake

bench-reviews: $(STAMP)
	$(PY) -m bench.reviews

bench-pim: $(STAMP)
	$(PY) -m bench.pim

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
	find . -path ./.tenure -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

clean-state:
	rm -rf .tenure
