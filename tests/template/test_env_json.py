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


def declared_variables(template: dict[str, Any]) -> dict[str, Any]:
    """What the template gives the function: Globals' variables, then the function's own (SAM merges
    them, the function's winning)."""
    return {
        **template["Globals"]["Function"]["Environment"]["Variables"],
        **template["Resources"]["DownloadResultFunction"]["Properties"]["Environment"]["Variables"],
    }


def test_lists_exactly_the_variables_the_template_gives_the_function(template: dict[str, Any]) -> None:
    declared = set(declared_variables(template))
    variables = json.loads(ENV_FILE.read_text(encoding="utf-8"))["DownloadResultFunction"]
    assert set(variables) == declared, {
        "missing from env.json": sorted(declared - set(variables)),
        "not in the template": sorted(set(variables) - declared),
    }
    assert all(isinstance(value, str) for value in variables.values())  # SAM wants strings


def test_values_are_the_templates_defaults_where_it_has_one(template: dict[str, Any]) -> None:
    """A literal is copied, a parameter with a Default takes it, a condition takes one of its
    literal branches; only the required parameters and the stack's own resources get example values."""
    variables = json.loads(ENV_FILE.read_text(encoding="utf-8"))["DownloadResultFunction"]
    parameters = template["Parameters"]
    for name, value in declared_variables(template).items():
        if isinstance(value, str | int):
            assert variables[name] == str(value), name
        elif set(value) == {"Ref"} and "Default" in parameters.get(value["Ref"], {}):
            assert variables[name] == str(parameters[value["Ref"]]["Default"]), name
        elif set(value) == {"Fn::If"} and all(isinstance(b, str) for b in value["Fn::If"][1:]):
            assert variables[name] in value["Fn::If"][1:], name


def test_values_pass_the_functions_configuration_checks() -> None:
    variables = json.loads(ENV_FILE.read_text(encoding="utf-8"))["DownloadResultFunction"]
    settings = load_settings({**variables, "AWS_REGION": "eu-west-1"})
    assert settings.results_bucket == variables["RESULTS_BUCKET"]
