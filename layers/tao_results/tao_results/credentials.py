"""The TAO Advance OAuth2 client credentials, read from Secrets Manager and cached.

The secret is JSON ``{"client_id": "...", "client_secret": "..."}`` (or ``clientId``/``clientSecret``)
in its SecretString or, UTF-8 encoded, in its SecretBinary; see :func:`parse_credentials`.

The cache is dropped when the token endpoint rejects the credentials, so a rotated secret is picked
up by the next delivery without a redeploy.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tao_results.classification import transient_aws_error
from tao_results.errors import TransientError
from tao_results.redaction import CLIENT_SECRET, SECRETS

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
        except (BotoCoreError, ClientError) as error:
            raise transient_aws_error("GetSecretValue", error, "credentials_unavailable") from error
        return credentials_from_secret(secret)


def credentials_from_secret(secret: Mapping[str, Any]) -> ClientCredentials:
    """GetSecretValue's answer → credentials: its ``SecretString``, else its ``SecretBinary``.

    Raises :class:`TransientError` ``credentials_invalid`` when neither holds usable credentials
    (see :func:`parse_credentials`).
    """
    value = secret.get("SecretString")
    if value is None:
        value = secret.get("SecretBinary")  # botocore has already base64-decoded it to bytes
    if value is None:
        raise _invalid("the secret has neither a SecretString nor a SecretBinary value")
    return parse_credentials(value)


def parse_credentials(value: object) -> ClientCredentials:
    """A secret's text → credentials (the client secret is registered for redaction).

    Accepted: UTF-8 JSON (``str``, or ``bytes`` from SecretBinary), optionally preceded by a
    byte-order mark and surrounded by whitespace, holding an object with non-empty string members
    ``client_id``/``client_secret`` or ``clientId``/``clientSecret``. Anything else raises
    :class:`TransientError` ``credentials_invalid`` whose detail says what is wrong and never
    contains any part of the value.
    """
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("SecretBinary is not UTF-8 text") from None
    if not isinstance(value, str):
        raise _invalid(f"the secret value is a {type(value).__name__}, not text")
    text = value.lstrip("\ufeff").strip()
    if not text:
        raise _invalid("the secret is empty")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        # msg/line/column only: the exception's full text would be harmless, its doc is the secret.
        raise _invalid(
            f"the secret is not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except (ValueError, RecursionError):
        raise _invalid("the secret is not JSON (unparseable or nested too deeply)") from None
    if not isinstance(payload, dict):
        raise _invalid(f"the secret is a JSON {_json_type(payload)}, not an object")
    return ClientCredentials(_member(payload, *_ID_KEYS), _secret_member(payload))


_ID_KEYS = ("client_id", "clientId")
_SECRET_KEYS = ("client_secret", "clientSecret")
_EXPECTED_SHAPE = '{"client_id": "...", "client_secret": "..."}'


def _secret_member(payload: dict[str, Any]) -> str:
    client_secret = _member(payload, *_SECRET_KEYS)
    SECRETS.pin(CLIENT_SECRET, client_secret)
    return client_secret


def _member(payload: dict[str, Any], snake: str, camel: str) -> str:
    present = [key for key in (snake, camel) if key in payload]
    if not present:
        raise _invalid(f"the secret has no {snake} (or {camel}) member; expected {_EXPECTED_SHAPE}")
    if len(present) == 2 and payload[snake] != payload[camel]:
        raise _invalid(f"the secret has both {snake} and {camel}, with different values")
    key = present[0]
    member = payload[key]
    if not isinstance(member, str):
        raise _invalid(f"{key} must be a JSON string, not {_json_type(member)}")
    if not member.strip():
        raise _invalid(f"{key} is empty")
    return member


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _invalid(detail: str) -> TransientError:
    return TransientError("credentials_invalid", detail)
