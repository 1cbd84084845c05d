"""Settings, read from the environment and validated once, at cold start.

A missing or invalid variable raises :class:`ConfigError` naming the variable, so a misconfigured
deployment fails on its first invocation with a message that says what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tao_results import memory_budget
from tao_results.key_template import DEFAULT_KEY_TEMPLATE, check_key_template
from tao_results.redelivery import minimum_redelivery_span
from tao_results.url_policy import AMAZON_S3, parse_allow_entry

MiB = 1024 * 1024
DEFAULT_TOKEN_PATH = "/api/v1/upload/v1/oauth2/tokens"  # noqa: S105 - a path, not a secret
DEFAULT_DOWNLOAD_PATH = "/api/v1/download/{referenceId}"
DEFAULT_SIGNED_URL_HOSTS = (AMAZON_S3,)  # Amazon S3's endpoint names, see url_policy.AMAZON_S3_HOST
S3_MINIMUM_PART_SIZE = 5 * MiB

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# OAuth2 client authentication at the token endpoint (see tao_results.auth).
TOKEN_AUTH_METHODS = ("auto", "client_secret_post", "client_secret_basic", "multipart")
# PutEvents EventBusName: a bus name, or its ARN (EventBridge API reference, PutEventsRequestEntry).
_EVENT_BUS = re.compile(r"^(arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/)?[A-Za-z0-9._/-]{1,256}$")


class ConfigError(ValueError):
    """The environment does not describe a usable deployment."""


@dataclass(frozen=True)
class Settings:
    tao_base_url: str
    tao_token_url: str
    tao_download_path: str
    tao_token_scope: str
    credentials_secret_id: str
    results_bucket: str
    results_prefix: str
    dead_letter_queue_url: str
    signed_url_allowed_hosts: tuple[str, ...]
    allow_plain_http: bool
    not_found_grace_seconds: float = 0.0
    record_concurrency: int = 10
    max_attempts: int = 3
    connect_timeout_seconds: float = 3.05
    read_timeout_seconds: float = 15.0
    deadline_margin_seconds: float = 20.0
    part_size_bytes: int = 16 * MiB
    upload_concurrency: int = 4
    transfer_buffer_bytes: int = 48 * MiB
    secret_cache_seconds: float = 900.0
    token_refresh_margin_seconds: float = 60.0
    retry_backoff_base_seconds: float = 10.0
    retry_backoff_max_seconds: float = 900.0
    # The source queue's RedrivePolicy maxReceiveCount; None: read from the queue on first use.
    max_receive_count: int | None = None
    service_name: str = "tao-results-to-s3"
    metrics_namespace: str = "TaoResultsToS3"
    log_level: str = "INFO"
    tracing_enabled: bool = False
    tao_token_auth_method: str = "auto"  # noqa: S105 - a method name, not a secret
    # Integrations (see tao_results.announcements): "" = no events; callbacks off by default.
    results_key_template: str = DEFAULT_KEY_TEMPLATE
    result_event_bus: str = ""
    step_functions_callbacks: bool = False
    # AWS_LAMBDA_FUNCTION_MEMORY_SIZE (None outside Lambda) and the largest part it can hold.
    memory_size_mb: int | None = None
    max_part_size_bytes: int = memory_budget.S3_MAX_PART_SIZE

    def download_url(self, reference_id: str) -> str:
        return self.tao_base_url + self.tao_download_path.replace("{referenceId}", reference_id)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from an environment mapping (``os.environ`` in Lambda)."""
    reader = _Reader(environ)
    allow_plain_http = reader.flag("ALLOW_INSECURE_HTTP")
    base_url = reader.base_url("TAO_BASE_URL", allow_plain_http)
    memory_mb, sizing = reader.transfer_sizing()
    settings = Settings(
        tao_base_url=base_url,
        tao_token_url=reader.tao_url("TAO_TOKEN_URL", base_url + DEFAULT_TOKEN_PATH, allow_plain_http),
        tao_download_path=reader.download_path("TAO_DOWNLOAD_PATH"),
        tao_token_scope=reader.text("TAO_TOKEN_SCOPE", default="rostering"),
        credentials_secret_id=reader.required("TAO_CREDENTIALS_SECRET_ID"),
        results_bucket=reader.required("RESULTS_BUCKET"),
        results_prefix=reader.prefix("RESULTS_PREFIX", default="tao-results/"),
        dead_letter_queue_url=reader.absolute_url("DEAD_LETTER_QUEUE_URL"),
        signed_url_allowed_hosts=reader.host_patterns(
            "SIGNED_URL_ALLOWED_HOSTS", default=(_host_entry(base_url), *DEFAULT_SIGNED_URL_HOSTS)
        ),
        allow_plain_http=allow_plain_http,
        not_found_grace_seconds=reader.number("NOT_FOUND_GRACE_SECONDS", 0.0, 0.0, 14 * 86400.0),
        record_concurrency=reader.integer("RECORD_CONCURRENCY", 10, 1, 10),
        max_attempts=reader.integer("MAX_ATTEMPTS_PER_INVOCATION", 3, 1, 10),
        connect_timeout_seconds=reader.number("HTTP_CONNECT_TIMEOUT_SECONDS", 3.05, 0.1, 60.0),
        read_timeout_seconds=reader.number("HTTP_READ_TIMEOUT_SECONDS", 15.0, 0.1, 300.0),
        deadline_margin_seconds=reader.number("DEADLINE_MARGIN_SECONDS", 20.0, 0.0, 300.0),
        part_size_bytes=sizing.part_size,
        upload_concurrency=sizing.upload_concurrency,
        transfer_buffer_bytes=sizing.buffer_bytes,
        secret_cache_seconds=reader.number("SECRET_CACHE_SECONDS", 900.0, 0.0, 86400.0),
        token_refresh_margin_seconds=reader.number("TOKEN_REFRESH_MARGIN_SECONDS", 60.0, 0.0, 3600.0),
        retry_backoff_base_seconds=reader.number("RETRY_BACKOFF_BASE_SECONDS", 10.0, 0.0, 900.0),
        retry_backoff_max_seconds=reader.number("RETRY_BACKOFF_MAX_SECONDS", 900.0, 0.0, 43200.0),
        # SQS's range for a RedrivePolicy's maxReceiveCount.
        max_receive_count=reader.optional_integer("MAX_RECEIVE_COUNT", 1, 1000),
        service_name=reader.text("POWERTOOLS_SERVICE_NAME", default="tao-results-to-s3"),
        metrics_namespace=reader.text("POWERTOOLS_METRICS_NAMESPACE", default="TaoResultsToS3"),
        log_level=reader.log_level(),
        # Powertools' own rule: traced only inside Lambda, unless POWERTOOLS_TRACE_DISABLED is set.
        tracing_enabled=bool(reader.text("LAMBDA_TASK_ROOT", default=""))
        and not reader.flag("POWERTOOLS_TRACE_DISABLED"),
        tao_token_auth_method=reader.choice("TAO_TOKEN_AUTH_METHOD", TOKEN_AUTH_METHODS, default="auto"),
        results_key_template=reader.key_template("RESULTS_KEY_TEMPLATE"),
        result_event_bus=reader.event_bus("RESULT_EVENT_BUS"),
        step_functions_callbacks=reader.choice("STEP_FUNCTIONS_CALLBACKS", ("true", "false"), default="false")
        == "true",
        memory_size_mb=memory_mb,
        max_part_size_bytes=memory_budget.largest_part(memory_mb),
    )
    check_grace_fits(settings)
    return settings


