"""One SQS record, end to end: referenceId → signed URL → S3, with bounded retries.

Outcomes: the result is in S3 (return), the record is dead-lettered (return: it is done), or a
TransientError propagates so the batch reports the record as failed and SQS delivers it again.

On the last delivery the queue allows (``ApproximateReceiveCount`` >= its ``maxReceiveCount``, see
redelivery) a failure is not left to SQS's redrive, which would move the raw body without a reason:
the record is dead-lettered here as ``retries_exhausted`` with the last failure's reason, status
and detail, or as ``not_found`` when the reference is still unknown.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tao_results.announcements import Announcer, StoredResult, dead_lettered_detail
from tao_results.config import Settings
from tao_results.dead_letters import DeadLetterQueue
from tao_results.deadline import Deadline, deadline_scope
from tao_results.delivery import original_body, sent_timestamp
from tao_results.download_api import DownloadApi
from tao_results.errors import PermanentError, TransientError
from tao_results.key_template import render_key
from tao_results.message import MalformedRequest, Request, parse_request
from tao_results.object_attributes import object_attributes
from tao_results.observability import Telemetry, log_fields
from tao_results.redaction import redact_url
from tao_results.redelivery import RetryScheduler
from tao_results.result_download import ResultBody, SignedUrlFetcher
from tao_results.s3_upload import CopyResult, S3Writer

MAX_BACKOFF_IN_INVOCATION = 5.0
# Below this, starting another attempt is not worth it: the deadline would cut it short.
MIN_SECONDS_FOR_AN_ATTEMPT = 2.0


@dataclass
class RecordProcessor:
    settings: Settings
    download_api: DownloadApi
    fetcher: SignedUrlFetcher
    writer: S3Writer
    dead_letters: DeadLetterQueue
    retries: RetryScheduler
    telemetry: Telemetry
    sleep: Callable[[float], None] = time.sleep
    wall_clock: Callable[[], float] = time.time
    # Integrations: events and callbacks at both outcomes, and the redelivery check (unchanged.py).
    announcer: Announcer = field(default_factory=Announcer)
    find_stored: Callable[[str, ResultBody], CopyResult | None] = lambda key, body: None

    def process(self, record: SQSRecord, deadline: Deadline) -> None:
        """Copy or dead-letter ``record``; raise TransientError if it must be delivered again."""
        request = _parse(record)
        reference_id = request.reference_id
        # This runs on a worker thread: publish the deadline to the HTTP and AWS edges here.
        with self._correlated(reference_id), deadline_scope(deadline):
            try:
                deadline.check("record")  # a record that never starts needs no cleanup
                # Read (once per queue) while there is time, not after a failure at the deadline.
                self.retries.receive_limit(record)
                if not isinstance(request, Request):
                    self._dead_letter(record, request, request, deadline)
                else:
                    self._copy_or_dead_letter(record, request, deadline)
            except TransientError as error:
                if self._last_delivery(record, deadline):
                    self._dead_letter(record, request, _exhausted(error), deadline, last=error)
                    return
                self._retry_later(record, error, deadline)
                raise
            except Exception as bug:
                # A bug, not a classified failure: keep the message (SQS retries it), but on the
                # last delivery say why it is dead-lettered instead of leaving it to the redrive.
                self.telemetry.logger.exception("Unexpected error, the message will be retried")
                if self._last_delivery(record, deadline):
                    internal = TransientError("internal_error", type(bug).__name__)
                    self._dead_letter(record, request, _exhausted(internal), deadline, last=internal)
                    return
                self.telemetry.transient_failure("unexpected_error")
                raise

    def _copy_or_dead_letter(self, record: SQSRecord, request: Request, deadline: Deadline) -> None:
        reference_id = request.reference_id
        try:
            stored = self._copy_with_retries(reference_id, record, deadline)
        except PermanentError as error:
            self._dead_letter(record, request, error, deadline)
            return
        result = stored.copy
        if stored.unchanged:
            self.telemetry.logger.info(
                "Result already stored, not uploaded again", extra=log_fields(key=result.key)
            )
        else:
            self.telemetry.copied(result.size, result.seconds)
            self.telemetry.logger.info(
                "Result copied",
                extra=log_fields(
                    key=result.key,
                    size=result.size,
                    parts=result.parts,
                    seconds=round(result.seconds, 3),
                    envelope=request.envelope,  # which integration sent it: direct, sns, eventbridge
                ),
            )
        detail = stored.detail(
            reference_id, self.settings.results_bucket, record.message_id, request.passthrough
        )
        self.announcer.stored(detail, request.task_token)

    def _last_delivery(self, record: SQSRecord, deadline: Deadline) -> bool:
        with deadline_scope(deadline.for_cleanup()):
            return self.retries.is_last_delivery(record)

    def _retry_later(self, record: SQSRecord, error: TransientError, deadline: Deadline) -> None:
        self.telemetry.transient_failure(error.reason)
        with deadline_scope(deadline.for_cleanup()):
            delay = self.retries.defer(record, error)
        self.telemetry.logger.warning(
            "Transient failure, the message will be retried",
            extra=log_fields(
                reason=error.reason,
                detail=error.detail,
                http_status=error.http_status,
                message_id=record.message_id,
                retry_in_seconds=delay,
            ),
        )

    def _copy_with_retries(self, reference_id: str, record: SQSRecord, deadline: Deadline) -> StoredResult:
        attempt = 0
        while True:
            attempt += 1
            deadline.check("download")
            try:
                return self._copy_once(reference_id, record, deadline)
            except PermanentError as error:
                if (
                    error.reason == "not_found"
                    and self._within_not_found_grace(record)
                    # No delivery is left to wait for the import: dead-letter it as not_found.
                    and not self._last_delivery(record, deadline)
                ):
                    raise TransientError(
                        "not_ready", f"not found yet, the import may still run: {error.detail}", 404
                    ) from error
                raise
            except TransientError as error:
                delay = _in_invocation_backoff(attempt, error.retry_after)
                # A long wait costs Lambda duration: leave it to SQS (see redelivery) instead.
                if (
                    attempt >= self.settings.max_attempts
                    or delay > MAX_BACKOFF_IN_INVOCATION
                    or not deadline.allows(delay + MIN_SECONDS_FOR_AN_ATTEMPT)
                ):
                    raise
                self.telemetry.logger.info(
                    "Retrying within the invocation",
                    extra=log_fields(reason=error.reason, attempt=attempt, delay_seconds=round(delay, 2)),
                )
                self.sleep(delay)

    def _copy_once(self, reference_id: str, record: SQSRecord, deadline: Deadline) -> StoredResult:
        signed_url = self.download_api.signed_url(reference_id)
        with self.fetcher.open(signed_url) as body:
            key = render_key(
                self.settings.results_key_template,
                self.settings.results_prefix,
                reference_id,
                body.filename,
                sent_timestamp(record) or datetime.fromtimestamp(self.wall_clock(), UTC),
            )
            existing = self.find_stored(key, body)
            if existing is not None:  # leaving the block closes the download after its headers
                return StoredResult(existing, body.content_type, body.content_encoding, unchanged=True)
            self.telemetry.logger.debug(
                "Copying",
                extra=log_fields(
                    source=redact_url(body.url),
                    key=key,
                    content_type=body.content_type,
                    content_encoding=body.content_encoding,
                ),
            )
            copy = self.writer.copy(body, key, object_attributes(reference_id, body), deadline)
            return StoredResult(copy, body.content_type, body.content_encoding, unchanged=False)

    def _within_not_found_grace(self, record: SQSRecord) -> bool:
        grace = self.settings.not_found_grace_seconds
        if grace <= 0:
            return False
        sent = sent_timestamp(record)
        return sent is not None and self.wall_clock() - sent.timestamp() < grace

    def _dead_letter(
        self,
        record: SQSRecord,
        parsed: Request | MalformedRequest,
        error: PermanentError,
        deadline: Deadline,
        last: TransientError | None = None,
    ) -> None:
        """Dead-letter ``record``; ``parsed`` is what its body said (a malformed request may still
        carry a valid referenceId, taskToken and passthrough, and a redriven one its first body)."""
        reference_id = parsed.reference_id
        # A dead letter after the work deadline (retries exhausted by a stall) still gets sent.
        with deadline_scope(deadline.for_cleanup()):
            self.dead_letters.send(record, reference_id, error, last, parsed.original_body)
        self.telemetry.permanent_failure(error.reason)
        self.telemetry.logger.error(
            "Permanent failure, message dead-lettered",
            extra=log_fields(
                reason=error.reason,
                detail=error.detail,
                http_status=error.http_status,
                last_reason=last.reason if last else None,
                reference_id=reference_id,
                message_id=record.message_id,
            ),
        )
        # After the dead letter: if this fails the record is retried and dead-lettered again
        # (a duplicate dead letter with the same messageId, see README "Integrations").
        detail = dead_lettered_detail(reference_id, error, record.message_id, parsed.passthrough)
        with deadline_scope(deadline.for_cleanup()):
            self.announcer.dead_lettered(detail, parsed.task_token)

    @contextmanager
    def _correlated(self, reference_id: str | None) -> Iterator[None]:
        logger = self.telemetry.logger
        if reference_id is not None:
            logger.thread_safe_append_keys(correlation_id=reference_id)
        try:
            yield
        finally:
            logger.thread_safe_clear_keys()


def _parse(record: SQSRecord) -> Request | MalformedRequest:
    """The record's request, or why it is a malformed message."""
    try:
        return parse_request(original_body(record))
    except MalformedRequest as malformed:
        return malformed


def _exhausted(last: TransientError) -> PermanentError:
    return PermanentError(
        "retries_exhausted", f"still failing on the queue's last allowed delivery: {last.reason}"
    )


def _in_invocation_backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    exponential = min(0.25 * 2 ** (attempt - 1), MAX_BACKOFF_IN_INVOCATION)
    return random.uniform(exponential / 2, exponential)
