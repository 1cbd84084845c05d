#!/usr/bin/env bash
# make e2e: the function from `sam build` output on a Lambda stack nobody here wrote.
#   1. tool venvs: .venv-sam (SAM CLI, same pin as template-checks.sh) and .venv-e2e (MiniStack and
#      awslambdaric, on the runtime's Python 3.12); each holds exactly its pinned spec, reinstalled
#      when the spec changes, so their pins never touch the project's .venv
#   2. sam build of template.yaml (arm64, no Docker) into .aws-sam/e2e
#   3. pytest -m e2e tests/e2e: deploys the built function and layer to MiniStack on 127.0.0.1 and
#      runs the scenario through MiniStack's own SQS event source mapping, once with its Python
#      executor and once with awslambdaric behind MiniStack's Lambda Runtime API
# Needs a Python 3.12 (pyenv or PATH) and the package index; nothing else leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

E2E_SPEC="ministack==1.5.33 awslambdaric==4.2.2"
# One pin for SAM CLI: the one template-checks.sh installs.
SAM_CLI_SPEC=$(sed -n 's/^SAM_CLI_SPEC="\(.*\)"$/\1/p' .ci/template-checks.sh)
TARGET_PYTHON=3.12 # the template's Runtime
PYTHON=${PYTHON:-python3}
PROJECT_VENV=${PROJECT_VENV:-.venv}
BUILD=$ROOT/.aws-sam/e2e

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-west-1}
export AWS_REGION=${AWS_REGION:-$AWS_DEFAULT_REGION}

TOTAL_START=$(date +%s)
TIMINGS=()
step() { # step NAME COMMAND...: run, time and record one step
	local name=$1 start
	shift
	echo
	echo "==> $name"
	start=$(date +%s)
	"$@"
	TIMINGS+=("$(printf '%-36s %4ss' "$name" $(($(date +%s) - start)))")
}

# shellcheck source=python312.sh
source .ci/python312.sh # the working directory is the repository root (see the cd above)

ensure_tool_venv() { # ensure_tool_venv DIR PYTHON SPEC...: an isolated venv holding exactly SPEC
	local dir=$1 python=$2
	shift 2
	if [[ -x $dir/bin/python && -f $dir/.spec && $(cat "$dir/.spec") == "$*" ]]; then
		echo "$* already in $dir"
		return
	fi
	echo "installing $* into $dir"
	rm -rf "$dir"
	"$python" -m venv "$dir"
	"$dir/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
	# shellcheck disable=SC2048,SC2086 # the spec is a list of requirements
	"$dir/bin/pip" install --quiet --disable-pip-version-check $*
	echo "$*" >"$dir/.spec"
}

PY312=$(find_python312)
if [[ -z $PY312 ]]; then
	echo "error: make e2e needs a Python $TARGET_PYTHON (pyenv or PATH): sam build without Docker" >&2
	echo "       and the function's runtime both use it" >&2
	exit 1
fi
echo "using $PY312 ($("$PY312" --version))"

install_tools() {
	[[ -x $PROJECT_VENV/bin/pytest ]] || {
		echo "error: $PROJECT_VENV/bin/pytest missing; run 'make install' first" >&2
		return 1
	}
	ensure_tool_venv .venv-sam "$PYTHON" "$SAM_CLI_SPEC"
	ensure_tool_venv .venv-e2e "$PY312" "$E2E_SPEC"
}

sam_build() {
	rm -rf "$BUILD"
	PATH="$(dirname "$PY312"):$PATH" .venv-sam/bin/sam build --template template.yaml --base-dir "$ROOT" \
		--build-dir "$BUILD" --cache-dir "$ROOT/.aws-sam/e2e-cache"
	ls "$BUILD"
}

run_scenarios() {
	E2E_BUILD_DIR=$BUILD E2E_VENV=$ROOT/.venv-e2e "$PROJECT_VENV/bin/pytest" tests/e2e -m e2e -s \
		-p no:cacheprovider "$@"
}

step "install tools (once)" install_tools
step "sam build (arm64, no Docker)" sam_build
step "scenarios on MiniStack" run_scenarios "$@"

echo
echo "==> e2e passed"
printf '  %s\n' "${TIMINGS[@]}"
echo "  total: $(($(date +%s) - TOTAL_START))s"