def check_grace_fits(settings: Settings) -> None:
    """Refuse a ``NOT_FOUND_GRACE_SECONDS`` the queue's deliveries cannot cover.

    The last allowed delivery comes at least ``minimum_redelivery_span(MAX_RECEIVE_COUNT,
    RETRY_BACKOFF_BASE_SECONDS, RETRY_BACKOFF_MAX_SECONDS)`` seconds after the first (see
    ``redelivery``); a grace longer than that would run out of deliveries while a 404 still reads
    as "not ready yet". Checked only when both are known: with ``RETRY_BACKOFF_BASE_SECONDS=0`` the
    gaps are the queue's visibility timeout, and without ``MAX_RECEIVE_COUNT`` the count is read
    from the queue later.
    """
    grace, count = settings.not_found_grace_seconds, settings.max_receive_count
    if grace <= 0 or count is None or settings.retry_backoff_base_seconds <= 0:
        return
    span = minimum_redelivery_span(
        count, settings.retry_backoff_base_seconds, settings.retry_backoff_max_seconds
    )
    if span < grace:
        raise ConfigError(
            f"NOT_FOUND_GRACE_SECONDS ({grace:g}) does not fit in MAX_RECEIVE_COUNT ({count}) deliveries:"
            f" with RETRY_BACKOFF_BASE_SECONDS={settings.retry_backoff_base_seconds:g} and"
            f" RETRY_BACKOFF_MAX_SECONDS={settings.retry_backoff_max_seconds:g} the last delivery may come"
            f" {span:g} s after the first; raise MAX_RECEIVE_COUNT or the backoff, or lower the grace"
        )


