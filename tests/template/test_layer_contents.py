"""The layer holds only what the function imports: every module in it is loaded by the handler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers/tao_results"
FUNCTION = ROOT / "functions/download_result"

# The function's cold start, in a clean interpreter whose path is what Lambda gives it: the
# function's code root and the layer's python/ directory (here: the layer's source directory,
# which `sam build` copies there as it is).
_PROBE = """
import json, os, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
os.environ.update(json.loads(sys.argv[3]))
import app
print(json.dumps(sorted(m for m in sys.modules if m == "tao_results" or m.startswith("tao_results."))))
"""

_ENVIRONMENT = {
    "TAO_BASE_URL": "https://tao.example.invalid",
    "TAO_CREDENTIALS_SECRET_ID": "tao-credentials",
    "RESULTS_BUCKET": "example-bucket",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def _layer_modules() -> set[str]:
    modules = set()
    for path in (LAYER / "tao_results").rglob("*.py"):
        parts = path.relative_to(LAYER).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_the_layer_holds_python_only_in_its_package() -> None:
    # An editable install may leave a (git-ignored) *.egg-info here; a clean clone has none.
    top_level = {
        p.name
        for p in LAYER.iterdir()
        if not p.name.startswith(".") and p.name != "__pycache__" and not p.name.endswith(".egg-info")
    }
    assert top_level == {"tao_results", "requirements.in", "requirements.txt"}


def test_every_module_of_the_layer_is_imported_by_the_function() -> None:
    answer = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, str(FUNCTION), str(LAYER), json.dumps(_ENVIRONMENT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    imported = set(json.loads(answer.stdout.splitlines()[-1]))
    assert imported, "the function imports nothing from the layer"
    assert _layer_modules() - imported == set(), "modules in the layer that the function never imports"
    assert imported <= _layer_modules()


def test_operator_tools_are_not_in_the_layer() -> None:
    assert not (LAYER / "tao_results/cli.py").exists()
    assert not (LAYER / "tao_results/local").exists()
    assert (ROOT / "tools/tao_results_cli/cli.py").exists()


def test_an_operator_install_carries_no_development_package() -> None:
    """``pip install .`` gives the layer's package and the tools; the emulator, the demo and moto's
    stack are the devtools distribution of their own (devtools/pyproject.toml), as make installs it."""
    from importlib.metadata import distribution  # noqa: PLC0415

    def top_level(name: str) -> set[str]:
        return set((distribution(name).read_text("top_level.txt") or "").split())

    assert top_level("tao-results-to-s3") == {"tao_results", "tao_results_cli"}
    assert top_level("tao-results-devtools") == {"tao_emulator", "tao_results_demo", "local_aws"}
