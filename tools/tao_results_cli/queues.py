"""Queue operations behind the ``tao-results`` CLI: enqueue requests, inspect and redrive dead letters.

They work the same against AWS and a local endpoint. None of them loses a message: listing hides
messages only briefly and makes them visible again, and the fallback redrive deletes a dead letter
only after its copy was accepted by the destination queue (a crash in between duplicates, never
drops). Bodies and message attributes are moved verbatim.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from tao_results.delivery import sent_timestamp
from tao_results.errors import aws_error_details
from tao_results.message import is_dead_letter, is_valid_reference_id
from tao_results_cli.request_bodies import reference_id_of

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        ListMessageMoveTasksResultEntryTypeDef,
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
        StartMessageMoveTaskRequestTypeDef,
    )

BATCH = 10
RAW_DEAD_LETTER_REASON = "max_receive_count_exceeded"
# What an endpoint answers for an operation it does not implement. moto's server answers an HTML
# 500 page (handled in :func:`move_task_unsupported`).
UNSUPPORTED_CODES = frozenset(
    {"NotImplemented", "NotImplementedException", "UnknownOperation", "UnknownOperationException",
     "InvalidAction", "UnsupportedOperation", "501"}
)  # fmt: skip
TERMINAL_TASK_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class QueueOperationError(Exception):
    """A failure to report to the user in one line."""


# ------------------------------------------------------------------------------------------ enqueue


def invalid_reference_ids(references: Iterable[str]) -> list[str]:
    """The references the function would dead-letter (``tao_results.message.is_valid_reference_id``),
    in order."""
    return [reference for reference in references if not is_valid_reference_id(reference)]


@dataclass
class EnqueueResult:
    sent: dict[str, str] = field(default_factory=dict)  # referenceId -> messageId (last one sent)
    sent_count: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (referenceId, error)


def enqueue(
    sqs: SQSClient,
    queue_url: str,
    references: Sequence[str],
    attempts: int = 3,
    *,
    bodies: Sequence[str] | None = None,
) -> EnqueueResult:
    """Send one message per reference with SendMessageBatch (10 at a time): ``bodies[i]`` for
    ``references[i]`` (built and checked beforehand), else ``{"referenceId": ref}``.

    Entries the service failed on its side are retried; entries it rejected as the sender's fault
    are reported in ``failed``.
    """
    if bodies is None:
        bodies = [json.dumps({"referenceId": reference}) for reference in references]
    if len(bodies) != len(references):
        raise ValueError(f"{len(bodies)} bodies for {len(references)} references")
    result = EnqueueResult()
    fifo = queue_url.endswith(".fifo")
    for start in range(0, len(references), BATCH):
        chunk = references[start : start + BATCH]
        chunk_bodies = bodies[start : start + BATCH]
        pending = {
            str(index): _request_entry(str(index), ref, chunk_bodies[index], fifo)
            for index, ref in enumerate(chunk)
        }
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.2 * 2**attempt)
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=list(pending.values()))
            for done in response.get("Successful", []):
                result.sent[chunk[int(done["Id"])]] = done["MessageId"]
                result.sent_count += 1
                pending.pop(done["Id"])
            for failure in response.get("Failed", []):
                if failure.get("SenderFault"):
                    result.failed.append((chunk[int(failure["Id"])], _failure_text(failure)))
                    pending.pop(failure["Id"])
            if not pending:
                break
        result.failed += [(chunk[int(key)], "not accepted after retries") for key in pending]
    return result


def _request_entry(
    entry_id: str, reference_id: str, body: str, fifo: bool
) -> SendMessageBatchRequestEntryTypeDef:
    entry: SendMessageBatchRequestEntryTypeDef = {"Id": entry_id, "MessageBody": body}
    if fifo:
        entry["MessageGroupId"] = reference_id
        entry["MessageDeduplicationId"] = uuid.uuid4().hex
    return entry


def _failure_text(failure: Any) -> str:
    return f"{failure.get('Code', 'error')}: {failure.get('Message', '')}".strip()


# ----------------------------------------------------------------------------------------- dlq list


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, read without consuming it.

    ``original_message_id`` is the id of the source message that failed, the one the function's
    log lines name (``message_id``): the dead letter's ``messageId`` field. A raw message that SQS
    moved itself after ``maxReceiveCount`` carries no such field; its own id is all there is.
    ``dlq_message_id`` is the id of the message in the DLQ (SQS's MessageId there).
    """

    dlq_message_id: str
    original_message_id: str
    reason: str
    http_status: int | None
    reference_id: str | None
    failed_at: datetime | None
    detail: str | None
    body: str
    attributes: dict[str, str]
    attempts: int | None = None

    @property
    def age_seconds(self) -> float | None:
        if self.failed_at is None:
            return None
        return max(0.0, (datetime.now(UTC) - self.failed_at).total_seconds())

    def to_json(self) -> dict[str, Any]:
        return {
            "messageId": self.original_message_id,
            "dlqMessageId": self.dlq_message_id,
            "reason": self.reason,
            "httpStatus": self.http_status,
            "referenceId": self.reference_id,
            "failedAt": self.failed_at.isoformat() if self.failed_at else None,
            "ageSeconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "attempts": self.attempts,
            "detail": self.detail,
            "body": self.body,
            "attributes": self.attributes,
        }


