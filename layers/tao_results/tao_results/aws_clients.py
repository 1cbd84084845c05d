"""boto3 clients, created on first use and shared by every record in the container.

boto3 is imported lazily: it is the largest import of the function, and the init phase should not
pay for it before a record needs it. ``AWS_ENDPOINT_URL`` (read by botocore) points every client at
a local stack when set.

Every call is bounded by the deadline of the record it serves (:func:`bound_attempt`). botocore has
no per-call deadline: ``read_timeout`` bounds each socket read of one attempt, and the standard
retry mode makes up to three attempts, so a stalled S3 could hold a call for 3 x 60 s. A
``before-send`` hook runs before every attempt: it refuses to start one once the deadline has
passed (``TransientError("deadline")``, which botocore does not retry) and sets the attempt's read
timeout to the time left (botocore's per-request ``read_timeout`` in the request context, 1.43+).
A ``needs-retry`` hook stops the retries of an attempt that failed at the deadline before botocore
pauses (up to 2 s) for the next one. So an attempt ends at the deadline plus at most
``connect_timeout``, a stalled endpoint costs the record a transient failure, and no thread is left
running into the next invocation. (A server that trickles bytes faster than the read timeout is the
residual case: the handler still returns on time, see ``batch``, and the call ends when the server
stops.)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tao_results.deadline import current_deadline
from tao_results.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient


class AwsClients:
    def __init__(self, max_pool_connections: int, connect_timeout: float, read_timeout: float) -> None:
        self._options = (max_pool_connections, connect_timeout, read_timeout)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def s3(self) -> S3Client:
        return self._client("s3")  # type: ignore[no-any-return]

    @property
    def sqs(self) -> SQSClient:
        return self._client("sqs")  # type: ignore[no-any-return]

    @property
    def secrets_manager(self) -> SecretsManagerClient:
        return self._client("secretsmanager")  # type: ignore[no-any-return]

    @property
    def events(self) -> EventBridgeClient:
        return self._client("events")  # type: ignore[no-any-return]

    @property
    def stepfunctions(self) -> SFNClient:
        return self._client("stepfunctions")  # type: ignore[no-any-return]

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        # Client creation on boto3's shared session is not thread-safe: one at a time.
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._create(service)
            return self._clients[service]

    def _create(self, service: str) -> Any:
        import boto3  # noqa: PLC0415 - deferred on purpose, see module docstring
        from botocore.config import Config  # noqa: PLC0415

        max_pool_connections, connect_timeout, read_timeout = self._options
        config = Config(
            max_pool_connections=max_pool_connections,
            connect_timeout=connect_timeout,
            read_timeout=max(read_timeout, 60.0),
            retries={"mode": "standard", "max_attempts": 3},
            tcp_keepalive=True,
        )
        client = boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
        client.meta.events.register("before-send", bound_attempt)
        # First, so it runs before botocore's own retry handler decides to pause and try again.
        client.meta.events.register_first("needs-retry", no_retry_past_deadline)
        return client


def bound_attempt(request: Any, **_: Any) -> None:
    """botocore ``before-send`` hook: this attempt may read for at most the deadline's time left.

    Returns None so botocore sends the request itself. Without a deadline in scope (the CLI, a
    cold-start call) the client's configured timeouts apply unchanged.
    """
    deadline = current_deadline()
    if deadline is None:
        return
    ceiling = getattr(request.context.get("client_config"), "read_timeout", None) or 60.0
    request.context["read_timeout"] = deadline.budget(ceiling, "AWS call")


def no_retry_past_deadline(caught_exception: BaseException | None = None, **_: Any) -> None:
    """botocore ``needs-retry`` hook: an attempt that broke off at the deadline is not retried.

    Raises TransientError ``deadline`` (chained to botocore's error); anything else is left to
    botocore's retry handler (None).
    """
    deadline = current_deadline()
    if deadline is None or caught_exception is None or deadline.remaining() > 0:
        return
    if isinstance(caught_exception, TransientError):
        raise caught_exception
    raise TransientError(
        "deadline", f"an AWS call was cut off at the deadline: {type(caught_exception).__name__}"
    ) from caught_exception
