#!/usr/bin/env bash
# Checks of template.yaml that need more than pytest, all offline except the PyPI installs:
#   1. cfn-lint (from .venv)                      5. sam build, arm64, no Docker (needs a Python 3.12;
#   2. sam validate --lint                           skipped, loudly, when there is none)
#   3. SAM transform of the template               6. checkov on the template (hard-fails on any finding
#   4. layer dependencies resolve for the target      not skipped with a reason; see docs/security.md)
#      (pip --platform manylinux2014_aarch64 --python-version 3.12 --only-binary=:all:)
# aws-sam-cli and checkov pin boto3/botocore differently from the project, so each lives in its own
# git-ignored venv (.venv-sam, .venv-checkov), installed once; a version change reinstalls it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SAM_CLI_SPEC="aws-sam-cli==1.170.0"
CHECKOV_SPEC="checkov==3.3.30"
TARGET_PYTHON=3.12 # must match Runtime / BuildMethod in template.yaml
TARGET_PLATFORM=manylinux2014_aarch64
PYTHON=${PYTHON:-python3}
PROJECT_VENV=${PROJECT_VENV:-.venv}

export SAM_CLI_TELEMETRY=0
export BC_SKIP_MAPPING=TRUE
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
# samtranslator wants a region to render ARNs; nothing here talks to AWS.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-west-1}
export AWS_REGION=${AWS_REGION:-$AWS_DEFAULT_REGION}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/template-checks.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

TOTAL_START=$(date +%s)
TIMINGS=()
step() { # step NAME COMMAND...: run, time and record one check
	local name=$1 start end
	shift
	echo
	echo "==> $name"
	start=$(date +%s)
	"$@"
	end=$(date +%s)
	TIMINGS+=("$(printf '%-34s %4ss' "$name" $((end - start)))")
}

ensure_tool_venv() { # ensure_tool_venv DIR SPEC: an isolated venv holding exactly SPEC
	local dir=$1 spec=$2
	if [[ -x $dir/bin/python && -f $dir/.spec && $(cat "$dir/.spec") == "$spec" ]]; then
		echo "$spec already in $dir"
		return
	fi
	echo "installing $spec into $dir"
	rm -rf "$dir"
	"$PYTHON" -m venv "$dir"
	"$dir/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
	"$dir/bin/pip" install --quiet --disable-pip-version-check "$spec"
	echo "$spec" >"$dir/.spec"
}

install_tools() {
	[[ -x $PROJECT_VENV/bin/cfn-lint ]] || {
		echo "error: $PROJECT_VENV/bin/cfn-lint missing; run 'make install' first" >&2
		return 1
	}
	ensure_tool_venv .venv-sam "$SAM_CLI_SPEC"
	ensure_tool_venv .venv-checkov "$CHECKOV_SPEC"
}

run_cfn_lint() {
	"$PROJECT_VENV/bin/cfn-lint" --version
	"$PROJECT_VENV/bin/cfn-lint" template.yaml
	echo "cfn-lint: clean"
}

run_sam_validate() {
	.venv-sam/bin/sam --version
	.venv-sam/bin/sam validate --lint --template template.yaml
}

run_sam_translate() {
	# The same transform CloudFormation applies, run locally: proves what SAM generates from the
	# function (event source mapping settings, no SAM-generated role or policies).
	.venv-sam/bin/python - template.yaml <<'PY'
import sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

template = yaml_parse(open(sys.argv[1], encoding="utf-8").read())
for resource in template["Resources"].values():  # local paths become S3 URIs after `sam package`
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://bucket/function.zip"
    if resource["Type"] == "AWS::Serverless::LayerVersion":
        resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"

class NoManagedPolicies:
    def load(self):
        return {}

out = transform(template, {}, NoManagedPolicies())["Resources"]
kinds = sorted(r["Type"] for r in out.values())
(esm,) = [r["Properties"] for r in out.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
(fn,) = [r["Properties"] for r in out.values() if r["Type"] == "AWS::Lambda::Function"]
assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"], esm
assert esm["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaximumConcurrency"}}, esm
assert esm["EventSourceArn"] == {"Fn::GetAtt": ["SourceQueue", "Arn"]}, esm
assert fn["Role"] == {"Fn::GetAtt": ["DownloadResultRole", "Arn"]}, fn["Role"]
assert fn["Architectures"] == ["arm64"] and fn["Runtime"] == "python3.12", fn
assert kinds.count("AWS::IAM::Role") == 1, "SAM generated an extra role"
assert "AWS::IAM::Policy" not in kinds and "AWS::IAM::ManagedPolicy" not in kinds
print(f"transform OK: {len(out)} resources, event source mapping and role as intended")
PY
}

run_dependency_resolution() {
	# Resolve the layer's requirements exactly as the Lambda target needs them: CPython 3.12 on
	# manylinux2014 aarch64, wheels only (nothing may need compiling on the build machine).
	local target=$WORK/aarch64-site
	"$PROJECT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
		--platform "$TARGET_PLATFORM" --python-version "$TARGET_PYTHON" --implementation cp \
		--only-binary=:all: --target "$target" -r layers/tao_results/requirements.txt
	# Every installed wheel must be pure Python or built for aarch64.
	"$PROJECT_VENV/bin/python" - "$target" <<'PY'
import pathlib, sys
bad, count = [], 0
for wheel in pathlib.Path(sys.argv[1]).glob("*.dist-info/WHEEL"):
    count += 1
    tags = [l.split(":", 1)[1].strip() for l in wheel.read_text().splitlines() if l.startswith("Tag:")]
    if not all(t.endswith("-none-any") or "aarch64" in t for t in tags):
        bad.append((wheel.parent.name, tags))
    print(f"  {wheel.parent.name:45} {', '.join(tags)}")
if bad or not count:
    sys.exit(f"wheels not usable on arm64: {bad or 'none installed'}")
print(f"{count} distributions resolve for cp312 manylinux2014_aarch64")
PY
}

