"""The two alarms on the function's own signals watch what the function really writes.

``PermanentFailuresAlarm`` reads the EMF metric the function prints; ``SignedUrlRejectedAlarm`` reads
a metric that ``SignedUrlRejectedMetricFilter`` extracts from the function's log lines. Both are
checked here against the output of the real handler (over sockets, moto and the TAO emulator), with
the namespace, metric, dimensions and filter pattern taken from template.yaml, so a renamed field or
metric on either side fails.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from tao_emulator import Fault, TaoEmulator
from tests.fault.test_conservation import everything_captured
from tests.support.harness import HarnessFactory
from tests.template.test_template import TEMPLATE, load_cfn_yaml

_TERM = re.compile(r'\(\$\.(\w+) = "([^"]*)"\)')


def filter_matches(pattern: str, event: dict[str, Any]) -> bool:
    """CloudWatch Logs JSON filter pattern, the subset the template uses: ``{ (t1) && (t2) ... }``."""
    body = pattern.strip().removeprefix("{").removesuffix("}").strip()
    terms = [term.strip() for term in body.split("&&")]
    parsed = [_TERM.fullmatch(term) for term in terms]
    assert all(parsed), f"the test's evaluator does not know this pattern: {pattern}"
    return all(event.get(match.group(1)) == match.group(2) for match in parsed if match)


def json_lines(output: str) -> list[dict[str, Any]]:
    documents = []
    for line in output.splitlines():
        if line.startswith("{"):
            document = json.loads(line)
            if isinstance(document, dict):
                documents.append(document)
    return documents


def test_the_alarmed_metrics_are_what_the_function_writes(harness: HarnessFactory, tao: TaoEmulator) -> None:
    template = load_cfn_yaml(TEMPLATE)
    resources = template["Resources"]
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    pattern = resources["SignedUrlRejectedMetricFilter"]["Properties"]["FilterPattern"]
    (transformation,) = resources["SignedUrlRejectedMetricFilter"]["Properties"]["MetricTransformations"]
    (dimension,) = transformation["Dimensions"]
    permanent = resources["PermanentFailuresAlarm"]["Properties"]
    (permanent_dimension,) = permanent["Dimensions"]

    tao.add_result("forbidden", size=10)
    tao.add_fault(
        Fault(
            "download",
            "signed_url",
            reference_id="forbidden",
            url="http://169.254.169.254/latest/meta-data/",
        )
    )
    buffer = io.StringIO()
    with everything_captured(buffer):
        h = harness(
            POWERTOOLS_SERVICE_NAME=environment["POWERTOOLS_SERVICE_NAME"],
            POWERTOOLS_METRICS_NAMESPACE=environment["POWERTOOLS_METRICS_NAMESPACE"],
        )
        _, failed = h.run({"referenceId": "forbidden"}, {"referenceId": "unknown"})
    assert failed == []
    documents = json_lines(buffer.getvalue())

    # One log line per signed_url_rejected dead letter, none for the other one.
    matched = [document for document in documents if filter_matches(pattern, document)]
    assert len(matched) == 1, [d.get("message") for d in documents]
    assert matched[0]["reason"] == "signed_url_rejected"
    assert any(d.get("reason") == "not_found" for d in documents), "the other dead letter was logged"
    # The metric's dimension is the function's name, which the alarm names with !Ref.
    assert dimension["Value"] == "$.function_name"
    assert isinstance(matched[0].get("function_name"), str) and matched[0]["function_name"]

    # PermanentFailures: the EMF document the alarm reads, in its namespace, with its dimension.
    emf = [d for d in documents if "_aws" in d]
    failures = [
        d
        for d in emf
        for directive in d["_aws"]["CloudWatchMetrics"]
        if directive["Namespace"] == permanent["Namespace"]
        and permanent["MetricName"] in {m["Name"] for m in directive["Metrics"]}
        and [permanent_dimension["Name"]] in directive["Dimensions"]
    ]
    assert failures, emf
    values = [d[permanent["MetricName"]] for d in failures]
    assert sum(sum(v) if isinstance(v, list) else v for v in values) == 2, values
    assert {d[permanent_dimension["Name"]] for d in failures} == {permanent_dimension["Value"]}
