PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format plan bench clean

# The venv is rebuilt only when a requirements file changes. The pinned numpy, pandas and
# pyarrow have wheels for CPython 3.11 to 3.13 only; any other would build them from source.
$(STAMP): requirements.txt requirements-dev.txt handlers/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' \
		|| { echo "$(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); lambda-fleet needs 3.11 to 3.13: make PYTHON=python3.12 ..." >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m fleetctl demo --stack dev

# -q: the progress dots and the summary (in pyproject's addopts it would add up with a -q on the
# command line to -qq, which drops the summary).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

plan: $(STAMP)
	$(BIN)/python -m fleetctl plan --stack $(or $(STACK),dev)

clean:
	rm -rf $(VENV) out build .pytest_cache .ruff_cache