# shellcheck source=python312.sh
source .ci/python312.sh # the working directory is the repository root (see the cd above)

run_sam_build() {
	local py_bin build=$WORK/build
	py_bin=$(find_python312)
	[[ -n $py_bin ]] && py_bin=$(dirname "$py_bin")
	if [[ -z $py_bin ]]; then
		echo "######################################################################"
		echo "# SKIPPED: sam build - no Python $TARGET_PYTHON found (pyenv or PATH)."
		echo "# sam build without Docker needs the runtime's own Python. The layer's"
		echo "# dependencies were still proven to resolve for the target above."
		echo "######################################################################"
		TIMINGS+=("(sam build skipped: no python$TARGET_PYTHON)")
		return 0
	fi
	echo "using $py_bin/python$TARGET_PYTHON ($("$py_bin/python$TARGET_PYTHON" --version))"
	PATH="$py_bin:$PATH" .venv-sam/bin/sam build --template template.yaml --base-dir "$ROOT" \
		--build-dir "$build" --cache-dir "$WORK/sam-cache"

	local layer=$build/TaoResultsLayer/python fn=$build/DownloadResultFunction pkg
	for pkg in aws_lambda_powertools boto3 botocore requests; do
		[[ -d $layer/$pkg ]] || {
			echo "error: $pkg missing from the built layer" >&2
			return 1
		}
	done
	if [[ -f layers/tao_results/tao_results/__init__.py && ! -f $layer/tao_results/__init__.py ]]; then
		echo "error: tao_results package missing from the built layer ($layer)" >&2
		return 1
	fi
	# The layer ships the function's library only: the operator tools live in tools/ (see
	# tests/template/test_layer_contents.py for the module-by-module check).
	if [[ -e $layer/tao_results/cli.py || -e $layer/tao_results/local ]]; then
		echo "error: operator tools (cli.py, local/) in the built layer" >&2
		return 1
	fi
	echo "built layer: $(find "$layer/tao_results" -name '*.py' | wc -l) modules in tao_results," \
		"$(du -sh "$layer" | cut -f1) in all"
	if [[ -f functions/download_result/app.py && ! -f $fn/app.py ]]; then
		echo "error: app.py missing from the built function ($fn)" >&2
		return 1
	fi
	if find "$layer" -name '*x86_64*.so' | grep -q .; then
		echo "error: x86_64 binaries in the arm64 layer" >&2
		return 1
	fi
	# Import the built artifacts with the runtime's Python, the way Lambda lays them out
	# (/opt/python for the layer, the task root for the function). Compiled aarch64 extensions
	# cannot load here; every package in this layer has a pure-Python fallback.
	local modules="aws_lambda_powertools, boto3, requests"
	[[ -f $layer/tao_results/__init__.py ]] && modules+=", tao_results"
	[[ -f $fn/app.py ]] && modules+=", app"
	env -i PATH="$py_bin:/usr/bin:/bin" HOME="$WORK" AWS_DEFAULT_REGION="$AWS_DEFAULT_REGION" \
		AWS_REGION="$AWS_REGION" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
		TAO_BASE_URL=https://tao.example.invalid \
		TAO_CREDENTIALS_SECRET_ID=arn:aws:secretsmanager:eu-west-1:123456789012:secret:tao-AbCdEf \
		RESULTS_BUCKET=example-bucket RESULTS_PREFIX=tao-results/ \
		DEAD_LETTER_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/dlq \
		POWERTOOLS_SERVICE_NAME=tao-results-to-s3 POWERTOOLS_TRACE_DISABLED=true \
		"$py_bin/python$TARGET_PYTHON" -I -c "
import sys
sys.path[:0] = ['$fn', '$layer']
import $modules
print('imported from the build with', sys.version.split()[0] + ':', '$modules')"
}

run_checkov() {
	# Hard-fails (exit 1) on any failed check; the only exceptions are the Metadata.checkov.skip
	# entries in template.yaml, each with a reason that docs/security.md repeats.
	.venv-checkov/bin/checkov --version
	.venv-checkov/bin/checkov --skip-download --compact --framework cloudformation secrets \
		-f template.yaml -f samconfig.toml -f events/sqs-single.json -f events/sqs-batch.json
}

step "install tools (once)" install_tools
step "cfn-lint" run_cfn_lint
step "sam validate --lint" run_sam_validate
step "sam transform (samtranslator)" run_sam_translate
step "aarch64 dependency resolution" run_dependency_resolution
step "sam build (arm64, no Docker)" run_sam_build
step "checkov" run_checkov

echo
echo "==> template checks passed"
printf '  %s\n' "${TIMINGS[@]}"
echo "  total: $(($(date +%s) - TOTAL_START))s"
