"""The function's composition root: builds every collaborator once per container, runs batches."""

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

from tao_results.announcements import Announcer, ResultEvents
from tao_results.auth import TokenProvider
from tao_results.aws import AwsClients
from tao_results.callbacks import TaskCallbacks
from tao_results.config import Settings
from tao_results.credentials import CredentialStore
from tao_results.dead_letters import DeadLetterQueue
from tao_results.deadline import Deadline, remaining_seconds
from tao_results.http import Resolver, new_session, new_storage_session, system_resolver
from tao_results.observability import Telemetry, create_telemetry, log_fields
from tao_results.pipeline import RecordProcessor
from tao_results.redelivery import RetryScheduler
from tao_results.storage import SignedUrlFetcher
from tao_results.tao_client import DownloadApi
from tao_results.transfer import PartBuffers, S3Calls, S3Writer
from tao_results.unchanged import stored_copy
from tao_results.url_policy import SignedUrlPolicy


@dataclass
class DownloadResultService:
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
        it is skipped. A FIFO source queue (``.fifo`` ARN) is processed in order, one record at a
        time, and after a failure the rest are reported failed unprocessed (Powertools'
        ``SqsFifoPartialProcessor``), so SQS redelivers them in order.

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
            work = loop.run_in_executor(self.record_workers, process, record.raw_event, deadline)
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
            work = self.record_workers.submit(self.processor.process, record.raw_event, deadline)
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
    records = []
    for position, record in enumerate(raw):
        if isinstance(record, Mapping) and isinstance(record.get("messageId"), str) and record["messageId"]:
            records.append(dict(record))
        else:
            telemetry.logger.error(
                "Record without messageId skipped: it cannot be reported for retry",
                extra={"position": position, "event_source": _event_source(record)},
            )
    return records


def _event_source(record: object) -> str | None:
    source = record.get("eventSource") if isinstance(record, Mapping) else None
    return source if isinstance(source, str) else None


def _is_fifo(records: list[dict[str, Any]]) -> bool:
    return any(str(record.get("eventSourceARN", "")).endswith(".fifo") for record in records)


def build_service(
    settings: Settings,
    telemetry: Telemetry | None = None,
    *,
    resolver: Resolver = system_resolver,
    storage_verify: bool | str = True,
) -> DownloadResultService:
    """Build every collaborator once per container.

    ``resolver`` (names → addresses for signed-URL hosts) and ``storage_verify`` (requests'
    ``verify``: a CA bundle path) exist for tests, which must not use real DNS and serve TLS with
    a local CA; the Lambda handler leaves both at their defaults.
    """
    telemetry = telemetry or create_telemetry(
        settings.service_name,
        settings.metrics_namespace,
        settings.log_level,
        tracing_enabled=settings.tracing_enabled,
    )
    uploads_in_flight = settings.record_concurrency * settings.upload_concurrency
    aws = AwsClients(
        max_pool_connections=uploads_in_flight + settings.record_concurrency + 2,
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    )
    timeout = (settings.connect_timeout_seconds, settings.read_timeout_seconds)
    logger = telemetry.logger
    tao_session = new_session(pool_size=settings.record_concurrency)
    tokens = TokenProvider(
        session=tao_session,
        token_url=settings.tao_token_url,
        scope=settings.tao_token_scope,
        credentials=CredentialStore(
            lambda: aws.secrets_manager, settings.credentials_secret_id, settings.secret_cache_seconds
        ),
        timeout=timeout,
        refresh_margin_seconds=settings.token_refresh_margin_seconds,
        auth_method=settings.tao_token_auth_method,
        on_auth_method=lambda method, probed: logger.info(
            "Token endpoint client authentication in use",
            extra=log_fields(auth_method=method, chosen_by="auto" if probed else "TAO_TOKEN_AUTH_METHOD"),
        ),
    )
    policy = SignedUrlPolicy(settings.signed_url_allowed_hosts, settings.allow_plain_http)
    s3_calls = S3Calls(lambda: aws.s3, settings.results_bucket)
    processor = RecordProcessor(
        settings=settings,
        download_api=DownloadApi(tao_session, settings, tokens),
        fetcher=SignedUrlFetcher(
            # A separate session: nothing of the API's (cookies, auth) may travel to storage.
            session=new_storage_session(settings.record_concurrency, policy, resolver, storage_verify),
            policy=policy,
            timeout=timeout,
        ),
        writer=S3Writer(
            s3_calls,
            part_size=settings.part_size_bytes,
            upload_concurrency=settings.upload_concurrency,
            buffers=PartBuffers(settings.transfer_buffer_bytes),
            executor=ThreadPoolExecutor(max_workers=uploads_in_flight, thread_name_prefix="s3-upload"),
        ),
        dead_letters=DeadLetterQueue(lambda: aws.sqs, settings.dead_letter_queue_url),
        retries=RetryScheduler(
            lambda: aws.sqs,
            settings.retry_backoff_base_seconds,
            settings.retry_backoff_max_seconds,
            on_error=telemetry.logger.warning,
            max_receive_count=settings.max_receive_count,
        ),
        telemetry=telemetry,
        announcer=_announcer(settings, aws, telemetry),
        find_stored=lambda key, body: stored_copy(s3_calls, key, body),
    )
    record_workers = ThreadPoolExecutor(max_workers=settings.record_concurrency, thread_name_prefix="record")
    return DownloadResultService(settings, telemetry, processor, record_workers)


def _announcer(settings: Settings, aws: AwsClients, telemetry: Telemetry) -> Announcer:
    logger = telemetry.logger
    events = None
    if settings.result_event_bus:
        events = ResultEvents(lambda: aws.events, settings.result_event_bus)
    callbacks = None
    if settings.step_functions_callbacks:
        callbacks = TaskCallbacks(
            lambda: aws.stepfunctions,
            on_gone=lambda operation, code: logger.warning(
                "The workflow no longer waits for this task: callback dropped",
                extra=log_fields(operation=operation, error_code=code),
            ),
        )
    return Announcer(events, callbacks, warn=logger.warning)
