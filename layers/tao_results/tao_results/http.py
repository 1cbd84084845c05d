"""HTTP plumbing shared by the TAO clients: sessions, requests errors → TransientError, bounded reads."""

from __future__ import annotations

import json
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tao_results.deadline import current_deadline
from tao_results.errors import TransientError
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
    """``session.request`` with network failures mapped to TransientError (URL redacted).

    With a record's deadline in scope (``deadline.deadline_scope``) the connect and read timeouts
    are at most the time left, and no request starts after the deadline (TransientError
    ``deadline``); the body is read against the deadline too (``read_bounded``, ``ResultBody``).
    """
    deadline = current_deadline()
    if deadline is not None:
        timeout = kwargs.get("timeout")
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        budget = deadline.budget(float(read) if read is not None else 60.0, f"{method} {redact_url(url)}")
        kwargs["timeout"] = (budget if connect is None else min(float(connect), budget), budget)
    try:
        return session.request(method, url, allow_redirects=False, **kwargs)
    except requests.Timeout as error:
        raise TransientError("timeout", f"{method} {redact_url(url)} timed out") from error
    except requests.ConnectionError as error:
        raise TransientError("connection_error", f"{method} {redact_url(url)}: connection failed") from error
    except requests.RequestException as error:
        raise TransientError("http_error", f"{method} {redact_url(url)}: {type(error).__name__}") from error


def read_bounded(response: requests.Response, limit: int = MAX_API_ANSWER_BYTES) -> bytes | None:
    """The body if it is at most ``limit`` bytes, else None; the response is closed either way.

    Read piece by piece (``read1``: what has arrived), checking the deadline in scope between
    pieces, so a server that trickles bytes cannot hold the record past its deadline.
    """
    deadline = current_deadline()
    body = bytearray()
    try:
        while len(body) <= limit:
            if deadline is not None:
                deadline.check("reading an answer")
            chunk = response.raw.read1(limit + 1 - len(body), decode_content=True)
            if not chunk:
                break
            body += chunk
    except TransientError:
        raise
    except Exception as error:
        raise TransientError(
            "connection_error", f"reading the answer failed: {type(error).__name__}"
        ) from error
    finally:
        response.close()
    return bytes(body) if len(body) <= limit else None


def answer_detail(body: bytes | None) -> str:
    """A short human-readable detail from an error answer: its JSON ``message`` or its text."""
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
    text = " ".join(text.split())
    return text[:MAX_DETAIL_CHARACTERS]
