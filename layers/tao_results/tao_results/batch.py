"""An SQS batch, run: its records processed concurrently (FIFO: in order), answered with
``batchItemFailures`` (Powertools' batch processors), always before the invocation's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tao_results.config import Settings
from tao_results.deadline import Deadline, remaining_seconds
from tao_results.delivery import queue_arn
from tao_results.observability import Telemetry
from tao_results.pipeline import RecordProcessor


@dataclass
class BatchHandler:
    settings: Settings
    telemetry: Telemetry
    processor: RecordProcessor
    # Records run concurrently on these threads (their work is blocking I/O), at most N at once.
    record_workers: ThreadPoolExecutor
    _margin_warned: bool = field(default=False, repr=False)

    def handle_batch(self, event: object, context: LambdaContext | None) -> PartialItemFailureResponse:
        """Process an SQS event; answer the records to retry as ``batchItemFailures``.

        Lambda deletes every record of the batch not listed there. Anything else is answered with
        an empty list and a log line, never an exception: an event that is not an SQS batch (a test
        or direct invocation) has nothing to retry, and a record without ``messageId`` cannot be
        listed (Lambda fails the whole batch on an invalid ``itemIdentifier``) nor come from SQS, so
        it is skipped. Copies of one message in a batch (SQS delivers at least once) run once, as the
        latest copy, and share its outcome. A FIFO source queue (``.fifo`` ARN) is processed in
        order, one record at a time, and after a failure the rest are reported failed unprocessed
        (Powertools' ``SqsFifoPartialProcessor``), so SQS redelivers them in order.

        The handler waits for a record at most until the deadline's abandon horizon: a record still
        running then (every call it makes is bounded, so this is a backstop) is reported failed and
        its thread ends by itself shortly after.
        """
        deadline = self._deadline(context)
        records = _sqs_records(event, self.telemetry)
        if not records:
            return {"batchItemFailures": []}
        if _is_fifo(records):
            return self._handle_fifo(records, deadline, context)

        async def record_handler(record: SQSRecord) -> None:
            loop = asyncio.get_running_loop()
            process = self.processor.process
            work = loop.run_in_executor(self.record_workers, process, record, deadline)
            try:
                await asyncio.wait_for(work, timeout=max(deadline.abandon_in(), 0.0))
            except TimeoutError:
                self.telemetry.logger.error(
                    "Record still running at the deadline, reported failed",
                    extra={"message_id": record.message_id},
                )
                raise

        batch = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        with batch(records, record_handler, context):
            batch.async_process()
        return batch.response()

    def _handle_fifo(
        self, records: list[dict[str, Any]], deadline: Deadline, context: LambdaContext | None
    ) -> PartialItemFailureResponse:
        def record_handler(record: SQSRecord) -> None:
            work = self.record_workers.submit(self.processor.process, record, deadline)
            work.result(timeout=max(deadline.abandon_in(), 0.0))

        batch = SqsFifoPartialProcessor()
        # Its constructor does not take the option; an all-failed batch is still a partial answer.
        batch.raise_on_entire_batch_failure = False
        with batch(records, record_handler, context):
            batch.process()
        return batch.response()

    def _deadline(self, context: LambdaContext | None) -> Deadline:
        deadline = Deadline.from_context(context, self.settings.deadline_margin_seconds)
        if deadline.margin < self.settings.deadline_margin_seconds and not self._margin_warned:
            self._margin_warned = True
            self.telemetry.logger.warning(
                "DEADLINE_MARGIN_SECONDS is too large for the function's timeout, clamped",
                extra={
                    "configured_margin_seconds": self.settings.deadline_margin_seconds,
                    "margin_seconds": round(deadline.margin, 3),
                    "invocation_seconds": round(remaining_seconds(context), 3),
                },
            )
        return deadline


def _sqs_records(event: object, telemetry: Telemetry) -> list[dict[str, Any]]:
    """The records of an SQS event that can be processed and reported; the rest are logged."""
    raw = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(raw, list):
        telemetry.logger.warning(
            "Not an SQS batch event, nothing to process", extra={"event_type": type(event).__name__}
        )
        return []
    records: dict[str, dict[str, Any]] = {}
    copies = 0
    for position, record in enumerate(raw):
        if isinstance(record, Mapping) and isinstance(record.get("messageId"), str) and record["messageId"]:
            copies += record["messageId"] in records
            # The later copy: SQS honours only the most recent receipt handle of a message.
            records[record["messageId"]] = dict(record)
        else:
            telemetry.logger.error(
                "Record without messageId skipped: it cannot be reported for retry",
                extra={"position": position, "event_source": _event_source(record)},
            )
    if copies:
        # At-least-once delivery may put one message in a batch twice. Run twice, its copies could
        # end in two places (two dead letters with different reasons); run once, Lambda deletes or
        # keeps every copy by the one messageId it is reported under.
        telemetry.logger.warning(
            "The batch holds more than one copy of a message, each runs once",
            extra={"copies_skipped": copies},
        )
    return list(records.values())


def _event_source(record: object) -> str | None:
    source = record.get("eventSource") if isinstance(record, Mapping) else None
    return source if isinstance(source, str) else None


def _is_fifo(records: list[dict[str, Any]]) -> bool:
    return any((queue_arn(SQSRecord(record)) or "").endswith(".fifo") for record in records)
