"""The Download API.

``GET /api/v1/download/{referenceId}`` and ``GET /api/v1/upload/api/v1/download/{referenceId}``
    (the doc uses both). Bad/missing/expired/revoked Bearer → 401 ``text/plain`` ``Access Denied``;
    no ``rostering`` scope → 403 ``{"message": "Insufficient scope"}``; unknown or not yet ready →
    404 ``{"message": "Reference ID not found. File not found in pending bucket."}``; ready → 200
    ``{"signedUrl": "..."}``. ``ready_after_calls=N`` makes the first N *authorised* calls for a
    reference answer 404 (faulted or unauthorised calls do not count).
"""

from __future__ import annotations

import re

from tao_emulator.faults import Fault
from tao_emulator.handler import _HandlerBase

DOWNLOAD_PATHS = ("/api/v1/download", "/api/v1/upload/api/v1/download")
NOT_FOUND_MESSAGE = "Reference ID not found. File not found in pending bucket."
_DOWNLOAD_RE = re.compile(r"^/api/v1/(?:upload/api/v1/)?download(?:/(?P<ref>[^/]*))?/?$")


class _DownloadApi(_HandlerBase):
    """``GET /api/v1/download/{referenceId}``: a Bearer-authorised call answering a signed URL."""

    def _bearer_token(self) -> str | None:
        authorization = self.headers.get("Authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return value.strip()

    def _download(self, rolled: tuple[str, Fault] | None) -> None:
        if self.command != "GET":
            self._send_json(405, {"message": "Method Not Allowed"}, {"Allow": "GET"})
            return
        token = self._bearer_token()
        record = None if token is None else self.emulator._token(token)
        if record is None:
            self._access_denied()
            return
        if "rostering" not in record.scopes:
            self._send_json(403, {"message": "Insufficient scope"})
            return
        emulator = self.emulator
        ready = False
        with emulator._lock:
            result = emulator._results.get(self.reference_id or "")
            if result is not None:
                result.authorised_calls += 1
                ready = result.authorised_calls > result.info.ready_after_calls
        if result is None or not ready:
            self._send_json(404, {"message": NOT_FOUND_MESSAGE})
            return
        fault = self._success_fault(rolled)
        if fault is not None and fault.kind == "signed_url":
            self._send_json(200, {"signedUrl": self._fill_placeholders(fault.url)})
            return
        expired = fault is not None and fault.kind == "expired_url"
        expired_session = fault is not None and fault.kind == "expired_session"
        url = emulator.base_url + emulator._signed_path(
            result.info, expired=expired, expired_session=expired_session
        )
        self._send_json(200, {"signedUrl": url})
