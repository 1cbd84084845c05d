"""The CloudWatch dashboard in template.yaml shows metrics that exist.

The function's own metrics are taken from what it really prints (EMF documents from the layer's
Telemetry and Powertools' cold-start metric), not from a list kept by hand: a renamed metric or a
changed dimension fails here. AWS metrics must name this stack's queues and function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from tao_results.observability import METRIC_REASONS, create_telemetry
from tests.support import dashboard_picture
from tests.template.test_template import ROOT, load_cfn_yaml

SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]+)\}")
SEARCH = re.compile(r"SEARCH\('\{(?P<namespace>[^,}]+),(?P<dims>[^}]*)\} (?P<query>[^']*)', '(\w+)', (\d+)\)")
AWS_METRICS = {
    "AWS/SQS": {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    },
    "AWS/Lambda": {"Errors", "Throttles", "Duration", "ConcurrentExecutions", "Invocations"},
}
AWS_DIMENSION_VALUES = {
    ("AWS/SQS", "QueueName"): {"SourceQueue.QueueName", "DeadLetterQueue.QueueName"},
    ("AWS/Lambda", "FunctionName"): {"DownloadResultFunction"},
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_cfn_yaml(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def body_and_variables(template: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The dashboard's JSON with ``${X}`` left in place, and the X's it substitutes."""
    dashboard = template["Resources"]["Dashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str)
    variables = {name for bang, name in SUB_VARIABLE.findall(text) if not bang}
    return json.loads(text), variables


@pytest.fixture(scope="module")
def widgets(body_and_variables: tuple[dict[str, Any], set[str]]) -> list[dict[str, Any]]:
    return list(body_and_variables[0]["widgets"])


@pytest.fixture
def emf_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the function prints for one copy, one dead letter, one retry and a cold start."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    telemetry = create_telemetry("tao-results-to-s3", "TaoResultsToS3", "WARNING", tracing_enabled=False)
    telemetry.copied(1024, 0.5)
    telemetry.permanent_failure("not_found")
    telemetry.transient_failure("throttled")

    class Context:
        function_name = "fn"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:fn"
        aws_request_id = "r"

    monkeypatch.setattr(cold_start, "is_cold_start", True)
    handler: Callable[[dict[str, Any], Any], None] = telemetry.metrics.log_metrics(
        lambda event, context: None, capture_cold_start_metric=True
    )
    handler({}, Context())
    return capsys.readouterr().out.splitlines()


@pytest.fixture
def emitted(emf_lines: list[str]) -> dict[str, set[frozenset[str]]]:
    """Metric name → the dimension-name sets the function publishes it with (its EMF output)."""
    found: dict[str, set[frozenset[str]]] = {}
    for line in emf_lines:
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "TaoResultsToS3"
            for metric in directive["Metrics"]:
                for dimensions in directive["Dimensions"]:
                    found.setdefault(metric["Name"], set()).add(frozenset(dimensions))
    return found


def metric_rows(widgets: list[dict[str, Any]]) -> list[list[Any]]:
    return [row for widget in widgets for row in widget["properties"]["metrics"]]


def test_function_metrics_on_the_dashboard_are_published(
    widgets: list[dict[str, Any]], emitted: dict[str, set[frozenset[str]]], template: dict[str, Any]
) -> None:
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = globals_env["POWERTOOLS_METRICS_NAMESPACE"], globals_env["POWERTOOLS_SERVICE_NAME"]
    shown = set()
    for row in metric_rows(widgets):
        if isinstance(row[0], dict) or row[0] != namespace:
            continue
        name, pairs = row[1], [item for item in row[2:] if not isinstance(item, dict)]
        dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
        assert name in emitted, f"{name} is on the dashboard but the function never publishes it"
        assert frozenset(dimensions) in emitted[name], (name, sorted(dimensions), emitted[name])
        assert dimensions.get("service") == service
        shown.add(name)
    assert shown >= {"ResultsCopied", "BytesCopied", "CopyDuration", "ColdStart"}


def test_failures_by_reason_are_searched_with_the_published_dimensions(
    widgets: list[dict[str, Any]], emitted: dict[str, set[frozenset[str]]]
) -> None:
    searched = {}
    for row in metric_rows(widgets):
        if not isinstance(row[0], dict):
            continue
        match = SEARCH.fullmatch(row[0]["expression"])
        assert match, row[0]["expression"]
        assert match["namespace"] == "TaoResultsToS3"
        name = re.search(r'MetricName="(\w+)"', match["query"])
        assert name
        assert 'service="tao-results-to-s3"' in match["query"]
        searched[name[1]] = frozenset(match["dims"].split(","))
        assert row[0]["label"] == "${!PROP('Dim.reason')}"  # the reason names each line
    assert searched == {
        "PermanentFailures": frozenset({"reason", "service"}),
        "TransientFailures": frozenset({"reason", "service"}),
    }
    for name, dimensions in searched.items():
        assert dimensions in emitted[name]


def test_aws_metrics_name_this_stacks_resources(
    widgets: list[dict[str, Any]],
    body_and_variables: tuple[dict[str, Any], set[str]],
    template: dict[str, Any],
) -> None:
    shown: dict[str, set[str]] = {}
    for row in metric_rows(widgets):
        if isinstance(row[0], dict) or row[0] not in AWS_METRICS:
            continue
        namespace, name, dimension, value = row[0], row[1], row[2], row[3]
        assert name in AWS_METRICS[namespace], name
        match = SUB_VARIABLE.fullmatch(value)
        assert match, value
        assert match[2] in AWS_DIMENSION_VALUES[(namespace, dimension)], value
        shown.setdefault(namespace, set()).add(name)
    assert shown["AWS/SQS"] >= {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
    assert shown["AWS/Lambda"] >= {"Errors", "Throttles", "Duration", "ConcurrentExecutions"}
    resources = template["Resources"]
    for variable in body_and_variables[1]:
        if not variable.startswith("AWS::"):
            assert variable.split(".")[0] in resources, variable


def test_widgets_fit_the_grid_without_overlapping(widgets: list[dict[str, Any]]) -> None:
    cells: set[tuple[int, int]] = set()
    for widget in widgets:
        x, y, width, height = widget["x"], widget["y"], widget["width"], widget["height"]
        assert x >= 0 and x + width <= 24, widget["properties"]["title"]  # the grid is 24 columns
        area = {(column, row) for column in range(x, x + width) for row in range(y, y + height)}
        assert not area & cells, widget["properties"]["title"]
        cells |= area
        assert widget["properties"]["region"] == "${AWS::Region}"


def test_dashboard_is_an_output(template: dict[str, Any]) -> None:
    assert template["Outputs"]["DashboardName"]["Value"] == {"Ref": "Dashboard"}
    assert "dashboards:name=${Dashboard}" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_reason_dimension_values_are_bounded() -> None:
    assert "other" in METRIC_REASONS
    assert len(METRIC_REASONS) < 60  # each value is a metric (and a dashboard line)


def test_the_picture_script_finds_every_function_metric_of_the_dashboard(
    widgets: list[dict[str, Any]], emf_lines: list[str]
) -> None:
    points = dashboard_picture.read_points(emf_lines)
    for row in metric_rows(widgets):
        if not isinstance(row[0], dict) and row[0].startswith("AWS/"):
            continue
        assert dashboard_picture.series_for(row, points, function_name="fn"), row
