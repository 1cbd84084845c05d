"""What the pipeline reads from an SQS record: tolerant of absent fields, exact on present ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tao_results.delivery import original_body, queue_arn, queue_url, receive_count, sent_timestamp

# The example record of the Lambda developer guide ("Using Lambda with Amazon SQS"), trimmed.
EXAMPLE: dict[str, Any] = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
    "body": '{"referenceId": "12345"}',
    "attributes": {
        "ApproximateReceiveCount": "3",
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185",
    },
    "messageAttributes": {},
    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
    "awsRegion": "us-east-2",
}


def record(**changes: Any) -> SQSRecord:
    raw = {**EXAMPLE, **changes}
    return SQSRecord({name: value for name, value in raw.items() if value is not None})


def test_the_documented_record_reads_whole() -> None:
    example = record()
    assert original_body(example) == '{"referenceId": "12345"}'
    assert receive_count(example) == 3
    assert sent_timestamp(example) == datetime(2018, 12, 17, 21, 37, 29, 183000, tzinfo=UTC)
    assert queue_arn(example) == "arn:aws:sqs:us-east-2:123456789012:my-queue"
    # The form GetQueueUrl answers in the commercial partition (SQS developer guide, "Queue URLs").
    assert queue_url(example) == "https://sqs.us-east-2.amazonaws.com/123456789012/my-queue"


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        (
            "arn:aws-cn:sqs:cn-north-1:123456789012:results",
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/results",
        ),
        (
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:results",
            "https://sqs.us-gov-west-1.amazonaws.com/123456789012/results",
        ),
        (
            "arn:aws:sqs:eu-west-1:123456789012:results.fifo",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/results.fifo",
        ),
    ],
)
def test_the_queue_url_takes_the_partitions_dns_suffix(arn: str, url: str) -> None:
    assert queue_url(record(eventSourceARN=arn)) == url


@pytest.mark.parametrize(
    "arn",
    [None, 42, "", "arn:aws:sns:us-east-1:123456789012:topic", "arn:aws:sqs:us-east-1:12345:q", "not an arn"],
)
def test_a_record_without_an_sqs_queue_arn_has_no_queue_url(arn: object) -> None:
    assert queue_arn(record(eventSourceARN=arn)) is None
    assert queue_url(record(eventSourceARN=arn)) is None


@pytest.mark.parametrize(
    "attributes",
    [
        None,
        {},
        "text",
        {"ApproximateReceiveCount": "many", "SentTimestamp": "soon"},
        {"SentTimestamp": "9" * 30},
    ],
)
def test_absent_or_unreadable_attributes_read_as_none(attributes: object) -> None:
    odd = record(attributes=attributes)
    assert receive_count(odd) is None
    assert sent_timestamp(odd) is None


def test_a_body_that_is_not_text_reads_as_none() -> None:
    assert original_body(record(body=None)) is None
    assert original_body(record(body={"referenceId": "r"})) is None
