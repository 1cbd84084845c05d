"""OAuth2 client-credentials tokens for the TAO Advance API, cached until shortly before expiry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import requests

from tao_results.credentials import ClientCredentials, CredentialStore
from tao_results.errors import TOKEN_OUTCOMES, TransientError, error_for_status, parse_retry_after
from tao_results.http import answer_detail, read_bounded, send
from tao_results.redaction import SECRETS

DEFAULT_EXPIRES_IN = 3600.0


class TokenProvider:
    def __init__(
        self,
        session: requests.Session,
        token_url: str,
        scope: str,
        credentials: CredentialStore,
        timeout: tuple[float, float],
        refresh_margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._token_url = token_url
        self._scope = scope
        self._credentials = credentials
        self._timeout = timeout
        self._refresh_margin = refresh_margin_seconds
        self._clock = clock
        # One lock for fetching: concurrent records wait for one token request instead of racing.
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, lifetime = self._fetch()
                self._refresh_at = self._clock() + lifetime - min(self._refresh_margin, lifetime / 2)
            return self._token

    def invalidate(self, rejected_token: str) -> None:
        """Forget ``rejected_token`` (the API answered 401); the next call fetches a new one."""
        with self._lock:
            if self._token == rejected_token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        credentials = self._credentials.get()
        try:
            return self._request(credentials)
        except TransientError as error:
            if error.reason != "credentials_rejected":
                raise
        # Rejected: the secret may have been rotated since we cached it. Re-read it once and retry.
        self._credentials.invalidate(credentials)
        return self._request(self._credentials.get())

    def _request(self, credentials: ClientCredentials) -> tuple[str, float]:
        response = send(
            self._session,
            "POST",
            self._token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
                "scope": self._scope,
            },
            headers={"Accept": "application/json"},
            timeout=self._timeout,
            stream=True,
        )
        body = read_bounded(response)
        if response.status_code != 200:
            raise error_for_status(
                response.status_code,
                TOKEN_OUTCOMES,
                f"token endpoint: {answer_detail(body)}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        return _parse_token_answer(body)


def _parse_token_answer(body: bytes | None) -> tuple[str, float]:
    try:
        payload = json.loads(body or b"")
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise TransientError("token_response_invalid", "the token endpoint did not answer a JSON object")
    token = payload.get("access_token")
    token_type = payload.get("token_type", "Bearer")
    if not isinstance(token, str) or not token or not isinstance(token_type, str):
        raise TransientError("token_response_invalid", "the token answer has no access_token")
    if token_type.lower() != "bearer":
        raise TransientError("token_response_invalid", f"unsupported token_type {token_type!r}")
    SECRETS.add(token)
    expires_in = payload.get("expires_in", DEFAULT_EXPIRES_IN)
    lifetime = (
        float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_EXPIRES_IN
    )
    return token, lifetime
