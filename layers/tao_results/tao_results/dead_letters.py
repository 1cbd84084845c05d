"""Permanent failures go to the dead-letter queue, with the original body and a reason."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tao_results.errors import PermanentError, TransientError
from tao_results.redaction import SECRETS

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

DEAD_LETTER_SCHEMA_VERSION = "1"


def dead_letter_body(
    record: Mapping[str, Any], reference_id: str | None, error: PermanentError, failed_at: datetime
) -> dict[str, Any]:
    return {
        "referenceId": reference_id,
        "reason": error.reason,
        "httpStatus": error.http_status,
        # The detail quotes the API's answer, which may echo what we sent it.
        "detail": SECRETS.scrub(error.detail),
        "originalBody": record.get("body"),
        "messageId": record.get("messageId"),
        "failedAt": failed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "attempts": _receive_count(record),
    }


def dead_letter_attributes(
    reference_id: str | None, error: PermanentError
) -> dict[str, MessageAttributeValueTypeDef]:
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        "reason": {"DataType": "String", "StringValue": error.reason},
        "schemaVersion": {"DataType": "String", "StringValue": DEAD_LETTER_SCHEMA_VERSION},
    }
    if reference_id is not None:
        attributes["referenceId"] = {"DataType": "String", "StringValue": reference_id}
    if error.http_status is not None:
        attributes["httpStatus"] = {"DataType": "Number", "StringValue": str(error.http_status)}
    return attributes


class DeadLetterQueue:
    def __init__(
        self,
        sqs: Callable[[], SQSClient],
        queue_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._fifo = queue_url.endswith(".fifo")
        self._clock = clock

    def send(self, record: Mapping[str, Any], reference_id: str | None, error: PermanentError) -> None:
        """Send the dead letter; if that fails the record must be retried, so raise TransientError."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        body = dead_letter_body(record, reference_id, error, self._clock())
        extra: dict[str, str] = {}
        if self._fifo:
            extra = {
                "MessageGroupId": reference_id or "malformed",
                "MessageDeduplicationId": str(record.get("messageId", ""))[:128] or "unknown",
            }
        try:
            self._sqs().send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(body, ensure_ascii=False),
                MessageAttributes=dead_letter_attributes(reference_id, error),
                **extra,  # type: ignore[arg-type]
            )
        except (BotoCoreError, ClientError) as send_error:
            raise TransientError(
                "dead_letter_unavailable", f"could not dead-letter ({error.reason}): {send_error}"
            ) from send_error


def _receive_count(record: Mapping[str, Any]) -> int | None:
    attributes = record.get("attributes")
    raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
