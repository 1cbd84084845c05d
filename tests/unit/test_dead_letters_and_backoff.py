import hashlib
import json
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tao_results.dead_letters import (
    DEAD_LETTER_MAX_BYTES,
    dead_letter_attributes,
    dead_letter_body,
    serialise,
)
from tao_results.errors import PermanentError, TransientError
from tao_results.redaction import REDACTED, SECRETS, SecretRegistry
from tao_results.redelivery import backoff_seconds, minimum_redelivery_span

RECORD = SQSRecord(
    {"messageId": "m-1", "body": '{"referenceId": "r"}', "attributes": {"ApproximateReceiveCount": "3"}}
)


def test_dead_letter_body_has_every_documented_field():
    error = PermanentError("not_found", "Reference ID not found.", 404)
    body = dead_letter_body(RECORD, "r", error, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    assert body == {
        "referenceId": "r",
        "reason": "not_found",
        "httpStatus": 404,
        "detail": "Reference ID not found.",
        "originalBody": '{"referenceId": "r"}',
        "messageId": "m-1",
        "failedAt": "2026-11-28T12:00:00.000Z",
        "attempts": 3,
    }
    json.dumps(body)


def test_dead_letter_attributes_for_filtering():
    attributes = dead_letter_attributes(None, PermanentError("malformed_message", "x"))
    assert attributes["reason"] == {"DataType": "String", "StringValue": "malformed_message"}
    assert "referenceId" not in attributes
    assert "httpStatus" not in attributes


@pytest.mark.parametrize("receive_count", [1, 2, 5, 50])
def test_backoff_is_exponential_bounded_and_jittered(receive_count):
    delay = backoff_seconds(receive_count, base=10, ceiling=900, retry_after=None)
    expected = min(10 * 2 ** (receive_count - 1), 900)
    assert expected / 2 - 1 <= delay <= expected


def test_backoff_honours_retry_after():
    assert backoff_seconds(1, base=1, ceiling=900, retry_after=120) == 120
    assert backoff_seconds(1, base=1, ceiling=60, retry_after=120) == 60


def test_registry_scrubs_known_values_and_credential_shapes():
    registry = SecretRegistry()
    registry.add("tok-abcdef-123")
    registry.add("abc")  # too short to be a credential: never redacted
    line = (
        "token tok-abcdef-123 url https://b.s3.amazonaws.com/k?X-Amz-Signature=deadbeef&x=1 "
        'Authorization: Bearer eyJhbGciOi.payload.sig {"client_secret": "hunter22"} abc'
    )
    scrubbed = registry.scrub(line)
    for secret in ("tok-abcdef-123", "deadbeef", "eyJhbGciOi", "hunter22"):
        assert secret not in scrubbed
    assert scrubbed.count(REDACTED) == 4
    assert scrubbed.endswith("abc")


def test_retries_exhausted_carries_the_last_failure_scrubbed():
    SECRETS.add("tok-SECRET-1234567890")
    last = TransientError("server_error", "gateway said tok-SECRET-1234567890", 503)
    exhausted = PermanentError("retries_exhausted", "still failing on the last delivery")
    body = dead_letter_body(RECORD, "r", exhausted, datetime(2026, 11, 28, tzinfo=UTC), last)
    assert (body["reason"], body["lastReason"], body["lastHttpStatus"]) == (
        "retries_exhausted",
        "server_error",
        503,
    )
    assert "tok-SECRET" not in body["lastDetail"]


@pytest.mark.parametrize(
    "original",
    [
        pytest.param("\u0001" * 300_000, id="control-characters-escape-to-six-bytes"),
        pytest.param('"\\' * 150_000, id="quotes-and-backslashes-double"),
        pytest.param("\u00e9\U0001f600" * 60_000, id="multibyte"),
        pytest.param("x" * (1024 * 1024), id="one-mebibyte"),
    ],
)
def test_a_body_too_large_is_truncated_to_fit_the_dead_letter_limit(original):
    record = SQSRecord({**RECORD.raw_event, "body": original})
    error = PermanentError("malformed_message", "not JSON")
    body = dead_letter_body(record, None, error, datetime(2026, 11, 28, tzinfo=UTC))
    size = len(serialise(body).encode())
    assert size <= DEAD_LETTER_MAX_BYTES
    assert size > DEAD_LETTER_MAX_BYTES - 64  # the longest prefix that fits, not an arbitrary cut
    assert body["originalBodyTruncated"] is True
    assert original.startswith(body["originalBody"])
    assert body["originalBodyBytes"] == len(original.encode())
    assert body["originalBodySha256"] == hashlib.sha256(original.encode()).hexdigest()


def test_minimum_redelivery_span_sums_the_shortest_backoffs():
    assert minimum_redelivery_span(1, 10, 900) == 0
    assert minimum_redelivery_span(5, 10, 900) == 5 + 10 + 20 + 40
    assert minimum_redelivery_span(5, 10, 15) == 5 + 10 + 15 + 15
