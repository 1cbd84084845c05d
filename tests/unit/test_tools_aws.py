"""The operator tools' one reading of AWS: the region rule, the missing-stack and denied rules, the
one-line ClientError, and the one rule for recognising the function's dead letters (the layer's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tao_results.dead_letters import dead_letter_body, serialise
from tao_results.errors import PermanentError
from tao_results_cli.aws import describe_client_error, is_denied, is_missing_stack, region
from tao_results_cli.queues import RAW_DEAD_LETTER_REASON, parse_dead_letter


def client_error(code: str, message: str = "", status: int = 400, operation: str = "Op") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


def test_a_missing_stack_is_cloudformations_validation_error_saying_so() -> None:
    assert is_missing_stack(client_error("ValidationError", "Stack with id nope does not exist"))
    # A malformed name is a ValidationError too, but not a missing stack.
    malformed = "1 validation error detected: Value 'a b' at 'stackName' failed to satisfy constraint"
    assert not is_missing_stack(client_error("ValidationError", malformed))
    assert not is_missing_stack(client_error("AccessDenied", "Stack does not exist", 403))


@pytest.mark.parametrize(
    ("code", "status", "denied"),
    [
        ("AccessDenied", 403, True),
        ("AccessDeniedException", 400, True),
        ("UnauthorizedOperation", 403, True),
        ("403", 403, True),  # a body the client could not read (moto's XML to a CBOR client)
        ("InvalidClientTokenId", 403, False),  # bad credentials are not a policy's refusal
        ("ThrottlingException", 400, False),
    ],
)
def test_denied_is_the_union_of_the_codes_and_an_unread_403(code: str, status: int, denied: bool) -> None:
    assert is_denied(client_error(code, "", status)) is denied


def test_a_client_error_is_one_line() -> None:
    error = client_error("Throttling", "slow\n  down " + "x" * 400, 400, "GetQueueAttributes")
    line = describe_client_error(error)
    assert line.startswith("GetQueueAttributes failed: Throttling: slow down x")
    assert "\n" not in line
    assert len(line) == len("GetQueueAttributes failed: Throttling: ") + 300


@pytest.fixture
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


@pytest.mark.usefixtures("no_aws_configuration")
def test_the_region_is_the_configurations_then_aws_region_then_the_queue_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
    assert region() is None
    assert region(url) == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    assert region(url) == "us-east-2"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert region(url) == "ap-south-1"


def message(body: str, sent_ms: str = "1767225600000") -> Any:
    return {
        "MessageId": "dlq-1",
        "ReceiptHandle": "h",
        "Body": body,
        "Attributes": {"SentTimestamp": sent_ms},
    }


def test_a_dead_letter_is_what_the_function_writes_and_nothing_looser() -> None:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: PLC0415

    record = SQSRecord({"messageId": "m-1", "body": '{"referenceId": "r1"}', "attributes": {}})
    failed_at = datetime(2026, 1, 2, tzinfo=UTC)
    written = serialise(dead_letter_body(record, "r1", PermanentError("not_found", "gone", 404), failed_at))

    letter = parse_dead_letter(message(written))
    assert (letter.reason, letter.http_status, letter.original_message_id) == ("not_found", 404, "m-1")
    assert letter.failed_at == failed_at

    # A request that merely has "reason" and "originalBody" fields is no dead letter of ours.
    lookalike = json.dumps({"referenceId": "r2", "reason": "x", "originalBody": "{}"})
    raw = parse_dead_letter(message(lookalike))
    assert (raw.reason, raw.reference_id) == (RAW_DEAD_LETTER_REASON, "r2")
    assert raw.failed_at == datetime(2026, 1, 1, tzinfo=UTC)  # SentTimestamp, read as the function reads it


def test_an_unreadable_sent_timestamp_is_no_time() -> None:
    assert parse_dead_letter(message('{"referenceId": "r"}', "soon")).failed_at is None
    assert parse_dead_letter(message('{"referenceId": "r"}', "9" * 30)).failed_at is None  # overflow
