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

import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.support.loopback_proxy import LoopbackProxy, ProxyRequest

_ANSWER_HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "x-amzn-RequestId": "00000000-0000-4000-8000-000000000000",
}


@dataclass
class _Armed:
    kind: str
    times: int
    code: str
    status: int


class FaultyAwsJsonProxy(LoopbackProxy):
    upstream_timeout_seconds = 30.0

    def __init__(self, upstream_url: str, host: str = "127.0.0.1") -> None:
        super().__init__(upstream_url, host)
        self._armed: dict[str, list[_Armed]] = {}
        self._counts: Counter[str] = Counter()
        self._forwarded: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

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

    def relay(self, request: ProxyRequest) -> None:
        body = request.read_body()
        operation = request.headers.get("X-Amz-Target", "")
        armed = self.take(operation)
        if armed is not None and armed.kind == "failed_entries":
            entries = json.loads(body or b"{}").get("Entries") or [{}]
            failed = [
                {"ErrorCode": armed.code, "ErrorMessage": "injected by the test proxy"} for _ in entries
            ]
            payload = {"FailedEntryCount": len(failed), "Entries": failed}
            request.answer(200, json.dumps(payload).encode(), _ANSWER_HEADERS)
            return
        if armed is not None:
            payload = {"__type": armed.code, "message": "injected by the test proxy"}
            request.answer(armed.status, json.dumps(payload).encode(), _ANSWER_HEADERS)
            return
        self.record(operation, body)
        request.pass_through(body)
