"""Fetching the file behind a signed URL: exactly as issued, allow-list first, no Bearer token.

The URL's path and query go on the wire byte for byte (see :mod:`tao_results.literal_http`).
Redirects (301, 302, 303, 307, 308) are followed to any host the allow-list accepts, at most
:data:`MAX_REDIRECTS` hops, each hop checked before any connection; every hop is a fresh GET that
carries nothing of the previous request or answer. S3's ``301 PermanentRedirect`` has no
``Location``: its XML ``<Endpoint>`` names the host to use (S3 User Guide, "Request routing";
the ``x-amz-bucket-region`` header only names the region, which a presigned URL cannot change).
Error answers are classified by their S3 error code first (``classification.STORAGE_ERROR_CODES``).
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from tao_results.classification import (
    INVALID_STORAGE_RESPONSE,
    TOO_MANY_REDIRECTS,
    UNUSABLE_REDIRECT,
    error_for_storage,
)
from tao_results.deadline import Deadline
from tao_results.errors import PermanentError, ProcessingError, TransientError
from tao_results.headers import content_encoding, content_length, header_text, media_type, parse_retry_after
from tao_results.http_sessions import answer_detail, read_bounded
from tao_results.literal_http import request_target
from tao_results.naming import result_filename
from tao_results.redaction import redact_url, register_signed_url, scrub_and_cut
from tao_results.url_policy import SignedUrlPolicy

_ETAG = re.compile(r"[\x21-\x7e]{1,256}")
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The only headers a storage request carries. No Authorization: S3 rejects a presigned GET that has
# one, and the token must never travel to storage. Identity keeps the bytes exactly as stored.
STORAGE_REQUEST_HEADERS = {"Accept-Encoding": "identity"}

_S3_ERROR_CODE = re.compile(rb"<Code>([^<]{1,64})</Code>")
_S3_ERROR_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
MAX_S3_MESSAGE_CHARACTERS = 200
_S3_ENDPOINT = re.compile(rb"<Endpoint>([^<]{1,300})</Endpoint>")
# host[:port] as S3 writes it in <Endpoint>: a DNS name or an IPv4 address, optional port.
_ENDPOINT_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")
_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class ResultBody:
    """The body of a signed-URL answer, read raw (byte-exact) in caller-sized pieces.

    ``content_type``/``content_encoding`` are the answer's, checked (see :mod:`tao_results.headers`);
    ``content_disposition`` is the header as its sender wrote it (raw UTF-8 read as UTF-8) and
    ``filename`` the object's sanitised filename (see :func:`tao_results.naming.result_filename`).
    Raises ``PermanentError(invalid_storage_response)`` for a malformed ``Content-Length``.
    """

    def __init__(self, response: requests.Response, url: str) -> None:
        self._response = response
        self.url = url
        self.expected_length = content_length(response.headers.get("Content-Length"))
        self.content_type = media_type(response.headers.get("Content-Type"))
        self.content_encoding = content_encoding(response.headers.get("Content-Encoding"))
        self.content_disposition = header_text(response.headers.get("Content-Disposition"))
        self.filename = result_filename(self.content_disposition, url)
        # Kept on the object (see object_attributes) so a redelivery can tell it is already stored.
        self.etag = _metadata_safe_etag(response.headers.get("ETag"))
        self.bytes_read = 0

    def read_into(self, buffer: bytearray | memoryview, deadline: Deadline) -> int:
        """Fill ``buffer``; fewer bytes than its size means the body has ended.

        ``read1`` returns what has arrived instead of waiting for the whole chunk, so a storage
        that trickles bytes (never idle long enough for the read timeout) still meets the deadline.
        The bytes are never decoded: a ``gzip`` answer is stored as the gzip it is.
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
    """GETs signed URLs over ``session``: one from :func:`tao_results.http_sessions.new_storage_session`,
    whose adapter checks every connection's addresses and sends the target byte for byte."""

    session: requests.Session
    policy: SignedUrlPolicy
    timeout: tuple[float, float]

    @contextmanager
    def open(self, signed_url: str) -> Iterator[ResultBody]:
        response, url = self._get_following_redirects(signed_url)
        try:
            yield ResultBody(response, url)
        finally:
            response.close()

    def _get_following_redirects(self, signed_url: str) -> tuple[requests.Response, str]:
        url = self.policy.check(signed_url)
        for hop in range(MAX_REDIRECTS + 1):
            response = self._get(url)
            status = response.status_code
            if status in REDIRECT_STATUSES:
                if hop == MAX_REDIRECTS:
                    response.close()
                    raise PermanentError(
                        TOO_MANY_REDIRECTS.reason,
                        f"storage redirected more than {MAX_REDIRECTS} times (last: {redact_url(url)})",
                        status,
                    )
                target = _redirect_target(response, url)
                register_signed_url(target)  # a new signed URL arrives: its credentials are secrets too
                url = self.policy.check(target)
                continue
            if status != 200:
                raise _failure(response)
            return response, url
        raise AssertionError("unreachable: the loop returns or raises")

    def _get(self, url: str) -> requests.Response:
        """One fresh GET of ``url`` with the path and query exactly as written in it."""
        try:
            prepared = requests.Request("GET", url, headers=dict(STORAGE_REQUEST_HEADERS)).prepare()
        except (requests.RequestException, ValueError) as error:
            raise PermanentError(
                "signed_url_rejected", f"the signed URL cannot be sent: {redact_url(url)}"
            ) from error
        prepared.url = url  # undo requests' re-quoting: the adapter sends this string's target
        try:
            return self.session.send(prepared, allow_redirects=False, stream=True, timeout=self.timeout)
        except requests.exceptions.InvalidHeader as error:
            # urllib3 refuses e.g. "Content-Length: 5, 7" before we see the answer.
            raise PermanentError(
                INVALID_STORAGE_RESPONSE.reason, f"storage answered an invalid header: {str(error)[:120]}"
            ) from error
        except requests.Timeout as error:
            raise TransientError("timeout", f"GET {redact_url(url)} timed out") from error
        except requests.ConnectionError as error:
            raise TransientError("connection_error", f"GET {redact_url(url)}: connection failed") from error
        except requests.RequestException as error:
            raise TransientError("http_error", f"GET {redact_url(url)}: {type(error).__name__}") from error
        except (http.client.InvalidURL, ValueError) as error:
            raise PermanentError(
                "signed_url_rejected", f"the signed URL cannot be sent: {redact_url(url)}"
            ) from error


