"""OAuth2 client-credentials tokens for the TAO Advance API (RFC 6749 §4.4), cached until near expiry.

Client authentication, ``TAO_TOKEN_AUTH_METHOD`` (names as in OpenID Connect Core §9 where one exists):

``client_secret_post``
    ``client_id`` and ``client_secret`` in the ``application/x-www-form-urlencoded`` body (RFC 6749
    §2.3.1).
``client_secret_basic``
    ``Authorization: Basic base64(urlencode(client_id) ":" urlencode(client_secret))``: both are
    form-urlencoded *before* base64 (RFC 6749 §2.3.1 and Appendix B), the body carries the grant.
``multipart``
    every field, credentials included, as ``multipart/form-data`` (RFC 7578): what the vendor's own
    example sends (``curl --form``).
``auto`` (the default)
    try them in that order while the endpoint rejects the request's *form* (400 ``invalid_request``
    / ``invalid_client`` / ``unauthorized_client`` as RFC 6749 §5.2 JSON, any 401, 415), keep the
    first that works for the container's life and report it once through ``on_auth_method``.

One token request is in flight per container: concurrent callers wait for it and share its outcome,
success or failure. A rejection (or an unusable secret) is remembered for a few seconds, so a batch
against an endpoint that rejects everything costs one probe, not one per record and attempt.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable
from urllib.parse import quote_plus

import requests

from tao_results.classification import TOKEN_OUTCOMES, error_for_status
from tao_results.credentials import ClientCredentials, CredentialStore
from tao_results.errors import ProcessingError, TransientError
from tao_results.headers import parse_retry_after
from tao_results.http_sessions import answer_detail, read_bounded, send
from tao_results.redaction import ACCESS_TOKEN, SECRETS

CLIENT_SECRET_POST = "client_secret_post"  # noqa: S105 - the name of a method, not a secret
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105
MULTIPART = "multipart"
AUTO = "auto"
#: ``auto`` tries these in this order.
AUTH_METHODS = (CLIENT_SECRET_POST, CLIENT_SECRET_BASIC, MULTIPART)
DEFAULT_REJECTION_MEMORY_SECONDS = 5.0

# RFC 6749 §5.2 codes that may mean "not this way of authenticating" (as opposed to a bad grant or
# scope, which another form cannot fix).
_FORM_REJECTION_CODES = frozenset({"invalid_request", "invalid_client", "unauthorized_client"})
_FORM_REJECTION_STATUSES = frozenset({401, 415})
# Failures that are the same on the next try within seconds: repeating them only adds load.
_REMEMBERED_REASONS = frozenset({"credentials_rejected", "credentials_invalid", "credentials_unavailable"})
_FIELD_LIMIT = 120


class TokenProvider:
    """Bearer tokens for the Download API: one cached token, fetched with the client credentials.

    ``token() -> str`` raises :class:`TransientError` (``credentials_rejected``,
    ``token_throttled``, ``server_error``, ``token_response_invalid``, ``timeout``, the
    credential store's reasons, ...) or, for an answer no retry can change (3xx, 404),
    :class:`~tao_results.errors.PermanentError` ``unexpected_status``.
    """

    def __init__(
        self,
        session: requests.Session,
        token_url: str,
        scope: str,
        credentials: CredentialStore,
        timeout: tuple[float, float],
        refresh_margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        auth_method: str = AUTO,
        rejection_memory_seconds: float = DEFAULT_REJECTION_MEMORY_SECONDS,
        on_auth_method: Callable[[str, bool], None] | None = None,
    ) -> None:
        if auth_method != AUTO and auth_method not in AUTH_METHODS:
            raise ValueError(f"unknown client authentication method {auth_method!r}")
        self._session = session
        self._token_url = token_url
        self._scope = scope
        self._credentials = credentials
        self._timeout = timeout
        self._refresh_margin = refresh_margin_seconds
        self._clock = clock
        self._configured_method = auth_method
        self._rejection_memory = rejection_memory_seconds
        self._on_auth_method = on_auth_method
        # One lock for fetching: concurrent records wait for one token request instead of racing.
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._settled_method: str | None = None
        # Outcomes of fetches so far, and the last failure: a caller that waited for a fetch in
        # flight gets its failure instead of starting another request.
        self._fetches_done = 0
        self._failure: ProcessingError | None = None
        self._failure_until = -math.inf

    @property
    def auth_method(self) -> str | None:
        """The client authentication method in use (one of :data:`AUTH_METHODS`); None until one worked."""
        return self._settled_method

    def token(self) -> str:
        """A Bearer token (cached; fetched when missing, invalidated or near ``expires_in``)."""
        fetches_seen = self._fetches_done  # read before waiting: did a fetch end while we waited?
        with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token
            failure = self._failure
            if failure is not None and (
                self._fetches_done != fetches_seen or self._clock() < self._failure_until
            ):
                raise _again(failure) from None
            try:
                token, lifetime = self._fetch()
            except ProcessingError as error:
                self._record_failure(error)
                raise
            self._fetches_done += 1
            self._failure = None
            self._token = token
            # No expires_in: use it until the API answers 401 (then invalidate() drops it).
            self._refresh_at = (
                math.inf
                if lifetime is None
                else self._clock() + lifetime - min(self._refresh_margin, lifetime / 2)
            )
            return token

    def invalidate(self, rejected_token: str) -> None:
        """Forget ``rejected_token`` (the API answered 401); the next call fetches a new one."""
        with self._lock:
            if self._token == rejected_token:
                self._token = None

    def _record_failure(self, error: ProcessingError) -> None:
        self._fetches_done += 1
        self._failure = error
        remembered = isinstance(error, TransientError) and error.reason in _REMEMBERED_REASONS
        self._failure_until = self._clock() + self._rejection_memory if remembered else -math.inf

    def _fetch(self) -> tuple[str, float | None]:
        credentials = self._credentials.get()
        try:
            return self._authenticate(credentials)
        except TransientError as error:
            if error.reason != "credentials_rejected":
                raise
            rejected = error
        # Rejected: the secret may have been rotated since we cached it. Re-read it once; asking
        # again with the very same credentials could not change the answer.
        self._credentials.invalidate(credentials)
        fresh = self._credentials.get()
        if fresh == credentials:
            raise rejected
        return self._authenticate(fresh)

    def _authenticate(self, credentials: ClientCredentials) -> tuple[str, float | None]:
        """One token request per candidate method, stopping at the first that is not a form rejection."""
        if self._settled_method is not None:
            candidates: tuple[str, ...] = (self._settled_method,)
        elif self._configured_method == AUTO:
            candidates = AUTH_METHODS
        else:
            candidates = (self._configured_method,)
        rejections: list[str] = []
        last_status: int | None = None
        for method in candidates:
            response = self._post(credentials, method)
            body = read_bounded(response)
            if response.status_code == 200:
                answer = _parse_token_answer(body)
                self._settle(method)
                return answer
            detail = _safe_detail(body)
            if _rejects_form(response.status_code, body) and len(candidates) > 1:
                rejections.append(f"{method}: {response.status_code} {detail}")
                last_status = response.status_code
                continue
            raise error_for_status(
                response.status_code,
                TOKEN_OUTCOMES,
                f"token endpoint ({method}): {detail}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        raise TransientError(
            "credentials_rejected",
            "token endpoint rejected every client authentication method: " + "; ".join(rejections),
            last_status,
        )

    def _settle(self, method: str) -> None:
        if self._settled_method is None:
            self._settled_method = method
            if self._on_auth_method is not None:
                self._on_auth_method(method, self._configured_method == AUTO)

    def _post(self, credentials: ClientCredentials, method: str) -> requests.Response:
        grant = {"grant_type": "client_credentials", "scope": self._scope}
        secret_fields = {"client_id": credentials.client_id, "client_secret": credentials.client_secret}
        headers = {"Accept": "application/json"}
        arguments: dict[str, object] = {}
        if method == CLIENT_SECRET_BASIC:
            headers["Authorization"] = basic_authorization(credentials)
            arguments["data"] = grant
        elif method == MULTIPART:
            # (None, value): a plain form field without a filename, as ``curl --form name=value``.
            arguments["files"] = {name: (None, value) for name, value in {**grant, **secret_fields}.items()}
        else:
            arguments["data"] = {**grant, **secret_fields}
        return send(
            self._session,
            "POST",
            self._token_url,
            headers=headers,
            timeout=self._timeout,
            stream=True,
            **arguments,
        )


def basic_authorization(credentials: ClientCredentials) -> str:
    """The ``Authorization`` value for ``client_secret_basic`` (RFC 6749 §2.3.1, RFC 7617).

    Id and secret are ``application/x-www-form-urlencoded`` (space → ``+``, UTF-8 percent-encoded)
    before they are joined by ``:`` and base64-encoded, so a ``:`` in either survives. The encoded
    forms are registered for redaction: a gateway may echo the header back in an error page.
    """
    user = quote_plus(credentials.client_id, safe="")
    password = quote_plus(credentials.client_secret, safe="")
    encoded = base64.b64encode(f"{user}:{password}".encode("ascii")).decode("ascii")
    SECRETS.add(password)
    SECRETS.add(encoded)
    return f"Basic {encoded}"


def _rejects_form(status: int, body: bytes | None) -> bool:
    """Whether an answer may mean "authenticate another way" (see the module docstring)."""
    if status in _FORM_REJECTION_STATUSES:
        return True
    if status != 400:
        return False
    payload = _json_or_none(body)
    return isinstance(payload, dict) and payload.get("error") in _FORM_REJECTION_CODES


def _json_or_none(body: bytes | None) -> object:
    try:
        return json.loads(body or b"")
    except (ValueError, RecursionError):
        return None


def _safe_detail(body: bytes | None) -> str:
    try:
        return answer_detail(body)
    except RecursionError:  # JSON nested past the parser's stack: a detail is not worth failing for
        return "(unparseable answer)"


def _again(failure: ProcessingError) -> ProcessingError:
    """A fresh copy of a shared failure: one exception object must not be raised on many threads."""
    if isinstance(failure, TransientError):
        return TransientError(failure.reason, failure.detail, failure.http_status, failure.retry_after)
    return type(failure)(failure.reason, failure.detail, failure.http_status)


def _parse_token_answer(body: bytes | None) -> tuple[str, float | None]:
    """RFC 6749 §5.1 answer → (access_token, lifetime in seconds or None when not given).

    ``expires_in`` may be a JSON number or a numeric string (both are seen in the wild); absent,
    non-numeric, non-positive or non-finite means "no known lifetime": use the token until a 401.
    """
    if body is None:
        raise TransientError("token_response_invalid", "the token answer is too large")
    payload = _json_or_none(body)
    if not isinstance(payload, dict):
        raise TransientError("token_response_invalid", "the token endpoint did not answer a JSON object")
    token = payload.get("access_token")
    token_type = payload.get("token_type", "Bearer")
    if not isinstance(token, str) or not token:
        raise TransientError("token_response_invalid", "the token answer has no access_token")
    if not token.isascii() or not token.isprintable() or " " in token:
        # Not a b64token (RFC 6750 §2.1): it cannot travel in an Authorization header.
        raise TransientError("token_response_invalid", "the access_token is not a printable ASCII token")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = token_type[:_FIELD_LIMIT] if isinstance(token_type, str) else type(token_type).__name__
        raise TransientError("token_response_invalid", f"unsupported token_type {shown!r}")
    SECRETS.pin(ACCESS_TOKEN, token)
    return token, _lifetime(payload.get("expires_in"))


def _lifetime(expires_in: object) -> float | None:
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, str):
        try:
            expires_in = float(expires_in.strip())
        except ValueError:
            return None
    if isinstance(expires_in, int | float) and math.isfinite(expires_in) and expires_in > 0:
        return float(expires_in)
    return None
