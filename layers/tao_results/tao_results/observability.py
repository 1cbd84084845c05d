"""Powertools logger, metrics and tracer, configured once; every log line passes through redaction."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from tao_results import classification
from tao_results.redaction import SECRETS

# These libraries print request URLs (with signatures), response bodies (with the secret) or whole
# trace documents at DEBUG. They stay at WARNING whatever the function's own log level is.
_CHATTY_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "requests", "aws_xray_sdk")

# Only AWS SDK calls are traced. Powertools' default (every module the X-Ray SDK can patch) includes
# requests/httplib: each signed URL would be recorded in a subsegment, requests' exception messages
# (which quote the URL with its signature) would land in the trace, and an X-Amzn-Trace-Id header
# would travel to the storage host and the TAO API, which are not AWS's.
TRACED_MODULES = ("botocore",)

_URL_QUERY = re.compile(r"(?i)\b(https?://[^\s\"'?#]*)\?[^\s\"'#]*")


def redact_trace_document(document: str) -> str:
    """A serialized X-Ray segment without URL queries or known credentials."""
    return SECRETS.scrub(_URL_QUERY.sub(r"\1?<redacted>", document))


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with secrets and signatures scrubbed from the final line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        withheld = json.dumps(
            {
                "level": record.levelname,
                "message": "log line withheld: it quoted a credential in an encoded form",
                "location": f"{record.funcName}:{record.lineno}",
                "logger": record.name,
            }
        )
        return SECRETS.scrub(line, withheld=withheld)


class RedactingFilter(logging.Filter):
    """For handlers we do not format ourselves (the runtime's, on the root logger): scrub the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, str):
                record.msg, record.args = SECRETS.scrub(record.getMessage()), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = SECRETS.scrub(record.exc_text)
        except Exception:  # a malformed log call: the handler reports it, the caller must not fail
            return True
        return True


# The values of the failure metrics' ``reason`` dimension. Each value is a separate CloudWatch
# metric (and a line on the dashboard), so the set is closed: every reason of classification.py's tables and
# outcomes, the ones raised directly in the layer, and ``other`` for anything else.
OTHER_REASON = "other"


def _classified_reasons() -> set[str]:
    reasons: set[str] = set()
    for value in vars(classification).values():
        values = value.values() if isinstance(value, Mapping) else [value]
        for item in values:
            if isinstance(item, classification.Outcome):
                reasons.add(item.reason)
            elif isinstance(value, Mapping) and isinstance(item, str):
                reasons.add(item)  # PERMANENT_AWS_ERROR_CODES: AWS error code -> reason
    return reasons


METRIC_REASONS: frozenset[str] = frozenset(
    _classified_reasons()
    | {
        "aws_unavailable",
        "callback_failed",
        "connection_error",
        "credentials_invalid",
        "credentials_unavailable",
        "dead_letter_unavailable",
        "deadline",
        "download_interrupted",
        "event_delivery_failed",
        "http_error",
        "internal_error",
        "invalid_api_response",
        "length_mismatch",
        "malformed_message",
        "not_ready",
        "result_too_large",
        "retries_exhausted",
        "signed_url_rejected",
        "token_response_invalid",
        "unexpected_error",
        OTHER_REASON,
    }
)


def metric_reason(reason: str | None) -> str:
    """``reason`` if it is one of :data:`METRIC_REASONS`, else ``other`` (bounded dimension values)."""
    return reason if reason in METRIC_REASONS else OTHER_REASON


@dataclass
class Telemetry:
    """The function's logger, metrics and tracer, and the few metrics it publishes."""

    logger: Logger
    metrics: Metrics
    tracer: Tracer
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def copied(self, size: int, seconds: float) -> None:
        self._add("ResultsCopied", MetricUnit.Count, 1)
        self._add("BytesCopied", MetricUnit.Bytes, size)
        self._add("CopyDuration", MetricUnit.Milliseconds, round(seconds * 1000, 1))

    def permanent_failure(self, reason: str | None = None) -> None:
        """Count a dead-lettered message: ``PermanentFailures`` by service, and by service + reason."""
        self._add("PermanentFailures", MetricUnit.Count, 1)
        self._by_reason("PermanentFailures", reason)

    def transient_failure(self, reason: str | None = None) -> None:
        """Count a message left for redelivery: ``TransientFailures`` by service, and by service + reason."""
        self._add("TransientFailures", MetricUnit.Count, 1)
        self._by_reason("TransientFailures", reason)

    def _by_reason(self, name: str, reason: str | None) -> None:
        # One EMF document shares its dimensions across all its metrics, so a per-record ``reason``
        # cannot join the invocation's document: it gets a document of its own, printed now.
        if is_metrics_disabled():
            return
        dimensions = {"service": str(self.metrics.service)} if self.metrics.service else {}
        with self._lock, single_metric(
            name=name, unit=MetricUnit.Count, value=1, namespace=self.metrics.namespace,
            default_dimensions=dimensions,
        ) as metric:  # fmt: skip
            metric.add_dimension(name="reason", value=metric_reason(reason))

    def _add(self, name: str, unit: MetricUnit, value: float) -> None:
        # Records run on worker threads; Metrics keeps plain dicts.
        with self._lock:
            self.metrics.add_metric(name=name, unit=unit, value=value)


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None: ...
    def add_subsegment(self, subsegment: Any) -> None: ...
    def remove_subsegment(self, subsegment: Any) -> None: ...
    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class NoTracing(BaseProvider):
    """A tracing provider that does nothing.

    Powertools' default provider imports the X-Ray SDK (which builds its own botocore clients:
    ~0.4 s of cold start) even when tracing is disabled; this one costs nothing.
    """

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def patch(self, modules: Any) -> None: ...
    def patch_all(self) -> None: ...


def create_telemetry(
    service_name: str, metrics_namespace: str, log_level: str, *, tracing_enabled: bool
) -> Telemetry:
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    logger = Logger(service=service_name, level=log_level, logger_formatter=RedactingFormatter())
    logger.setLevel(log_level)  # also when this service's logger already existed in the process
    if tracing_enabled:
        tracer = Tracer(service=service_name, patch_modules=TRACED_MODULES)
        _send_traces_redacted(tracer)
    else:
        tracer = Tracer(service=service_name, disabled=True, provider=NoTracing())
    return Telemetry(
        logger=logger,
        metrics=Metrics(service=service_name, namespace=metrics_namespace),
        tracer=tracer,
    )


def _send_traces_redacted(tracer: Tracer) -> None:
    """Every segment leaves through an emitter that strips URL queries and known credentials.

    The last line of defence for what the X-Ray SDK records by itself: botocore exception messages,
    metadata Powertools adds when the handler raises. Same UDP transport and daemon address
    (``AWS_XRAY_DAEMON_ADDRESS``) as the SDK's own emitter.
    """
    from aws_xray_sdk.core.emitters.udp_emitter import (  # type: ignore[import-untyped]  # noqa: PLC0415
        PROTOCOL_DELIMITER,
        PROTOCOL_HEADER,
        UDPEmitter,
    )

    class RedactingEmitter(UDPEmitter):  # type: ignore[misc]
        def send_entity(self, entity: Any) -> None:
            try:
                document = redact_trace_document(entity.serialize())
                self._send_data(f"{PROTOCOL_HEADER}{PROTOCOL_DELIMITER}{document}")
            except Exception:  # tracing must never fail a record
                logging.getLogger(__name__).warning("Could not send a trace segment")

    recorder = tracer.provider
    if hasattr(recorder, "configure"):
        recorder.configure(emitter=RedactingEmitter())


def log_fields(**fields: Any) -> dict[str, Any]:
    """``extra=`` for a structured log line, dropping empty values."""
    return {key: value for key, value in fields.items() if value is not None}
