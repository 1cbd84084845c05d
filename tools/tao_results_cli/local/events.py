"""Lambda's view of SQS: the event it builds from received messages and how it reads the answer.

Everything here is pure (no I/O) so it can be checked against Lambda's documented shapes:
https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html (event) and the "Reporting batch item
failures" section (answer). The field names and their order follow what Lambda delivers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tao_results_cli.aws import queue_region

# The order in which Lambda lists a record's system attributes; anything else SQS returned
# (for example DeadLetterQueueSourceArn) follows in the order SQS gave it.
ATTRIBUTE_ORDER = (
    "ApproximateReceiveCount",
    "AWSTraceHeader",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
)


def _record_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    ordered = {name: attributes[name] for name in ATTRIBUTE_ORDER if name in attributes}
    ordered.update({name: value for name, value in attributes.items() if name not in ordered})
    return ordered


def _encode_binary(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    return base64.b64encode(value).decode("ascii")


def lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """One message attribute in Lambda's camelCase shape (binary values base64-encoded)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = _encode_binary(value["BinaryValue"])
    shaped["stringListValues"] = list(value.get("StringListValues") or [])
    shaped["binaryListValues"] = [_encode_binary(item) for item in value.get("BinaryListValues") or []]
    shaped["dataType"] = value["DataType"]
    return shaped


def lambda_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One ``Records[]`` entry, built from a ReceiveMessage ``Messages[]`` entry."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": _record_attributes(message.get("Attributes") or {}),
        "messageAttributes": {
            name: lambda_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = queue_region(queue_arn)
    return record


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to the function for one batch."""
    return {"Records": [lambda_record(message, queue_arn) for message in messages]}


@dataclass(frozen=True)
class BatchAnswer:
    """How Lambda reads the function's answer: which messages to keep, or that the answer is invalid."""

    failed_ids: frozenset[str]
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


def _invalid(reason: str) -> BatchAnswer:
    return BatchAnswer(frozenset(), reason)


def read_batch_answer(answer: object, message_ids: Sequence[str]) -> BatchAnswer:
    """Interpret a handler's return value as Lambda does with ``ReportBatchItemFailures``.

    Complete success: ``None``, ``{}``, or a null/empty ``batchItemFailures``. Complete failure
    (``valid`` is false, nothing may be deleted): an answer that is not JSON-serialisable, not an
    object, a ``batchItemFailures`` that is not a list of objects, or an ``itemIdentifier`` that is
    missing, empty, not a string, or not the messageId of a record in the batch.
    """
    try:
        json.dumps(answer)
    except (TypeError, ValueError) as error:
        return _invalid(f"answer is not JSON-serialisable: {error}")
    if answer is None:
        return BatchAnswer(frozenset())
    if not isinstance(answer, dict):
        return _invalid(f"answer is a {type(answer).__name__}, not an object")
    failures = answer.get("batchItemFailures")
    if failures is None:
        return BatchAnswer(frozenset())
    if not isinstance(failures, list):
        return _invalid("batchItemFailures is not a list")
    known = set(message_ids)
    failed: set[str] = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return _invalid(f"batchItemFailures entry without a valid itemIdentifier: {entry!r}")
        if identifier not in known:
            return _invalid(f"itemIdentifier {identifier!r} is not a messageId of this batch")
        failed.add(identifier)
    return BatchAnswer(frozenset(failed))
