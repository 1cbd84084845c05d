"""The TAO Advance Download API: referenceId → a time-limited signed URL."""

from __future__ import annotations

import json

import requests

from tao_results.auth import TokenProvider
from tao_results.classification import DOWNLOAD_API_OUTCOMES, error_for_status
from tao_results.config import Settings
from tao_results.errors import PermanentError
from tao_results.headers import parse_retry_after
from tao_results.http_sessions import answer_detail, read_bounded, send
from tao_results.redaction import register_signed_url


class DownloadApi:
    def __init__(self, session: requests.Session, settings: Settings, tokens: TokenProvider) -> None:
        self._session = session
        self._settings = settings
        self._tokens = tokens
        self._timeout = (settings.connect_timeout_seconds, settings.read_timeout_seconds)

    def signed_url(self, reference_id: str) -> str:
        """The signed URL of the result of ``reference_id`` (not yet checked against the allow-list)."""
        url = self._settings.download_url(reference_id)
        token = self._tokens.token()
        response = self._get(url, token)
        if response.status_code == 401:
            # The gateway's text/plain "Access Denied": expired or revoked token. Refresh once.
            read_bounded(response)
            self._tokens.invalidate(token)
            response = self._get(url, self._tokens.token())
        body = read_bounded(response)
        if response.status_code != 200:
            raise error_for_status(
                response.status_code,
                DOWNLOAD_API_OUTCOMES,
                answer_detail(body),
                parse_retry_after(response.headers.get("Retry-After")),
            )
        return _signed_url_from(body, response.headers.get("Content-Type", ""))

    def _get(self, url: str, token: str) -> requests.Response:
        return send(
            self._session,
            "GET",
            url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=self._timeout,
            stream=True,
        )


def _signed_url_from(body: bytes | None, content_type: str) -> str:
    if body is None:
        raise PermanentError("invalid_api_response", "the Download API answer is too large", 200)
    try:
        payload = json.loads(body)
    except RecursionError:
        raise PermanentError(
            "invalid_api_response", "the Download API answered 200 with JSON nested too deep", 200
        ) from None
    except ValueError:
        raise PermanentError(
            "invalid_api_response",
            f"the Download API answered 200 without JSON (Content-Type {content_type[:60]!r})",
            200,
        ) from None
    signed_url = payload.get("signedUrl") if isinstance(payload, dict) else None
    register_signed_url(signed_url)  # before anything can echo or print it
    if not isinstance(signed_url, str) or not signed_url:
        raise PermanentError("invalid_api_response", "the Download API answer has no signedUrl", 200)
    return signed_url
