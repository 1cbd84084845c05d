"""The function's composition root: builds every collaborator once per container (cold start)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tao_results.announcements import Announcer, ResultEvents
from tao_results.auth import TokenProvider
from tao_results.aws_clients import AwsClients
from tao_results.batch import BatchHandler
from tao_results.callbacks import TaskCallbacks
from tao_results.config import Settings
from tao_results.credentials import CredentialStore
from tao_results.dead_letters import DeadLetterQueue
from tao_results.download_api import DownloadApi
from tao_results.http_sessions import Resolver, new_session, new_storage_session, system_resolver
from tao_results.observability import Telemetry, create_telemetry, log_fields
from tao_results.pipeline import RecordProcessor
from tao_results.redelivery import RetryScheduler
from tao_results.result_download import SignedUrlFetcher
from tao_results.s3_upload import PartBuffers, S3Calls, S3Writer
from tao_results.unchanged import stored_copy
from tao_results.url_policy import SignedUrlPolicy


def build_batch_handler(
    settings: Settings,
    telemetry: Telemetry | None = None,
    *,
    resolver: Resolver = system_resolver,
    storage_verify: bool | str = True,
) -> BatchHandler:
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
            max_part_size=settings.max_part_size_bytes,
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
    return BatchHandler(settings, telemetry, processor, record_workers)


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