def _redirect_target(response: requests.Response, url: str) -> str:
    """Where a redirect sends us: its ``Location``, else (S3's 301) the ``<Endpoint>`` host."""
    status = response.status_code
    location = response.headers.get("Location")
    if location:
        response.close()
        return resolve_location(url, location)
    body = read_bounded(response) or b""
    endpoint = _xml_field(_S3_ENDPOINT, body)
    if endpoint and _ENDPOINT_HOST.fullmatch(endpoint):
        return f"{urlsplit(url).scheme}://{endpoint}{request_target(url)}"
    region = response.headers.get("x-amz-bucket-region", "")
    hint = f" (x-amz-bucket-region {region[:30]!r})" if region else ""
    raise PermanentError(
        UNUSABLE_REDIRECT.reason,
        f"storage answered {status} {_xml_field(_S3_ERROR_CODE, body) or ''} without a usable "
        f"Location or <Endpoint> to follow{hint}",
        status,
    )


def resolve_location(base: str, location: str) -> str:
    """The URL a ``Location`` names (RFC 9110 §10.2.2), relative to ``base``; absolute ones as sent.

    Non-ASCII bytes (http.client reads header bytes as Latin-1) are percent-encoded, as browsers do.
    """
    location = "".join(ch if ord(ch) < 0x80 else f"%{ord(ch):02X}" for ch in location.strip(" \t"))
    if _ABSOLUTE_URL.match(location):
        return location
    return urljoin(base, location)


def _failure(response: requests.Response) -> ProcessingError:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    body = read_bounded(response)
    code = _xml_field(_S3_ERROR_CODE, body)
    message = _xml_field(_S3_ERROR_MESSAGE, body)
    if code:
        # Scrubbed before it is cut: a cut could split an echoed credential past recognition.
        detail = f"{code}: {scrub_and_cut(message or '', MAX_S3_MESSAGE_CHARACTERS)}".strip(": ")
    elif status < 400:
        # A 2xx/3xx body from the storage is (part of) the result: student data, never a detail.
        detail = f"{len(body or b'')} bytes of body, not quoted"
    else:
        detail = answer_detail(body)
    return error_for_storage(status, code, message, f"storage answered {status}: {detail}", retry_after)


def _xml_field(pattern: re.Pattern[bytes], body: bytes | None) -> str | None:
    match = pattern.search(body or b"")
    return match.group(1).decode("utf-8", errors="replace").strip() if match else None


def _interrupted(error: BaseException) -> TransientError:
    if isinstance(error, requests.Timeout) or "timed out" in str(error).lower():
        return TransientError("timeout", "reading the result timed out")
    return TransientError("download_interrupted", f"the result download broke off: {type(error).__name__}")


def _metadata_safe_etag(value: str | None) -> str | None:
    """The ETag if it can travel as S3 user metadata (printable US-ASCII, bounded), else None: an
    odd ETag only costs the redelivery check, never the upload."""
    if value is None or not _ETAG.fullmatch(value):
        return None
    return value
