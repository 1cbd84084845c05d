"""Permanent failures go to the dead-letter queue, with the original body and a reason.

Size: an SQS message (body plus message attributes' names, types and values) may hold up to
1 MiB since 2025, but a queue's ``MaximumMessageSize`` still defaults to 256 KiB (262,144 bytes) and
the template keeps that default for the DLQ, while a source message may be up to 1 MiB and JSON
escaping grows it (a control character becomes six bytes). So a dead letter whose serialised size
(the exact ``json.dumps`` we send, UTF-8) would pass :data:`DEAD_LETTER_MAX_BYTES` carries the start
of the original body, with ``originalBodyBytes``, ``originalBodySha256`` (of the whole UTF-8 body)
and ``originalBodyTruncated: true``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tao_results.classification import transient_aws_error
from tao_results.delivery import original_body, receive_count
from tao_results.errors import PermanentError, ProcessingError
from tao_results.redaction import SECRETS

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageRequestTypeDef

DEAD_LETTER_SCHEMA_VERSION = "1"
# The default (and the template's) MaximumMessageSize of an SQS queue, less room for the attributes.
SQS_DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
DEAD_LETTER_MAX_BYTES = SQS_DEFAULT_MAX_MESSAGE_BYTES - 2 * 1024


def dead_letter_summary(reference_id: str | None, error: PermanentError, message_id: str) -> dict[str, Any]:
    """What every report of a dead letter says (the DLQ body, the ``TAO Result Dead-Lettered``
    event): ``referenceId``, ``reason``, ``httpStatus``, ``detail`` (scrubbed), ``messageId``."""
    return {
        "referenceId": reference_id,
        "reason": error.reason,
        "httpStatus": error.http_status,
        # The detail quotes the API's answer, which may echo what we sent it.
        "detail": SECRETS.scrub(error.detail),
        "messageId": message_id,
    }


def dead_letter_body(
    record: SQSRecord,
    reference_id: str | None,
    error: PermanentError,
    failed_at: datetime,
    last: ProcessingError | None = None,
    first_body: str | None = None,
) -> dict[str, Any]:
    """The DLQ body; ``last`` is the failure that exhausted the retries (``retries_exhausted``);
    ``first_body`` the body a redriven dead letter carried (kept instead of nesting the letter)."""
    body: dict[str, Any] = {
        **dead_letter_summary(reference_id, error, record.message_id),
        "originalBody": first_body if first_body is not None else original_body(record),
        "failedAt": failed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "attempts": receive_count(record),
    }
    if first_body is not None:
        body["redriven"] = True
    if last is not None:
        body["lastReason"] = last.reason
        body["lastHttpStatus"] = last.http_status
        body["lastDetail"] = SECRETS.scrub(last.detail)
    return fit_body(body)


def serialise(body: Mapping[str, Any]) -> str:
    """The exact text sent as ``MessageBody``."""
    return json.dumps(body, ensure_ascii=False)


def fit_body(body: dict[str, Any], limit: int = DEAD_LETTER_MAX_BYTES) -> dict[str, Any]:
    """``body`` if its serialisation fits in ``limit`` UTF-8 bytes, else with a truncated
    ``originalBody`` (the longest prefix that fits) and the whole body's size and SHA-256."""
    if len(serialise(body).encode(errors="surrogatepass")) <= limit:
        return body
    original = body.get("originalBody")
    text = original if isinstance(original, str) else json.dumps(original, ensure_ascii=False)
    raw = text.encode("utf-8", errors="surrogatepass")
    fitted = {
        **body,
        "originalBody": "",
        "originalBodyBytes": len(raw),
        "originalBodySha256": hashlib.sha256(raw).hexdigest(),
        "originalBodyTruncated": True,
    }
    # The longest prefix that fits, by bisection on characters (escaping makes bytes non-linear).
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        fitted["originalBody"] = text[:middle]
        if len(serialise(fitted).encode(errors="surrogatepass")) <= limit:
            low = middle
        else:
            high = middle - 1
    fitted["originalBody"] = text[:low]
    return fitted


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

    def send(
        self,
        record: SQSRecord,
        reference_id: str | None,
        error: PermanentError,
        last: ProcessingError | None = None,
        first_body: str | None = None,
    ) -> None:
        """Send the dead letter; if that fails the record must be retried, so raise TransientError."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        body = dead_letter_body(record, reference_id, error, self._clock(), last, first_body)
        request: SendMessageRequestTypeDef = {
            "QueueUrl": self._queue_url,
            "MessageBody": serialise(body),
            "MessageAttributes": dead_letter_attributes(reference_id, error),
        }
        if self._fifo:
            request["MessageGroupId"] = reference_id or "malformed"
            request["MessageDeduplicationId"] = record.message_id[:128]
        try:
            self._sqs().send_message(**request)
        except (BotoCoreError, ClientError) as send_error:
            raise transient_aws_error(
                f"SendMessage of the {error.reason} dead letter", send_error, "dead_letter_unavailable"
            ) from send_error
