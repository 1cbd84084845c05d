# Every target installs what it needs first, idempotently (a stamp file records the install).
# `make demo` and `make local-stack` install only the `demo` extra; everything else installs `dev`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
LOCK := layers/tao_results/requirements.txt
# The lock pins the layer's dependencies with hashes; as a constraints file for the dev install it
# must lose them (pip turns any hash into --require-hashes mode for every package).
CONSTRAINTS := $(VENV)/layer-constraints.txt
# The layer is locked for the Lambda target, whatever machine runs `make lock`.
LOCK_TARGET := --python-version 3.12 --python-platform aarch64-manylinux2014
# pip's own progress (one line per package) stays on: a first install takes a while.
PIP_INSTALL := $(BIN)/pip install --disable-pip-version-check --progress-bar off

.PHONY: install install-demo test lint template-checks unit integration demo local-stack bench soak \
	e2e clean lock lock-check dashboard-picture

install: $(STAMP)

install-demo: $(DEMO_STAMP)

$(CONSTRAINTS): $(LOCK)
	@echo "==> creating $(VENV) with $$($(PYTHON) --version)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	sed -e '/--hash=/d' -e 's/ \\$$//' $(LOCK) > $(CONSTRAINTS)

$(DEMO_STAMP): pyproject.toml devtools/pyproject.toml $(CONSTRAINTS)
	@echo "==> installing the demo's packages (the layer's locked dependencies, moto's server)"
	$(PIP_INSTALL) -c $(CONSTRAINTS) -e '.[demo]' -e ./devtools
	touch $@

$(STAMP): pyproject.toml devtools/pyproject.toml $(CONSTRAINTS)
	@echo "==> installing everything for tests, lint and benchmarks (extras test, lint, bench)"
	$(PIP_INSTALL) -c $(CONSTRAINTS) -e '.[dev]' -e ./devtools
	touch $(DEMO_STAMP) $@

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
	$(BIN)/ruff check layers functions tools devtools tests
	$(BIN)/ruff format --check layers functions tools devtools tests
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

# cfn-lint, sam validate --lint, the aarch64 dependency proof, sam build (with pyenv's 3.12 when
# present) and checkov; SAM CLI and checkov live in their own virtual environments.
template-checks: install
	bash .ci/template-checks.sh

test: lint template-checks
	$(BIN)/pytest -m "not soak"

# The whole pipeline on an embedded stack: moto + the TAO emulator + the local event source mapping.
# The function's JSON logs and metrics go to $(DEMO_LOGS) (docs/dashboard.png is drawn from them).
DEMO_LOGS ?= .demo/function.log
demo: install-demo
	$(BIN)/python -m tao_results_demo --function-logs $(DEMO_LOGS)

# moto + the TAO emulator with the secret, bucket and queues, until Ctrl-C; prints the `export`
# lines that `tao-results run-local`, `enqueue`, `dlq` and `status` need in another terminal.
local-stack: install-demo
	$(BIN)/python -m tao_results_demo.local_stack

# docs/dashboard.png: the template's dashboard widgets drawn with the metrics of a demo run.
dashboard-picture: install
	test -s $(DEMO_LOGS) || $(MAKE) demo
	$(BIN)/python -m tests.support.dashboard_picture --logs $(DEMO_LOGS) --out docs/dashboard.png

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
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache .hypothesis .aws-sam
