"""boto3 clients, created on first use and shared by every record in the container.

boto3 is imported lazily: it is the largest import of the function, and the init phase should not
pay for it before a record needs it. ``AWS_ENDPOINT_URL`` (read by botocore) points every client at
a local stack when set.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


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
        return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
