"""A loopback reverse proxy for AWS JSON-protocol services (EventBridge, Step Functions) that
answers chosen operations with the failures their API references document.

Point one client at it (``AWS_ENDPOINT_URL_EVENTBRIDGE`` / ``AWS_ENDPOINT_URL_SFN``, botocore's
service-specific endpoint variables); every other request
is forwarded to the upstream (moto's server) unchanged. Knobs, each armed for the next ``times``
calls of one operation (``X-Amz-Target``, e.g. ``AWSEvents.PutEvents``):

* ``fail_entries(operation, times, code)``: a PutEvents answer of HTTP 200 with
  ``FailedEntryCount`` = the number of entries and each entry's ``ErrorCode`` = ``code`` (the
  entries are not forwarded: a failed entry is one EventBridge did not ingest);
* ``answer_error(operation, times, code, status)``: the JSON error shape ``{"__type": code,
  "message": ...}`` with ``status``, e.g. ``ThrottlingException``/400, ``InternalException``/500,
  or Step Functions' ``TaskTimedOut``/``InvalidToken``/``TaskDoesNotExist``/400.

``injected()`` counts what was answered by the proxy, per operation and kind; ``forwarded(operation)``
gives the JSON requests that went through to the upstream (what the client really sent).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class _Armed:
    kind: str
    times: int
    code: str
    status: int


class FaultyAwsJsonProxy:
    def __init__(self, upstream_url: str, host: str = "127.0.0.1") -> None:
        upstream = urlsplit(upstream_url)
        if not ipaddress.ip_address(upstream.hostname or "").is_loopback:
            raise ValueError(f"the proxy forwards to loopback only, not {upstream_url!r}")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the proxy binds to loopback only, not {host!r}")
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self._armed: dict[str, list[_Armed]] = {}
        self._counts: Counter[str] = Counter()
        self._forwarded: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_entries(self, operation: str, times: int = 1, code: str = "InternalFailure") -> None:
        self._arm(operation, _Armed("failed_entries", times, code, 200))

    def answer_error(
        self, operation: str, times: int = 1, code: str = "InternalException", status: int = 500
    ) -> None:
        self._arm(operation, _Armed("error", times, code, status))

    def injected(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def forwarded(self, operation: str) -> list[dict[str, Any]]:
        with self._lock:
            return [request for name, request in self._forwarded if name == operation]

    def record(self, operation: str, body: bytes) -> None:
        with self._lock:
            self._forwarded.append((operation, json.loads(body or b"{}")))

    def _arm(self, operation: str, armed: _Armed) -> None:
        with self._lock:
            self._armed.setdefault(operation, []).append(armed)

    def take(self, operation: str) -> _Armed | None:
        with self._lock:
            queue = self._armed.get(operation) or []
            if not queue:
                return None
            armed = queue[0]
            armed.times -= 1
            if armed.times <= 0:
                queue.pop(0)
            self._counts[f"{operation}:{armed.kind}:{armed.code}"] += 1
            return armed

    def __enter__(self) -> FaultyAwsJsonProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        proxy: FaultyAwsJsonProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        operation = self.headers.get("X-Amz-Target", "")
        armed = proxy.take(operation)
        if armed is not None and armed.kind == "failed_entries":
            entries = json.loads(body or b"{}").get("Entries") or [{}]
            failed = [
                {"ErrorCode": armed.code, "ErrorMessage": "injected by the test proxy"} for _ in entries
            ]
            self._answer(200, {"FailedEntryCount": len(failed), "Entries": failed})
            return
        if armed is not None:
            self._answer(armed.status, {"__type": armed.code, "message": "injected by the test proxy"})
            return
        proxy.record(operation, body)
        connection = http.client.HTTPConnection(*proxy.upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            connection.request("POST", self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            connection.close()

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
