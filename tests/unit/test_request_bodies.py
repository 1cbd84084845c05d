"""The bodies ``tao-results enqueue`` builds: each shape reads back, with the function's own parser,
as the request it was meant to be; what the function would refuse is refused before sending."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tao_results.message import MAX_PASSTHROUGH_BYTES, MAX_TASK_TOKEN_CHARS, parse_request
from tao_results_cli.request_bodies import RequestRefused, RequestShape, request_body

FIXED = {
    "new_id": lambda: "00000000-0000-4000-8000-000000000001",
    "now": lambda: datetime(2026, 1, 1, tzinfo=UTC),
}
PASSTHROUGH = {"tenant": "north", "ids": [1, 2.5, None], "ok": True, "é": "ü"}


@pytest.mark.parametrize("envelope", ["direct", "sns", "eventbridge"])
@pytest.mark.parametrize("numeric", [False, True])
def test_every_shape_reads_back_as_the_request_meant(envelope: str, numeric: bool) -> None:
    shape = RequestShape(envelope=envelope, numeric_ids=numeric, task_token="tok-1", passthrough=PASSTHROUGH)
    body = request_body("12345", shape, **FIXED)  # type: ignore[arg-type]

    request = parse_request(body)
    assert (request.reference_id, request.task_token, request.passthrough, request.envelope) == (
        "12345", "tok-1", PASSTHROUGH, envelope,
    )  # fmt: skip
    inner = {
        "direct": lambda b: b,
        "sns": lambda b: json.loads(b["Message"]),
        "eventbridge": lambda b: b["detail"],
    }
    sent = inner[envelope](json.loads(body))
    assert sent["referenceId"] == (12345 if numeric else "12345")  # a JSON number only when asked


def test_plain_request_is_the_bare_reference() -> None:
    assert json.loads(request_body("ref-1", RequestShape())) == {"referenceId": "ref-1"}


def test_a_null_passthrough_is_sent_as_null() -> None:
    assert json.loads(request_body("ref-1", RequestShape(passthrough=None))) == {
        "referenceId": "ref-1",
        "passthrough": None,
    }


def test_envelopes_carry_what_sns_and_eventbridge_deliver() -> None:
    sns = json.loads(request_body("r", RequestShape(envelope="sns"), **FIXED))  # type: ignore[arg-type]
    assert sns["Type"] == "Notification"
    assert json.loads(sns["Message"]) == {"referenceId": "r"}
    assert sns["Timestamp"] == "2026-01-01T00:00:00.000Z"
    shape = RequestShape(
        envelope="eventbridge", account="123456789012", region="eu-west-1", event_source="x.y"
    )
    event = json.loads(request_body("r", shape, **FIXED))  # type: ignore[arg-type]
    assert (event["source"], event["detail-type"], event["account"], event["region"]) == (
        "x.y", "TAO Result Requested", "123456789012", "eu-west-1",
    )  # fmt: skip
    assert event["detail"] == {"referenceId": "r"}
    assert event["time"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("reference", "shape", "why"),
    [
        ("007", RequestShape(numeric_ids=True), "leading zeros"),
        ("ref-1", RequestShape(numeric_ids=True), "not a non-negative integer"),
        ("١٢٣", RequestShape(numeric_ids=True), "not a non-negative integer"),  # Arabic-Indic digits
        ("r", RequestShape(task_token=""), "taskToken must be a string of 1-2048"),
        (
            "r",
            RequestShape(task_token="t" * (MAX_TASK_TOKEN_CHARS + 1)),
            "taskToken must be a string of 1-2048",
        ),
        ("r", RequestShape(passthrough="x" * MAX_PASSTHROUGH_BYTES), "more than 4096"),
        ("r", RequestShape(passthrough=float("nan")), "not JSON"),
        ("r", RequestShape(envelope="sqs"), "unknown envelope"),
    ],
)
def test_what_the_function_would_refuse_is_refused(reference: str, shape: RequestShape, why: str) -> None:
    with pytest.raises(RequestRefused, match=why) as refused:
        request_body(reference, shape)
    assert "\n" not in str(refused.value)


def test_the_largest_passthrough_the_function_takes_is_sent() -> None:
    largest = "x" * (MAX_PASSTHROUGH_BYTES - 2)  # the two quotes make it exactly 4096 bytes
    for envelope in ("direct", "sns", "eventbridge"):
        body = request_body("r", replace(RequestShape(passthrough=largest), envelope=envelope))
        assert parse_request(body).passthrough == largest
