"""The failure metrics' ``reason`` dimension: a closed set that covers every reason the layer raises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tao_results.observability import METRIC_REASONS, OTHER_REASON, create_telemetry, metric_reason

LAYER = Path(__file__).resolve().parents[2] / "layers" / "tao_results" / "tao_results"
RAISED = re.compile(
    r"(?:PermanentError|TransientError|Outcome)\(\s*(?:PERMANENT,\s*|TRANSIENT,\s*)?\"([a-z_]+)\""
)


def test_every_reason_the_layer_raises_has_its_own_value() -> None:
    raised = {reason for path in LAYER.glob("*.py") for reason in RAISED.findall(path.read_text())}
    assert raised, "the pattern no longer finds the layer's reasons"
    missing = raised - METRIC_REASONS
    assert not missing, f"add to observability.METRIC_REASONS (else they count as 'other'): {missing}"


@pytest.mark.parametrize(
    ("reason", "value"),
    [
        ("not_found", "not_found"),
        ("throttled", "throttled"),
        ("made_up_reason", OTHER_REASON),
        (None, OTHER_REASON),
    ],
)
def test_unknown_reasons_become_other(reason: str | None, value: str) -> None:
    assert metric_reason(reason) == value


def test_failures_print_one_document_per_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    telemetry = create_telemetry("svc", "Ns", "WARNING", tracing_enabled=False)
    telemetry.permanent_failure("signed_url_rejected")
    telemetry.transient_failure("Some Free Text")
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d.get("PermanentFailures"), d.get("TransientFailures"), d["reason"]) for d in documents] == [
        ([1.0], None, "signed_url_rejected"),
        (None, [1.0], "other"),
    ]
    assert all(
        d["service"] == "svc" and d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Ns" for d in documents
    )
    telemetry.metrics.flush_metrics()  # the by-service aggregate stays in the invocation's document
    [aggregate] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert aggregate["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "reason" not in aggregate


def test_nothing_is_printed_when_metrics_are_disabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    telemetry = create_telemetry("svc", "Ns", "WARNING", tracing_enabled=False)
    telemetry.permanent_failure("not_found")
    assert capsys.readouterr().out == ""