def parse_dead_letter(message: MessageTypeDef) -> DeadLetter:
    """Our JSON envelope, or a raw request that SQS itself moved after ``maxReceiveCount``."""
    body = message.get("Body", "")
    attributes: dict[str, str] = {str(key): value for key, value in message.get("Attributes", {}).items()}
    envelope = _envelope(body)
    sent = sent_timestamp(SQSRecord({"attributes": attributes}))
    dlq_message_id = message["MessageId"]
    if envelope is None:
        return DeadLetter(
            dlq_message_id=dlq_message_id,
            original_message_id=dlq_message_id,
            reason=RAW_DEAD_LETTER_REASON,
            http_status=None,
            reference_id=reference_id_of(body),
            failed_at=sent,
            detail=None,
            body=body,
            attributes=attributes,
        )
    original_id = envelope.get("messageId")
    return DeadLetter(
        dlq_message_id=dlq_message_id,
        original_message_id=original_id if isinstance(original_id, str) and original_id else dlq_message_id,
        reason=str(envelope["reason"]),
        http_status=_integer(envelope.get("httpStatus")),
        reference_id=_text(envelope.get("referenceId")),
        failed_at=_iso_time(envelope.get("failedAt")) or sent,
        detail=str(envelope["detail"]) if envelope.get("detail") is not None else None,
        body=body,
        attributes=attributes,
        attempts=_integer(envelope.get("attempts")),
    )


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _envelope(body: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    # The function's own rule, the one it reads a redriven letter by.
    return parsed if isinstance(parsed, dict) and is_dead_letter(parsed) else None


def _iso_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def peek(sqs: SQSClient, queue_url: str, limit: int, hold_seconds: int = 30) -> list[MessageTypeDef]:
    """Up to ``limit`` distinct messages, made visible again before returning (even on errors).

    Each message is held invisible for at most ``hold_seconds`` while the queue is walked, then its
    visibility is reset to 0. Receiving does count as a receive (ApproximateReceiveCount grows).
    """
    seen: dict[str, MessageTypeDef] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            messages = _receive(sqs, queue_url, min(BATCH, limit - len(seen)), hold_seconds)
            fresh = [message for message in messages if message["MessageId"] not in seen]
            handles += [message["ReceiptHandle"] for message in messages]
            if not fresh:
                break
            seen.update((message["MessageId"], message) for message in fresh)
    finally:
        release(sqs, queue_url, handles)
    return list(seen.values())[:limit]


def _receive(sqs: SQSClient, queue_url: str, count: int, visibility: int) -> list[MessageTypeDef]:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=count,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=1,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


def release(sqs: SQSClient, queue_url: str, receipt_handles: Sequence[str]) -> None:
    """Make received messages visible again now (ChangeMessageVisibilityBatch to 0)."""
    for start in range(0, len(receipt_handles), BATCH):
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(receipt_handles[start : start + BATCH])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


def list_dead_letters(sqs: SQSClient, dlq_url: str, limit: int = 100) -> list[DeadLetter]:
    """The dead letters, oldest failure first, without consuming them."""
    letters = [parse_dead_letter(message) for message in peek(sqs, dlq_url, limit)]
    oldest = datetime.max.replace(tzinfo=UTC)
    return sorted(letters, key=lambda letter: letter.failed_at or oldest)


# ------------------------------------------------------------------------------------------- redrive


@dataclass
class RedriveResult:
    method: str  # "move_task" or "fallback"
    moved: int = 0
    to_move: int | None = None
    failed: int = 0
    status: str = "COMPLETED"
    failure_reason: str | None = None


def move_task_unsupported(error: ClientError) -> bool:
    """Whether a StartMessageMoveTask error means the endpoint does not implement it."""
    details = aws_error_details(error)
    code, message, status = details.code, details.message, details.status
    html_500 = status in (500, 501) and "<html" in message.lower()
    return code in UNSUPPORTED_CODES or html_500


def start_move_task(
    sqs: SQSClient, source_arn: str, destination_arn: str | None, rate: int | None = None
) -> str:
    """Start SQS's own redrive (to each message's source queue when no destination); the task handle."""
    request: StartMessageMoveTaskRequestTypeDef = {"SourceArn": source_arn}
    if destination_arn:
        request["DestinationArn"] = destination_arn
    if rate:
        request["MaxNumberOfMessagesPerSecond"] = rate
    return sqs.start_message_move_task(**request)["TaskHandle"]


def wait_for_move_task(
    sqs: SQSClient,
    source_arn: str,
    task_handle: str,
    started_ms: int,
    *,
    poll_seconds: float = 2.0,
    timeout: float = 3600.0,
    progress: Callable[[ListMessageMoveTasksResultEntryTypeDef], None] | None = None,
) -> RedriveResult:
    """Poll ListMessageMoveTasks until our task (by handle, else by start time) is finished."""
    deadline = time.monotonic() + timeout
    while True:
        task = _find_task(sqs, source_arn, task_handle, started_ms)
        if task is not None and progress is not None:
            progress(task)
        if task is not None and task.get("Status") in TERMINAL_TASK_STATES:
            return RedriveResult(
                method="move_task",
                moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
                to_move=task.get("ApproximateNumberOfMessagesToMove"),
                status=str(task["Status"]),
                failure_reason=task.get("FailureReason"),
            )
        if time.monotonic() >= deadline:
            raise QueueOperationError(f"message move task still running after {timeout:.0f}s: {task_handle}")
        time.sleep(poll_seconds)


def _find_task(
    sqs: SQSClient, source_arn: str, handle: str, started_ms: int
) -> ListMessageMoveTasksResultEntryTypeDef | None:
    tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results", [])
    for task in tasks:
        if task.get("TaskHandle") == handle:
            return task
    # Finished tasks no longer carry their handle: take the newest one started since we asked.
    recent = [task for task in tasks if int(task.get("StartedTimestamp", 0)) >= started_ms - 5000]
    return max(recent, key=lambda task: int(task.get("StartedTimestamp", 0)), default=None)


def redrive_by_copy(
    sqs: SQSClient,
    dlq_url: str,
    destination_url: str,
    *,
    limit: int | None = None,
    hold_seconds: int = 60,
    progress: Callable[[int], None] | None = None,
) -> RedriveResult:
    """Receive from the DLQ, send verbatim to the destination, delete only what was accepted.

    Stops when the DLQ answers no message, when ``limit`` messages were moved, or when it sees a
    message it already moved (something is sending them straight back: stop rather than loop).
    """
    if dlq_url.rstrip("/") == destination_url.rstrip("/"):
        raise QueueOperationError("the destination queue is the dead-letter queue itself")
    result = RedriveResult(method="fallback")
    moved_ids: set[str] = set()
    while limit is None or result.moved < limit:
        wanted = BATCH if limit is None else min(BATCH, limit - result.moved)
        messages = _receive(sqs, dlq_url, wanted, hold_seconds)
        repeats = [message for message in messages if message["MessageId"] in moved_ids]
        if repeats:
            release(sqs, dlq_url, [message["ReceiptHandle"] for message in messages])
            break
        if not messages:
            break
        accepted = _copy(sqs, destination_url, messages)
        refused = [message for message in messages if message not in accepted]
        release(sqs, dlq_url, [message["ReceiptHandle"] for message in refused])
        result.failed += len(refused)
        deleted = _delete(sqs, dlq_url, accepted)
        result.moved += len(accepted)
        moved_ids.update(message["MessageId"] for message in accepted)
        result.failed += len(accepted) - deleted  # copied but still in the DLQ: a duplicate later
        if progress is not None:
            progress(result.moved)
        if refused:
            break  # the destination is refusing messages: stop instead of spinning on them
    result.to_move = result.moved + result.failed
    result.status = "COMPLETED" if result.failed == 0 else "PARTIAL"
    return result


def _copy(sqs: SQSClient, destination_url: str, messages: Sequence[MessageTypeDef]) -> list[MessageTypeDef]:
    """Send copies (body and attributes verbatim); return the originals whose copy was accepted."""
    entries = [_copy_entry(str(index), message) for index, message in enumerate(messages)]
    try:
        response = sqs.send_message_batch(QueueUrl=destination_url, Entries=entries)
    except ClientError:
        return []
    return [messages[int(done["Id"])] for done in response.get("Successful", [])]


def _copy_entry(entry_id: str, message: MessageTypeDef) -> SendMessageBatchRequestEntryTypeDef:
    entry: SendMessageBatchRequestEntryTypeDef = {"Id": entry_id, "MessageBody": message.get("Body", "")}
    attributes = {
        name: _copy_attribute(attribute) for name, attribute in message.get("MessageAttributes", {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


def _copy_attribute(attribute: MessageAttributeValueOutputTypeDef) -> MessageAttributeValueTypeDef:
    # DataType is required; the list values are "not implemented, reserved for future use" (SQS API
    # reference, MessageAttributeValue), so a value is its string or its binary.
    copy: MessageAttributeValueTypeDef = {"DataType": attribute["DataType"]}
    if "StringValue" in attribute:
        copy["StringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        copy["BinaryValue"] = attribute["BinaryValue"]
    return copy


def _delete(sqs: SQSClient, queue_url: str, messages: Sequence[MessageTypeDef]) -> int:
    if not messages:
        return 0
    entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
        {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(messages)
    ]
    response = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    return len(response.get("Successful", []))
