"""HTTP plumbing shared by the TAO clients: sessions, requests errors → TransientError, bounded reads."""

from __future__ import annotations

import json
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tao_results.errors import TransientError
from tao_results.redaction import SECRETS
from tao_results.url_policy import redact_url

MAX_API_ANSWER_BYTES = 64 * 1024
MAX_DETAIL_CHARACTERS = 300


def new_session(pool_size: int) -> requests.Session:
    """A keep-alive session that ignores the environment (no .netrc credentials, no proxies)."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """``session.request`` with network failures mapped to TransientError (URL redacted)."""
    try:
        return session.request(method, url, allow_redirects=False, **kwargs)
    except requests.Timeout as error:
        raise TransientError("timeout", f"{method} {redact_url(url)} timed out") from error
    except requests.ConnectionError as error:
        raise TransientError("connection_error", f"{method} {redact_url(url)}: connection failed") from error
    except requests.RequestException as error:
        raise TransientError("http_error", f"{method} {redact_url(url)}: {type(error).__name__}") from error


def read_bounded(response: requests.Response, limit: int = MAX_API_ANSWER_BYTES) -> bytes | None:
    """The body if it is at most ``limit`` bytes, else None; the response is closed either way."""
    try:
        body = response.raw.read(limit + 1, decode_content=True)
    except Exception as error:
        raise TransientError(
            "connection_error", f"reading the answer failed: {type(error).__name__}"
        ) from error
    finally:
        response.close()
    return body if len(body) <= limit else None


def answer_detail(body: bytes | None) -> str:
    """A short detail from an error answer (its JSON ``message`` or its text), credentials masked."""
    if not body:
        return "(empty answer)"
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error", "Message"):
            if isinstance(payload.get(key), str):
                text = payload[key]
                break
    # Scrubbed whole before anything changes it: a cut through an echoed secret would leave a prefix
    # no scrub matches, and folding whitespace would alter a secret that contains some.
    return " ".join(SECRETS.scrub(text).split())[:MAX_DETAIL_CHARACTERS]
