"""events/env.json, the environment of ``sam local invoke --env-vars events/env.json``, matches the template.

SAM CLI applies an env-vars file per function logical id (or ``Parameters`` for all) and only to
variables the template declares; anything else in the file is silently dropped. So every key here
must be one the function (or Globals) declares, and the values must pass the function's own
configuration checks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tao_results.config import load_settings
from tests.template.test_template import ROOT, load_cfn_yaml

ENV_FILE = ROOT / "events" / "env.json"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_cfn_yaml(ROOT / "template.yaml")


def test_keys_are_function_logical_ids(template: dict[str, Any]) -> None:
    env_vars = json.loads(ENV_FILE.read_text(encoding="utf-8"))
    functions = {
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(env_vars) <= functions | {"Parameters"}
    assert "DownloadResultFunction" in env_vars


def test_every_variable_is_declared_by_the_template(template: dict[str, Any]) -> None:
    declared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    declared |= set(template["Resources"]["DownloadResultFunction"]["Properties"]["Environment"]["Variables"])
    variables = json.loads(ENV_FILE.read_text(encoding="utf-8"))["DownloadResultFunction"]
    assert set(variables) <= declared, set(variables) - declared
    # the ones whose template value is a reference to this stack's resources or a required parameter
    assert {"TAO_BASE_URL", "TAO_CREDENTIALS_SECRET_ID", "RESULTS_BUCKET", "DEAD_LETTER_QUEUE_URL"} <= set(
        variables
    )
    assert all(isinstance(value, str) for value in variables.values())  # SAM wants strings


def test_values_pass_the_functions_configuration_checks() -> None:
    variables = json.loads(ENV_FILE.read_text(encoding="utf-8"))["DownloadResultFunction"]
    settings = load_settings({**variables, "AWS_REGION": "eu-west-1"})
    assert settings.results_bucket == variables["RESULTS_BUCKET"]
