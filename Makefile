# Every target installs what it needs first, idempotently (a stamp file records the install).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := layers/tao_results/requirements.txt

.PHONY: install test lint template-checks unit integration demo bench soak clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff check layers functions tests
	$(BIN)/ruff format --check layers functions tests
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

# cfn-lint, sam validate --lint, the aarch64 dependency proof, sam build (with pyenv's 3.12 when
# present) and checkov; SAM CLI and checkov live in their own virtual environments.
template-checks: install
	bash .ci/template-checks.sh

test: lint template-checks
	$(BIN)/pytest -m "not soak"

# The whole pipeline on an embedded stack: moto + the TAO emulator + the local event source mapping.
demo: install
	$(BIN)/python -m tests.support.demo

# The long tier: 1,000+ messages under random faults, a 256 MiB crash; prints its figures.
soak: install
	$(BIN)/pytest -m soak -s -p no:cacheprovider

# Benchmarks against SeaweedFS and moto; writes docs/benchmarks.md and docs/benchmarks.png.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam
