# The two commands a newcomer needs: `make serve` and `make test`.
# Everything installs into ./.venv; uv is bootstrapped from PyPI with pip if missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv

.PHONY: install serve test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

install: $(UV)  ## install taskbot and its development tools into .venv
	$(UV) pip install --quiet --python $(BIN)/python -e '.[dev]'

serve: install  ## run everything locally: Prefect server, API, reconciler, worker
	$(BIN)/taskbot serve

test: install  ## run the whole test suite (starts its own Prefect server)
	$(BIN)/pytest -q

lint: install  ## ruff and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy api deployments flows

bench: install  ## benchmarks (print figures; they assert nothing)
	$(BIN)/python -m tests.benchmarks.bench_store

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
