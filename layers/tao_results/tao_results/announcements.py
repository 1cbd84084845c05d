"""Telling the world: an EventBridge event and a Step Functions callback for every outcome.

After the object exists: ``TAO Result Stored``; after a dead letter: ``TAO Result Dead-Lettered``
(source ``tao-results-to-s3``, detail shapes in the README, "Integrations"). Delivery is part of
the contract: a failed ``PutEvents``, or a failed entry in its answer, is a TransientError, so the
record is retried; the retry finds the object unchanged and does not upload it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tao_results.callbacks import TaskCallbacks
from tao_results.classification import transient_aws_error
from tao_results.dead_letters import dead_letter_summary
from tao_results.errors import PermanentError, TransientError
from tao_results.s3_upload import CopyResult

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

EVENT_SOURCE = "tao-results-to-s3"
STORED = "TAO Result Stored"
DEAD_LETTERED = "TAO Result Dead-Lettered"


@dataclass(frozen=True)
class StoredResult:
    """The object a record ended in: uploaded now, or found already there (``unchanged``)."""

    copy: CopyResult
    content_type: str
    content_encoding: str | None
    unchanged: bool

    def detail(
        self, reference_id: str, bucket: str, message_id: str | None, passthrough: Any
    ) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "referenceId": reference_id,
            "bucket": bucket,
            "key": self.copy.key,
            "size": self.copy.size,
            "contentType": self.content_type,
            "contentEncoding": self.content_encoding,
        }
        optional = {
            "sha256": self.copy.sha256,
            "checksumCRC32": self.copy.checksum_crc32,
            "versionId": self.copy.version_id,
        }
        detail.update({name: value for name, value in optional.items() if value})
        detail.update(messageId=message_id, passthrough=passthrough, unchanged=self.unchanged)
        return detail


def dead_lettered_detail(
    reference_id: str | None, error: PermanentError, message_id: str, passthrough: Any
) -> dict[str, Any]:
    """The ``TAO Result Dead-Lettered`` detail: what the dead letter says, and the passthrough."""
    return {**dead_letter_summary(reference_id, error, message_id), "passthrough": passthrough}


class ResultEvents:
    """``PutEvents`` of one entry to ``RESULT_EVENT_BUS`` (a name or an ARN)."""

    def __init__(self, events: Callable[[], EventBridgeClient], bus: str) -> None:
        self._events = events
        self._bus = bus

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        """Raises TransientError when the call fails or its one entry is answered with an error
        (PutEvents reports per-entry failures in ``FailedEntryCount``/``Entries[].ErrorCode``)."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        entry: PutEventsRequestEntryTypeDef = {
            "Source": EVENT_SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
            "EventBusName": self._bus,
        }
        try:
            answer = self._events().put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as error:
            raise transient_aws_error("PutEvents", error, "event_delivery_failed") from error
        if answer.get("FailedEntryCount"):
            failed = (answer.get("Entries") or [{}])[0]
            raise TransientError(
                "event_delivery_failed",
                f"PutEvents entry failed: {failed.get('ErrorCode')}: {failed.get('ErrorMessage')}",
            )


@dataclass
class Announcer:
    """Sends the events (when a bus is configured) and callbacks (when enabled and asked for)."""

    events: ResultEvents | None = None
    callbacks: TaskCallbacks | None = None
    warn: Callable[[str], None] = lambda message: None

    def stored(self, detail: Mapping[str, Any], task_token: str | None) -> None:
        if self.events is not None:
            self.events.put(STORED, detail)
        if task_token is not None and self._callbacks_on():
            assert self.callbacks is not None
            self.callbacks.succeed(task_token, detail)

    def dead_lettered(self, detail: Mapping[str, Any], task_token: str | None) -> None:
        if self.events is not None:
            self.events.put(DEAD_LETTERED, detail)
        if task_token is not None and self._callbacks_on():
            assert self.callbacks is not None
            self.callbacks.fail(task_token, str(detail["reason"]), str(detail["detail"]))

    def _callbacks_on(self) -> bool:
        if self.callbacks is None:
            self.warn("The request has a taskToken but STEP_FUNCTIONS_CALLBACKS is off: no callback")
            return False
        return True
