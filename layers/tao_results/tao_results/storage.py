"""Fetching the file behind a signed URL: no Bearer token, allow-list first, no cross-host redirects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from tao_results.deadline import Deadline
from tao_results.errors import (
    STORAGE_OUTCOMES,
    PermanentError,
    TransientError,
    error_for_status,
    parse_retry_after,
)
from tao_results.http import answer_detail, read_bounded, send
from tao_results.url_policy import SignedUrlPolicy, redact_url

MAX_REDIRECTS = 3
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=(\"[^\"\\\r\n]*\"|[\w.+-]+))*$")
_S3_ERROR = re.compile(rb"<Code>([^<]{1,64})</Code>(?:.*?<Message>([^<]{0,200})</Message>)?", re.DOTALL)


class ResultBody:
    """The body of a signed-URL answer, read raw (byte-exact) in caller-sized pieces."""

    def __init__(self, response: requests.Response, url: str) -> None:
        self._response = response
        self.url = url
        self.expected_length = _content_length(response.headers.get("Content-Length"))
        self.content_type = _content_type(response.headers.get("Content-Type"))
        self.content_disposition = response.headers.get("Content-Disposition")
        self.bytes_read = 0

    def read_into(self, buffer: bytearray | memoryview, deadline: Deadline) -> int:
        """Fill ``buffer``; fewer bytes than its size means the body has ended.

        ``read1`` returns what has arrived instead of waiting for the whole chunk, so a storage
        that trickles bytes (never idle long enough for the read timeout) still meets the deadline.
        """
        view = memoryview(buffer)
        filled = 0
        while filled < len(view):
            deadline.check("download")
            try:
                chunk = self._response.raw.read1(min(len(view) - filled, 1 << 20), decode_content=False)
            except Exception as error:  # urllib3/socket errors mid-body are all transient
                raise _interrupted(error) from error
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        self.bytes_read += filled
        return filled

    def verify_length(self) -> None:
        if self.expected_length is not None and self.bytes_read != self.expected_length:
            raise TransientError(
                "length_mismatch",
                f"read {self.bytes_read} bytes but Content-Length said {self.expected_length}",
            )


@dataclass(frozen=True)
class SignedUrlFetcher:
    session: requests.Session
    policy: SignedUrlPolicy
    timeout: tuple[float, float]

    @contextmanager
    def open(self, signed_url: str) -> Iterator[ResultBody]:
        response, url = self._get_following_same_host_redirects(signed_url)
        try:
            yield ResultBody(response, url)
        finally:
            response.close()

    def _get_following_same_host_redirects(self, url: str) -> tuple[requests.Response, str]:
        origin = _origin(self.policy.check(url))
        for _ in range(MAX_REDIRECTS + 1):
            # No Authorization header: S3 rejects a presigned GET that carries one, and the token
            # must never travel to storage. Identity encoding keeps the bytes exactly as stored.
            response = send(
                self.session,
                "GET",
                url,
                headers={"Accept-Encoding": "identity"},
                timeout=self.timeout,
                stream=True,
            )
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                url = self.policy.check(urljoin(url, location))
                if _origin(url) != origin:
                    raise PermanentError(
                        "signed_url_rejected",
                        f"storage redirected to another origin: {redact_url(url)}",
                        response.status_code,
                    )
                continue
            if response.status_code != 200:
                status = response.status_code
                body = read_bounded(response)
                raise error_for_status(
                    status,
                    STORAGE_OUTCOMES,
                    f"storage answered {status}: {_storage_detail(body)}",
                    parse_retry_after(response.headers.get("Retry-After")),
                )
            return response, url
        raise PermanentError("signed_url_rejected", f"more than {MAX_REDIRECTS} redirects")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").rstrip("."), parts.port


def _storage_detail(body: bytes | None) -> str:
    match = _S3_ERROR.search(body or b"")
    if match:
        code, message = match.group(1), match.group(2) or b""
        return f"{code.decode(errors='replace')}: {message.decode(errors='replace')}".strip(": ")
    return answer_detail(body)


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _content_type(value: str | None) -> str:
    if value and len(value) <= 255 and _CONTENT_TYPE.match(value.strip()):
        return value.strip()
    return DEFAULT_CONTENT_TYPE


def _interrupted(error: BaseException) -> TransientError:
    if isinstance(error, requests.Timeout) or "timed out" in str(error).lower():
        return TransientError("timeout", "reading the result timed out")
    return TransientError("download_interrupted", f"the result download broke off: {type(error).__name__}")
