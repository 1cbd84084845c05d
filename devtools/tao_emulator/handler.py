"""The HTTP plumbing every endpoint of the emulator shares (one request handler class per connection)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import ssl
import struct
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, unquote_plus

from tao_emulator.faults import Fault
from tao_emulator.results import ResultInfo
from tao_emulator.s3_errors import _s3_error, _xml_escape

if TYPE_CHECKING:
    from tao_emulator.server import TaoEmulator, _Server

_MAX_REQUEST_BODY = 10 << 20
ACCESS_DENIED = "Access Denied"
_SIGNATURE_VALUE = re.compile(r"((?:X-Amz-Signature|X-Amz-Security-Token)=)[^&\s]*")


class _ConnectionDropped(Exception):
    """The answer was a TCP reset; nothing else may be written."""


class _HandlerBase(BaseHTTPRequestHandler):
    """What every endpoint's answers go through: body reading, the request log, sending, echoes."""

    protocol_version = "HTTP/1.1"
    server_version = "TaoEmulator/1.0"
    disable_nagle_algorithm = True
    server: _Server

    # per request
    stage: str
    reference_id: str | None
    fault_kind: str | None
    authorization_present: bool
    client_auth: str | None = None
    request_body: bytes

    @property
    def emulator(self) -> TaoEmulator:
        return self.server.emulator

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.emulator._settings.idle_timeout_s)

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, _ConnectionDropped):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the request line would carry X-Amz-Signature into stderr."""

    # ---- plumbing ------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked_body()
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_REQUEST_BODY:
            self.close_connection = True
            raise ValueError("bad or oversized request body")
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_REQUEST_BODY:
                self.close_connection = True
                raise ValueError("oversized request body")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _log_entry(self, status: int | None) -> None:
        host, port = self.client_address[:2]
        self.emulator._record(
            {
                "time": time.time(),
                "stage": self.stage,
                "method": self.command,
                "path": self.path.split("?", 1)[0],
                # The request line as received, byte for byte but for the signature's value.
                "request_line": _SIGNATURE_VALUE.sub(r"\1<redacted>", self.requestline),
                "header_names": sorted({name.lower() for name in self.headers}),
                "reference_id": self.reference_id,
                "status": status,
                "authorization_present": self.authorization_present,
                "client_auth": self.client_auth,
                "trace_header_present": "X-Amzn-Trace-Id" in self.headers,
                "fault": self.fault_kind,
                "client": f"{host}:{port}",
                "host": self.headers.get("Host"),
                "cookie_present": "Cookie" in self.headers,
                "tls": isinstance(self.connection, ssl.SSLSocket),
            }
        )

    def _start(
        self,
        status: int,
        headers: dict[str, str],
        content_length: int | None,
        raw_lengths: list[str] | None = None,
    ) -> None:
        self._log_entry(status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        cookie = self.emulator._settings.set_cookie
        if cookie is not None and self.stage != "admin":
            self.send_header("Set-Cookie", cookie)
        if content_length is not None:
            self.send_header("Content-Length", str(content_length))
        for raw in raw_lengths or []:  # the content_length fault: one header line per value
            self.send_header("Content-Length", raw)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send(
        self, status: int, body: str | bytes, content_type: str | None, headers: dict[str, str] | None = None
    ) -> None:
        if status >= 400 and self.stage in ("token", "download", "storage"):
            body = self._echoed(body, content_type)
        payload = body.encode() if isinstance(body, str) else body
        all_headers: dict[str, str] = {}
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        self._start(status, all_headers, len(payload))
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _echoed(self, body: str | bytes, content_type: str | None) -> str | bytes:
        """``body`` quoting the request's credentials when ``echo_credentials`` is on."""
        emulator = self.emulator
        with emulator._lock:
            if not emulator._settings.echo_credentials:
                return body
            emulator._stats["echoed_errors"] += 1
            form = emulator._stats["echoed_errors"] % 7
        query = self.path.partition("?")[2]
        sent = (
            f"Authorization: {self.headers.get('Authorization', '')}; query: {unquote(query)}; "
            f"body: {unquote_plus(self.request_body.decode('utf-8', errors='replace'))}"
        )
        echo = [
            sent,
            json.dumps(sent)[1:-1],
            quote(sent, safe=""),
            json.dumps(json.dumps(sent))[1:-1],
            json.dumps(sent)[1:-1].replace("/", "\\/"),  # PHP's json_encode
            "".join(ch if ch.isalnum() else f"\\u{ord(ch):04x}" for ch in sent),  # \u00XX everywhere
            "".join(ch if ch.isalnum() else f"&#{ord(ch)};" for ch in sent),  # XML numeric references
        ][form]
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        media_type = (content_type or "").split(";")[0].strip().lower()
        if media_type == "application/json":
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            if isinstance(document, dict):
                document["message"] = f"rejected request ({echo}): {document.get('message', '')}"
                return json.dumps(document)
        if media_type == "application/xml" and "<Message>" in text:
            return text.replace("<Message>", f"<Message>{_xml_escape(echo)} ", 1)
        return f"{text} (request: {echo})"

    def _send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document), "application/json", headers)

    def _send_s3_error(self, status: int, code: str, message: str, **extra: str) -> None:
        headers = {"x-amz-request-id": secrets.token_hex(8).upper()}
        self._send(status, _s3_error(code, message, **extra), "application/xml", headers)

    def _access_denied(self) -> None:
        self._send(401, ACCESS_DENIED, "text/plain")

    def _reset_connection(self) -> None:
        self._log_entry(None)
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()
        raise _ConnectionDropped

    def _success_fault(self, rolled: tuple[str, Fault] | None) -> Fault | None:
        fault = self.emulator._take_fault(self.stage, self.reference_id, phase_success=True)
        if fault is None and rolled is not None:
            self.emulator._count_random(*rolled)
            fault = rolled[1]
        if fault is not None:
            self.fault_kind = fault.kind
        return fault

    def _fill_placeholders(self, template: str) -> str:
        host_port = self.emulator.base_url.split("://", 1)[1]
        text = template.replace("{base_url}", self.emulator.base_url).replace("{host_port}", host_port)
        if "{signed_path}" in text or "{signed_query}" in text:
            result = self.emulator._lookup(self.reference_id or "")
            info = (
                result.info
                if result is not None
                else ResultInfo(self.reference_id or "", 0, "", "", "result.csv", "text/csv", None, 0, None)
            )
            signed = self.emulator._signed_path(info)
            text = text.replace("{signed_path}", signed).replace("{signed_query}", signed.split("?", 1)[1])
        return text
