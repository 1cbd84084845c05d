"""The scaffolding shared by the test proxies: a loopback reverse proxy that forwards each request
to one loopback upstream unless a subclass answers it itself.

A subclass overrides :meth:`LoopbackProxy.relay`, which gets the :class:`ProxyRequest` being
served and decides: pass it through (:meth:`ProxyRequest.pass_through`), answer it
(:meth:`ProxyRequest.answer`) or hold it and hang up (:meth:`LoopbackProxy.hold`,
:meth:`ProxyRequest.hang_up`). Bodies stream both ways in blocks of ``BLOCK`` bytes; a request body
comes as ``Content-Length`` or chunked (RFC 9112 section 7.1) and is re-framed by ``http.client``,
a response without ``Content-Length`` is sent back chunked. Hop-by-hop fields (RFC 9110 section
7.6.1: the fixed list and whatever ``Connection`` names) are not forwarded either way.

Only a loopback upstream and a loopback bind address are accepted, so no test packet leaves the
machine even when a test points the proxy somewhere wrong. ``wsgiref.util.is_hop_by_hop`` was not
used: it spells RFC 2616's ``Trailers`` (the field is ``Trailer``) and lacks ``Proxy-Connection``.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

BLOCK = 1 << 20
HOP_BY_HOP = frozenset(
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

Body = bytes | Iterable[bytes] | None


def end_to_end(headers: Message) -> list[tuple[str, str]]:
    """``headers`` without the hop-by-hop fields, including those its ``Connection`` names."""
    named = {
        option.strip().lower() for value in headers.get_all("Connection") or [] for option in value.split(",")
    }
    return [(name, value) for name, value in headers.items() if name.lower() not in HOP_BY_HOP | named]


class LoopbackProxy:
    """``with SomeProxy(upstream_url) as proxy: client(endpoint_url=proxy.endpoint_url)``.

    ``upstream_url`` is ``http://<loopback address>:<port>``; ``host`` is the loopback address to
    bind (an ephemeral port). Raises ``ValueError`` for anything off loopback.
    """

    upstream_timeout_seconds: float = 60.0

    def __init__(self, upstream_url: str, host: str = "127.0.0.1") -> None:
        upstream = urlsplit(upstream_url)
        if not ipaddress.ip_address(upstream.hostname or "").is_loopback:
            raise ValueError(f"the proxy forwards to loopback only, not {upstream_url!r}")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the proxy binds to loopback only, not {host!r}")
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self._stopping = threading.Event()
        self._server = _Server((host, 0), self)
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # held requests hang up now
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def hold(self, seconds: float) -> None:
        """Wait ``seconds`` without a byte back, or until the proxy stops."""
        self._stopping.wait(seconds)

    def relay(self, request: ProxyRequest) -> None:
        """Serve one request; this base forwards it unchanged."""
        request.pass_through(request.body_chunks())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: LoopbackProxy) -> None:
        self.proxy = proxy
        super().__init__(address, ProxyRequest)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients and upstream going away are expected (timeouts, aborted copies, SIGKILL)."""


class ProxyRequest(BaseHTTPRequestHandler):
    """One client connection; ``command``, ``path`` and ``headers`` are the current request's.

    It keeps one upstream connection for as long as the client keeps its own.
    """

    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines carry signatures."""

    def do_GET(self) -> None:
        self.server.proxy.relay(self)

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()

    # ---- request side --------------------------------------------------------------------------

    def body_chunks(self) -> Iterator[bytes] | None:
        """The request body as it arrives (``Content-Length`` or chunked), or None if it has none."""
        if self.headers.get("Transfer-Encoding", "").lower().rsplit(",", 1)[-1].strip() == "chunked":
            return self._chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self._sized_body(length) if length else None

    def read_body(self) -> bytes:
        """The whole request body."""
        return b"".join(self.body_chunks() or ())

    def _sized_body(self, length: int) -> Iterator[bytes]:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, BLOCK))
            if not chunk:
                raise ConnectionError("client closed mid-body")
            left -= len(chunk)
            yield chunk

    def _chunked_body(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields: not forwarded
                return
            yield self.rfile.read(size)
            self.rfile.readline(1024)

    # ---- upstream ------------------------------------------------------------------------------

    def forward(self, body: Body) -> http.client.HTTPResponse:
        """Send this request upstream with ``body``; its response, not yet read.

        A body without ``Content-Length`` goes chunked (``http.client`` decides). Raises
        ``OSError``/``http.client.HTTPException`` when the upstream fails (its connection is dropped).
        """
        if self._upstream is None:
            host, port = self.server.proxy.upstream
            timeout = self.server.proxy.upstream_timeout_seconds
            self._upstream = http.client.HTTPConnection(host, port, timeout=timeout, blocksize=BLOCK)
        try:
            self._upstream.request(self.command, self.path, body=body, headers=dict(end_to_end(self.headers)))
            return self._upstream.getresponse()
        except (OSError, http.client.HTTPException):
            self._upstream.close()
            self._upstream = None
            raise

    def pass_through(self, body: Body) -> bool:
        """Forward and send the upstream's answer back; False (the client hung up on) if it failed."""
        try:
            response = self.forward(body)
        except (OSError, http.client.HTTPException):
            self.hang_up()
            return False
        self.send_back(response)
        return True

    # ---- response side -------------------------------------------------------------------------

    def send_back(self, response: http.client.HTTPResponse) -> None:
        """Stream ``response`` to the client, chunked if it has no ``Content-Length``."""
        head = self.command == "HEAD"
        chunked = (
            response.getheader("Content-Length") is None and not head and response.status not in (204, 304)
        )
        self.send_response_only(response.status, response.reason)
        for name, value in end_to_end(response.msg):
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := b"" if head else response.read(BLOCK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        response.close()
        if response.will_close:
            self._upstream = None

    def answer(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        """Answer from the proxy itself: ``status``, ``headers`` and ``payload`` (its length added)."""
        self.send_response_only(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def hang_up(self) -> None:
        """Close the client's connection without (more of) an answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
