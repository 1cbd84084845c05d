"""The TAO Advance OAuth2 client credentials, read from Secrets Manager and cached.

The cache is dropped when the token endpoint rejects the credentials, so a rotated secret is picked
up by the next delivery without a redeploy.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tao_results.errors import TransientError
from tao_results.redaction import SECRETS

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)


class CredentialStore:
    def __init__(
        self,
        client: Callable[[], SecretsManagerClient],
        secret_id: str,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: ClientCredentials | None = None
        self._read_at = 0.0

    def get(self) -> ClientCredentials:
        with self._lock:
            if self._cached is None or self._clock() - self._read_at >= self._cache_seconds:
                self._cached = self._read()
                self._read_at = self._clock()
            return self._cached

    def invalidate(self, rejected: ClientCredentials) -> None:
        """Forget ``rejected`` (unless another thread already replaced it)."""
        with self._lock:
            if self._cached == rejected:
                self._cached = None

    def _read(self) -> ClientCredentials:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        try:
            secret = self._client().get_secret_value(SecretId=self._secret_id)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise TransientError("credentials_unavailable", f"GetSecretValue failed: {code}") from error
        except BotoCoreError as error:
            raise TransientError("credentials_unavailable", f"GetSecretValue failed: {error}") from error
        return parse_credentials(secret.get("SecretString"))


def parse_credentials(secret_string: object) -> ClientCredentials:
    """``{"client_id": "...", "client_secret": "..."}`` → credentials (registered for redaction)."""
    try:
        payload = json.loads(secret_string) if isinstance(secret_string, str) else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        client_id, client_secret = payload.get("client_id"), payload.get("client_secret")
        if isinstance(client_id, str) and isinstance(client_secret, str) and client_id and client_secret:
            SECRETS.add(client_secret)
            return ClientCredentials(client_id, client_secret)
    raise TransientError(
        "credentials_invalid",
        'the secret must be a JSON object {"client_id": "...", "client_secret": "..."}',
    )
