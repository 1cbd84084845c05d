"""A loopback proxy in front of MiniStack's S3 that stalls chosen requests.

``tests/support/faulty_s3_proxy.py`` fails or delays every UploadPart; here one object's writes must
hang while its neighbours' go through, so the stall is chosen by a fragment of the request path
(the object key holds the referenceId). A stalled request is held ``seconds`` and then closed
without an answer -- an S3 call that never completes, not a slow one that lands late behind the
function's back. Everything else is forwarded to the upstream and answered as it answers.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = frozenset(
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]
)


class StallingS3Proxy:
    """``with StallingS3Proxy(upstream) as proxy: proxy.stall("ref-1", seconds=15, times=1)``."""

    def __init__(self, upstream_url: str, host: str = "127.0.0.1") -> None:
        upstream = urlsplit(upstream_url)
        if not ipaddress.ip_address(upstream.hostname or "").is_loopback:
            raise ValueError(f"the proxy forwards to loopback only, not {upstream_url!r}")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the proxy binds to loopback only, not {host!r}")
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self._lock = threading.Lock()
        self._stalls: dict[str, list[float]] = {}  # fragment -> [seconds, remaining times]
        self.stalled: Counter[str] = Counter()
        self._stop = threading.Event()
        self._server = _Server((host, 0), self)
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stall(self, path_fragment: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._stalls[path_fragment] = [seconds, times]

    def _take_stall(self, path: str) -> tuple[str, float] | None:
        with self._lock:
            for fragment, rule in self._stalls.items():
                if fragment in path and rule[1] > 0:
                    rule[1] -= 1
                    self.stalled[fragment] += 1
                    return fragment, rule[0]
        return None

    def start(self) -> StallingS3Proxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StallingS3Proxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], proxy: StallingS3Proxy) -> None:
        super().__init__(address, _Handler)
        self.proxy = proxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client went away (a killed function): nothing to report


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._relay()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _relay(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        stall = proxy._take_stall(self.path)
        if stall is not None:
            deadline = time.monotonic() + stall[1]
            while time.monotonic() < deadline and not proxy._stop.wait(0.1):
                pass
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*proxy.upstream, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.send_response_only(response.status, response.reason)
            head = self.command == "HEAD"  # keeps the upstream's Content-Length of the object
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and (head or name.lower() != "content-length"):
                    self.send_header(name, value)
            if not head:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not head:
                self.wfile.write(payload)
        finally:
            connection.close()
