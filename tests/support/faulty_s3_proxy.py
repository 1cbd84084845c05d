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

Only loopback upstreams and a loopback bind address are accepted.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import random
import secrets
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_HOP_BY_HOP = frozenset(
    [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
)
_BLOCK = 1 << 20
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


class FaultyS3Proxy:
    """``with FaultyS3Proxy(upstream_url, part_failure_rate=0.2, seed=1) as proxy: ...``"""

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
        upstream = urlsplit(upstream_url)
        if not ipaddress.ip_address(upstream.hostname or "").is_loopback:
            raise ValueError(f"the proxy forwards to loopback only, not {upstream_url!r}")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the proxy binds to loopback only, not {host!r}")
        if not 0.0 <= part_failure_rate <= 1.0:
            raise ValueError("part_failure_rate must be within [0, 1]")
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.part_failure_rate = part_failure_rate
        self.part_delay_seconds = part_delay_seconds
        unknown = set(stalls or {}) - STALLABLE
        if unknown:
            raise ValueError(f"cannot stall {sorted(unknown)}: one of {sorted(STALLABLE)}")
        self.stalls = dict(stalls or {})
        self.stall_match = stall_match.encode() if stall_match else None
        self._stopping = threading.Event()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._server = _Server((host, 0), self)
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultyS3Proxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="faulty-s3", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # stalled requests hang up now
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultyS3Proxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: FaultyS3Proxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients and upstream going away are expected (timeouts, aborted copies, SIGKILL)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines carry signatures."""

    def do_GET(self) -> None:
        self._relay()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()

    # ---- request side --------------------------------------------------------------------------

    def _body_chunks(self) -> Any:
        """The request body as an iterator of bytes (Content-Length or chunked), or None."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        if length == 0:
            return None
        return self._sized_body(length)

    def _sized_body(self, length: int) -> Any:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, _BLOCK))
            if not chunk:
                raise ConnectionError("client closed mid-body")
            left -= len(chunk)
            yield chunk

    def _chunked_body(self) -> Any:
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield self.rfile.read(size)
            self.rfile.readline(1024)

    def _relay(self) -> None:
        proxy = self.server.proxy
        proxy._count("requests")
        body = self._body_chunks()
        operation = operation_of(self.command, self.path, self.headers.get("X-Amz-Target"))
        if operation in proxy.stalls:
            whole = b"".join(body or ())
            target = self.path.encode() + b" " + whole
            if proxy.stall_match is None or proxy.stall_match in target:
                proxy._count(f"stalled_{operation}")
                proxy._stopping.wait(proxy.stalls[operation])  # not a byte back, then hang up
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = iter([whole]) if whole else None
        if is_upload_part(self.command, self.path):
            proxy._count("upload_parts")
            status = proxy._roll()
            if status is not None:
                for _ in body or ():  # read the whole request before answering, as S3 does
                    pass
                self._answer_error(status)
                return
        try:
            response = self._forward(body)
        except (OSError, http.client.HTTPException):
            proxy._count("upstream_errors")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if proxy.part_delay_seconds > 0 and is_upload_part(self.command, self.path):
            time.sleep(proxy.part_delay_seconds)  # a slow S3: the part is stored, the answer is late
        self._send_back(response)

    def _forward(self, body: Any) -> http.client.HTTPResponse:
        if self._upstream is None:
            host, port = self.server.proxy.upstream
            self._upstream = http.client.HTTPConnection(host, port, timeout=120, blocksize=_BLOCK)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        try:
            self._upstream.request(
                self.command, self.path, body=body, headers=headers, encode_chunked=chunked
            )
            return self._upstream.getresponse()
        except (OSError, http.client.HTTPException):
            self._upstream.close()
            self._upstream = None
            raise

    # ---- response side -------------------------------------------------------------------------

    def _send_back(self, response: http.client.HTTPResponse) -> None:
        length = response.getheader("Content-Length")
        chunked = length is None and self.command != "HEAD" and response.status not in (204, 304)
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := response.read(_BLOCK) if self.command != "HEAD" else b"":
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        response.close()
        if response.will_close:
            self._upstream = None

    def _answer_error(self, status: int) -> None:
        code, message = _ERRORS[status]
        request_id = secrets.token_hex(8).upper()
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amz-request-id", request_id)
        self.end_headers()
        self.wfile.write(payload)
