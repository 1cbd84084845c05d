"""The token endpoint and the token store.

``POST /api/v1/upload/v1/oauth2/tokens``
    OAuth2 client credentials (RFC 6749 §4.4). A request's client-authentication *form* is
    ``client_secret_basic`` when it carries ``Authorization: Basic`` (id and secret
    form-urlencoded, then base64, decoded per RFC 6749 §2.3.1: a ``+`` is a space), else
    ``multipart`` for a ``multipart/form-data`` body (``curl --form``), else ``client_secret_post``
    (``application/x-www-form-urlencoded`` body). A form not in ``token_auth_methods`` (and every
    request while ``token_reject_all``) gets the ``token_rejection`` answer (see
    :data:`TOKEN_REJECTIONS`); credentials both in the header and the body → 400
    ``invalid_request`` (RFC 6749 §2.3). ``grant_type`` must be ``client_credentials`` (else 400
    ``{"error": "unsupported_grant_type"}``); wrong client → 401 ``{"error": "invalid_client"}``.
    Success → 200 ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``;
    ``expires_in`` is a JSON number, a numeric string or absent (``token_expires_in_as``).
    ``scope`` is optional: the granted scopes are the requested ones the client has, or all it has
    when it asks for none it has. Tokens keep the scopes they were issued with and expire
    server-side after ``token_expires_in`` (emulator clock, see ``advance_clock``), even when the
    answer does not say so. The request log gives each token request's form as ``client_auth``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.parser
import email.policy
import hmac
import json
import secrets
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from tao_emulator.handler import _HandlerBase
from tao_emulator.state import _State

TOKEN_PATH = "/api/v1/upload/v1/oauth2/tokens"

#: Client-authentication forms of the token endpoint (OpenID Connect Core §9 names, plus multipart).
TOKEN_AUTH_METHODS = ("client_secret_post", "client_secret_basic", "multipart")
#: How the token endpoint refuses a form it does not take: name → (status, body, content type, headers).
#: The 400s are RFC 6749 §5.2 JSON; 401 "Access Denied" is the vendor's gateway; 401 with a Basic
#: challenge is RFC 6749 §5.2 for invalid_client; 415 is a server that does not parse the body type.
TOKEN_REJECTIONS: dict[str, tuple[int, str, str, dict[str, str]]] = {
    "400_invalid_request": (
        400,
        json.dumps({"error": "invalid_request", "error_description": "Unsupported client authentication"}),
        "application/json",
        {},
    ),
    "400_invalid_client": (
        400,
        json.dumps({"error": "invalid_client", "error_description": "Client authentication failed"}),
        "application/json",
        {},
    ),
    "400_unauthorized_client": (
        400,
        json.dumps({"error": "unauthorized_client", "error_description": "Client not authorized"}),
        "application/json",
        {},
    ),
    "401_access_denied": (401, "Access Denied", "text/plain", {}),
    "401_basic_challenge": (
        401,
        json.dumps({"error": "invalid_client"}),
        "application/json",
        {"WWW-Authenticate": 'Basic realm="tao", charset="UTF-8"'},
    ),
    "415": (
        415,
        json.dumps({"error": "invalid_request", "error_description": "Unsupported Media Type"}),
        "application/json",
        {},
    ),
}
_EXPIRES_IN_FORMS = ("int", "string", "absent")


@dataclasses.dataclass
class _Token:
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False


class _TokenStore(_State):
    """Issued tokens: their scopes, server-side expiry (emulator clock) and revocation."""

    def _issue_token(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            expires_in = self._settings.token_expires_in
            self._tokens[token] = _Token(scopes=scopes, expires_at=self._now() + expires_in)
            self._issued_tokens.append(token)
            self._stats["tokens_issued"] += 1
        return token, expires_in

    def _token(self, token: str) -> _Token | None:
        with self._lock:
            record = self._tokens.get(token)
            if record is None or record.revoked or self._now() >= record.expires_at:
                return None
            return record

    def _revoke(self, token: str) -> None:
        with self._lock:
            record = self._tokens.get(token)
            if record is not None:
                record.revoked = True


class _TokenEndpoint(_HandlerBase):
    """``POST /api/v1/upload/v1/oauth2/tokens``: OAuth2 client credentials (RFC 6749 §4.4)."""

    def _token(self, body: bytes) -> None:
        if self.command != "POST":
            self._send_json(
                405, {"error": "invalid_request", "error_description": "POST only"}, {"Allow": "POST"}
            )
            return
        settings = self.emulator._settings
        content_type = self.headers.get("Content-Type", "")
        authorization = self.headers.get("Authorization", "")
        basic_used = authorization[:6].lower() == "basic "
        if basic_used:
            self.client_auth = "client_secret_basic"
        elif content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
            self.client_auth = "multipart"
        else:
            self.client_auth = "client_secret_post"
        if settings.token_reject_all or self.client_auth not in settings.token_auth_methods:
            status, answer, answer_type, headers = TOKEN_REJECTIONS[settings.token_rejection]
            self._send(status, answer, answer_type, headers)
            return
        try:
            form = _parse_form(content_type, body)
        except ValueError as error:
            self._send_json(400, {"error": "invalid_request", "error_description": str(error)})
            return
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if basic_used:
            if client_secret is not None:
                self._send_json(
                    400,
                    {"error": "invalid_request", "error_description": "more than one authentication method"},
                )
                return
            client_id, client_secret = _decode_basic(authorization[6:])
        if not (
            client_id is not None
            and client_secret is not None
            and hmac.compare_digest(client_id.encode(), settings.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), settings.client_secret.encode())
        ):
            headers = {"WWW-Authenticate": 'Basic realm="tao"'} if basic_used else {}
            self._send_json(401, {"error": "invalid_client"}, headers)
            return
        if form.get("grant_type") != "client_credentials":
            self._send_json(400, {"error": "unsupported_grant_type"})
            return
        has = tuple(settings.scopes)
        requested = (form.get("scope") or "").split()
        granted = tuple(scope for scope in requested if scope in has) or has
        token, expires_in = self.emulator._issue_token(granted)
        document: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if settings.token_expires_in_as == "int":
            document["expires_in"] = expires_in
        elif settings.token_expires_in_as == "string":
            document["expires_in"] = str(expires_in)
        document["scope"] = " ".join(granted)
        self._send_json(200, document, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def _decode_basic(credentials: str) -> tuple[str | None, str | None]:
    """``Basic`` credentials → (client_id, client_secret), each form-urlencoded (RFC 6749 §2.3.1)."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    if ":" not in decoded:
        return None, None
    user, _, password = decoded.partition(":")
    try:
        return unquote_plus(user, errors="strict"), unquote_plus(password, errors="strict")
    except UnicodeDecodeError:
        return None, None


def _parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """Parse an urlencoded or multipart/form-data body into its first values."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("application/x-www-form-urlencoded", ""):
        try:
            parsed = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as error:
            raise ValueError("form body is not UTF-8") from error
        return {key: values[0] for key, values in parsed.items()}
    if media_type == "multipart/form-data":
        if "boundary=" not in content_type:
            raise ValueError("multipart body without boundary")
        header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
        if not message.is_multipart():
            raise ValueError("malformed multipart body")
        form: dict[str, str] = {}
        for part in message.iter_parts():
            if not isinstance(part, Message):
                continue
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                form.setdefault(name, payload.decode())
        return form
    raise ValueError(f"unsupported Content-Type {media_type!r}")
