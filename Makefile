# Every target installs what it needs first, idempotently (a stamp file records the install).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := layers/tao_results/requirements.txt
# The lock pins the layer's dependencies with hashes; as a constraints file for the dev install it
# must lose them (pip turns any hash into --require-hashes mode for every package).
CONSTRAINTS := $(VENV)/layer-constraints.txt
# The layer is locked for the Lambda target, whatever machine runs `make lock`.
LOCK_TARGET := --python-version 3.12 --python-platform aarch64-manylinux2014

.PHONY: install test lint template-checks unit integration demo bench soak e2e clean lock lock-check

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	sed -e '/--hash=/d' -e 's/ \\$$//' $(LOCK) > $(CONSTRAINTS)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

# Re-resolve the layer's dependencies (requirements.in → requirements.txt, hashes included).
# Versions already in the lock are kept unless requirements.in demands otherwise; to take newer
# transitive releases: make lock LOCK_ARGS=--upgrade
LOCK_ARGS ?=
lock: install
	$(BIN)/uv pip compile layers/tao_results/requirements.in --quiet --generate-hashes $(LOCK_TARGET) \
		--custom-compile-command 'make lock' $(LOCK_ARGS) -o $(LOCK)

# Fails when the lock no longer matches requirements.in (someone edited one without the other).
lock-check: install
	@cp $(LOCK) $(VENV)/lock-check.txt
	@$(BIN)/uv pip compile layers/tao_results/requirements.in --quiet --generate-hashes $(LOCK_TARGET) \
		--custom-compile-command 'make lock' -o $(VENV)/lock-check.txt
	@diff -u $(LOCK) $(VENV)/lock-check.txt || { echo "$(LOCK) is stale: run 'make lock' and commit it" >&2; exit 1; }
	@echo "lock-check: $(LOCK) matches requirements.in"

lint: install lock-check
	$(BIN)/ruff check layers functions tools tests
	$(BIN)/ruff format --check layers functions tools tests
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

# sam build, then the built function and layer on MiniStack (its own SQS event source mapping), run by
# its Python executor and by awslambdaric; needs a Python 3.12 (pyenv) and the package index.
e2e: install
	bash .ci/e2e.sh

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
