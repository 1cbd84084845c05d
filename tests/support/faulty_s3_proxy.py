"""A loopback reverse proxy in front of moto's server that makes S3 fail some part uploads.

Point the function's S3 client at it (``AWS_ENDPOINT_URL_S3=proxy.endpoint_url``) and every request
is forwarded, streamed both ways, to the upstream (moto) -- except that a seeded fraction of
``PUT ...?partNumber=N&uploadId=...`` requests (UploadPart) is answered with an S3 XML 500 or 503
after the request body was read. botocore's own retries absorb many of these; the proxy counts
what it injected so a test can report it. ``part_delay_seconds`` delays every UploadPart's answer
(after the body was stored upstream) to make copies long enough to interrupt.

``stalls={"PutObject": 30.0, ...}`` makes an endpoint that stops answering: a request of that
operation is read whole, then the proxy waits that long without a byte and hangs up, never
forwarding it (so a stalled AbortMultipartUpload leaves the upload open). ``stall_match`` limits the
stall to requests whose path or body contain it (a referenceId: S3 keys and dead letters carry it).
Operations are S3's, told apart by method and query (PutObject, UploadPart, CreateMultipartUpload,
CompleteMultipartUpload, AbortMultipartUpload), or the JSON protocol's ``X-Amz-Target`` for the
other services moto serves on the same port (SQS SendMessage and ChangeMessageVisibility, Secrets
Manager GetSecretValue): point ``AWS_ENDPOINT_URL_SQS`` / ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` here too.

Only loopback upstreams and a loopback bind address are accepted (:mod:`tests.support.loopback_proxy`).
"""

from __future__ import annotations

import http.client
import random
import secrets
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback_proxy import LoopbackProxy, ProxyRequest

_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


STALLABLE = frozenset(
    [
        "PutObject",
        "UploadPart",
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "SendMessage",
        "ChangeMessageVisibility",
        "GetQueueAttributes",
        "GetSecretValue",
    ]
)


def is_upload_part(method: str, target: str) -> bool:
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    return method == "PUT" and "partNumber" in query and "uploadId" in query


def operation_of(method: str, target: str, amz_target: str | None) -> str:
    """The API operation of a request: JSON protocol's X-Amz-Target, else S3's REST shape."""
    if amz_target:
        return amz_target.rsplit(".", 1)[-1]
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    has_key = len([segment for segment in parts.path.split("/") if segment]) >= 2
    if method == "PUT" and has_key:
        return "UploadPart" if "partNumber" in query and "uploadId" in query else "PutObject"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    return f"{method} {parts.path}"


class FaultyS3Proxy(LoopbackProxy):
    """``with FaultyS3Proxy(upstream_url, part_failure_rate=0.2, seed=1) as proxy: ...``"""

    upstream_timeout_seconds = 120.0

    def __init__(
        self,
        upstream_url: str,
        *,
        part_failure_rate: float = 0.0,
        seed: int = 0,
        part_delay_seconds: float = 0.0,
        stalls: dict[str, float] | None = None,
        stall_match: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if not 0.0 <= part_failure_rate <= 1.0:
            raise ValueError("part_failure_rate must be within [0, 1]")
        unknown = set(stalls or {}) - STALLABLE
        if unknown:
            raise ValueError(f"cannot stall {sorted(unknown)}: one of {sorted(STALLABLE)}")
        super().__init__(upstream_url, host)
        self.part_failure_rate = part_failure_rate
        self.part_delay_seconds = part_delay_seconds
        self.stalls = dict(stalls or {})
        self.stall_match = stall_match.encode() if stall_match else None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    # ---- what happened -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """``requests``, ``upload_parts``, ``injected_500``, ``injected_503``, ``upstream_errors``,
        ``stalled_<Operation>``."""
        with self._lock:
            return dict(self._counts)

    @property
    def injected(self) -> int:
        counts = self.counts()
        return counts.get("injected_500", 0) + counts.get("injected_503", 0)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _roll(self) -> int | None:
        """The status to inject for one UploadPart, or None to forward it."""
        with self._lock:
            if self.part_failure_rate <= 0 or self._rng.random() >= self.part_failure_rate:
                return None
            status = self._rng.choice([500, 503])
            self._counts[f"injected_{status}"] += 1
            return status

    # ---- one request ---------------------------------------------------------------------------

    def relay(self, request: ProxyRequest) -> None:
        self._count("requests")
        body = request.body_chunks()
        operation = operation_of(request.command, request.path, request.headers.get("X-Amz-Target"))
        if operation in self.stalls:
            whole = b"".join(body or ())
            target = request.path.encode() + b" " + whole
            if self.stall_match is None or self.stall_match in target:
                self._count(f"stalled_{operation}")
                self.hold(self.stalls[operation])  # not a byte back, then hang up
                request.hang_up()
                return
            body = iter([whole]) if whole else None
        upload_part = is_upload_part(request.command, request.path)
        if upload_part:
            self._count("upload_parts")
            status = self._roll()
            if status is not None:
                for _ in body or ():  # read the whole request before answering, as S3 does
                    pass
                _answer_error(request, status)
                return
        try:
            response = request.forward(body)
        except (OSError, http.client.HTTPException):
            self._count("upstream_errors")
            request.hang_up()
            return
        if upload_part and self.part_delay_seconds > 0:
            time.sleep(self.part_delay_seconds)  # a slow S3: the part is stored, the answer is late
        request.send_back(response)


def _answer_error(request: ProxyRequest, status: int) -> None:
    code, message = _ERRORS[status]
    request_id = secrets.token_hex(8).upper()
    payload = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()
    request.answer(status, payload, {"Content-Type": "application/xml", "x-amz-request-id": request_id})