def _host_entry(url: str) -> str:
    """The allow-list entry for a URL's host (with its explicit port, if any)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"


class _Reader:
    """Typed accessors over the environment; every error names its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def required(self, name: str) -> str:
        value = self._raw(name)
        if value is None:
            raise ConfigError(f"{name} is required but not set")
        return value

    def text(self, name: str, *, default: str) -> str:
        return self._raw(name) or default

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum:g} and {maximum:g}, got {raw}")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, default: str) -> str:
        value = (self._raw(name) or default).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def optional_integer(self, name: str, minimum: int, maximum: int) -> int | None:
        if self._raw(name) is None:
            return None
        return self.integer(name, minimum, minimum, maximum)

    def transfer_sizing(self) -> tuple[int | None, memory_budget.Sizing]:
        """PART_SIZE_BYTES, UPLOAD_CONCURRENCY, TRANSFER_BUFFER_MIB: explicit, else derived from
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE (memory_budget.py); explicit ones must fit that memory."""
        memory_mb = None
        if self._raw("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") is not None:
            memory_mb = self.integer(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                0,
                memory_budget.LAMBDA_MIN_MEMORY_MB,
                memory_budget.LAMBDA_MAX_MEMORY_MB,
            )
        derived = memory_budget.derive(memory_mb)
        sizing = memory_budget.Sizing(
            part_size=self.integer(
                "PART_SIZE_BYTES", derived.part_size, S3_MINIMUM_PART_SIZE, memory_budget.S3_MAX_PART_SIZE
            ),
            upload_concurrency=self.integer("UPLOAD_CONCURRENCY", derived.upload_concurrency, 1, 32),
            buffer_bytes=self.integer("TRANSFER_BUFFER_MIB", derived.buffer_bytes // MiB, 10, 10240) * MiB,
        )
        if memory_mb is not None:
            problem = memory_budget.check(memory_mb, sizing.part_size, sizing.buffer_bytes)
            if problem:
                raise ConfigError(problem)
        return memory_mb, sizing

    def flag(self, name: str) -> bool:
        return (self._raw(name) or "").lower() in ("1", "true", "yes", "on")

    def log_level(self) -> str:
        level = (self._raw("POWERTOOLS_LOG_LEVEL") or self._raw("LOG_LEVEL") or "INFO").upper()
        if level not in _LOG_LEVELS:
            raise ConfigError(f"POWERTOOLS_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {level!r}")
        return level

    def absolute_url(self, name: str, default: str | None = None) -> str:
        raw = self._raw(name)
        if raw is None:
            if default is None:
                raise ConfigError(f"{name} is required but not set")
            return default
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{name} must be an absolute http(s) URL, got {raw!r}")
        return raw

    def tao_url(self, name: str, default: str | None, allow_plain_http: bool) -> str:
        url = self.absolute_url(name, default)
        if urlsplit(url).scheme == "http" and not allow_plain_http:
            # The client secret and the Bearer token travel to TAO: never in clear by accident.
            raise ConfigError(f"{name} is plain http: set ALLOW_INSECURE_HTTP=true (local stacks only)")
        return url

    def base_url(self, name: str, allow_plain_http: bool) -> str:
        url = self.tao_url(name, None, allow_plain_http)
        parts = urlsplit(url)
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigError(f"{name} must not carry credentials, a query or a fragment")
        return url.rstrip("/")

    def download_path(self, name: str) -> str:
        path = self.text(name, default=DEFAULT_DOWNLOAD_PATH)
        if not path.startswith("/") or "{referenceId}" not in path:
            raise ConfigError(f"{name} must start with '/' and contain '{{referenceId}}', got {path!r}")
        return path

    def prefix(self, name: str, *, default: str) -> str:
        raw = self._environ.get(name)
        prefix = default if raw is None else raw.strip()
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise ConfigError(f"{name} must be a relative key prefix, got {prefix!r}")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return prefix

    def key_template(self, name: str) -> str:
        try:
            return check_key_template(self._raw(name) or DEFAULT_KEY_TEMPLATE)
        except ValueError as error:
            raise ConfigError(f"{name} {error}") from None

    def event_bus(self, name: str) -> str:
        bus = self._raw(name) or ""
        if bus and not _EVENT_BUS.match(bus):
            raise ConfigError(f"{name} must be an event bus name or ARN, got {bus!r}")
        return bus

    def host_patterns(self, name: str, *, default: tuple[str, ...]) -> tuple[str, ...]:
        """Entries in url_policy's grammar, normalised (lower case, no trailing dot, no repeats)."""
        raw = self._raw(name)
        candidates = default if raw is None else tuple(raw.split(","))
        try:
            entries = [str(parse_allow_entry(text)) for text in candidates if text.strip()]
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None
        patterns = tuple(dict.fromkeys(entries))
        if not patterns:
            raise ConfigError(f"{name} must list at least one host pattern")
        return patterns
