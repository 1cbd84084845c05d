"""The emulator in process (:class:`TaoEmulator`), its HTTP servers and the request routing.

TLS: ``serve_tls(certfile, keyfile) -> port`` adds a second listener on the same host that serves
the same endpoints over TLS (e.g. with a certificate for an S3 name from a test CA); its
connections count in ``stats()["tls_connections_accepted"]``. Every ``requests_log()`` entry
carries the request's ``host`` header, ``cookie_present`` and ``tls``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import ipaddress
import json
import random
import secrets
import socket
import ssl
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tao_emulator.admin import ADMIN_PREFIX, _AdminEndpoint
from tao_emulator.download_api import _DOWNLOAD_RE, _DownloadApi
from tao_emulator.faults import _SUCCESS_PHASE_KINDS, Fault, _FaultEngine
from tao_emulator.results import DEFAULT, ResultInfo, ResultOptions, _Body, _Result, options_as_keywords
from tao_emulator.s3_errors import _S3_STATUS_ERRORS, _s3_error
from tao_emulator.settings import Settings
from tao_emulator.storage import STORAGE_PREFIX, _StorageEndpoint, _UrlSigner
from tao_emulator.tokens import TOKEN_PATH, _Token, _TokenEndpoint, _TokenStore


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], emulator: TaoEmulator, tls: ssl.SSLContext | None = None
    ) -> None:
        self.emulator = emulator
        self.tls = tls
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        self.emulator._count_connection(tls=self.tls is not None)
        super().process_request(request, client_address)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:  # the handshake happens on the handler's thread, at first read
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # client went away, our own RST, timeouts: all expected
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class TaoEmulator(_FaultEngine, _TokenStore, _UrlSigner):
    """The emulator, in process. Thread-safe; every method can be called while it serves."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **settings: Any) -> None:
        address = ipaddress.ip_address(host)
        if not address.is_loopback:
            raise ValueError(f"the emulator binds to loopback only, not {host!r}")
        self.host = host
        self._requested_port = port
        self._settings = Settings()
        self._settings.update(settings)
        self._lock = threading.RLock()
        self._signing_key = secrets.token_bytes(32)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tls_server: _Server | None = None
        self._stopping = threading.Event()
        self._clear_state()

    # ---- lifecycle -----------------------------------------------------------------------------

    def _clear_state(self) -> None:
        with self._lock:
            self._results: dict[str, _Result] = {}
            self._faults: list[Fault] = []
            self._tokens: dict[str, _Token] = {}
            self._issued_tokens: list[str] = []
            self._issued_signatures: list[str] = []
            self._issued_url_credentials: list[str] = []
            self._log: list[dict[str, Any]] = []
            self._clock_offset = 0.0
            self._rng = random.Random(self._settings.random_fault_seed)
            self._stats: dict[str, Any] = self._empty_stats()

    @staticmethod
    def _empty_stats() -> dict[str, Any]:
        return {
            "token_requests": 0,
            "tokens_issued": 0,
            "download_calls": Counter(),
            "storage_gets": Counter(),
            "connections_accepted": 0,
            "tls_connections_accepted": 0,
            "faults_injected": Counter(),
            "random_faults_injected": Counter(),
            "admin_requests": 0,
            "bytes_served": 0,
            "echoed_errors": 0,
        }

    def start(self) -> TaoEmulator:
        if self._server is not None:
            return self
        server_class = _Server6 if ipaddress.ip_address(self.host).version == 6 else _Server
        self._stopping.clear()
        context = None
        if self._settings.tls_cert_file:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._settings.tls_cert_file, self._settings.tls_key_file or None)
        self._server = server_class((self.host, self._requested_port), self, tls=context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="tao-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_tls(self, certfile: str, keyfile: str) -> int:
        """Serve the same endpoints over TLS on a second port of the same host; return the port."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server_class = _Server6 if ipaddress.ip_address(self.host).version == 6 else _Server
        self._tls_server = server_class((self.host, 0), self, tls=context)
        threading.Thread(
            target=self._tls_server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="tao-emulator-tls",
            daemon=True,
        ).start()
        return int(self._tls_server.server_address[1])

    def stop(self) -> None:
        tls_server, self._tls_server = self._tls_server, None
        if tls_server is not None:
            tls_server.shutdown()
            tls_server.server_close()
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with server.sockets_lock:
            for sock in list(server.open_sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TaoEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._settings.tls_cert_file else "http"
        return f"{scheme}://{host}:{self.port}"

    # ---- admin API -----------------------------------------------------------------------------

    @options_as_keywords(ResultOptions)
    def add_result(self, reference_id: str, options: ResultOptions) -> ResultInfo:
        """Register (or replace) a result (keyword arguments: :class:`ResultOptions`); computes its
        sha256 once, streaming."""
        if options.content is not None and options.size is not None and options.size != len(options.content):
            raise ValueError("size and len(content) differ")
        if options.header_charset not in ("latin-1", "utf-8"):
            raise ValueError("header_charset must be 'latin-1' or 'utf-8'")
        seed = self._settings.content_seed if options.seed is None else options.seed
        body = _Body(reference_id, options.size, options.content, seed)
        sha256 = body.sha256()  # outside the lock: may take seconds for GiB results
        disposition = options.content_disposition
        if disposition is DEFAULT:
            disposition = f'attachment; filename="{options.filename}"'
        info = ResultInfo(
            reference_id=reference_id,
            size=body.size,
            sha256=sha256,
            etag=f'"{sha256[:32]}"',
            filename=options.filename,
            content_type=options.content_type,
            content_disposition=disposition,
            ready_after_calls=options.ready_after_calls,
            seed=None if options.content is not None else seed,
            content_encoding=options.content_encoding,
            header_charset=options.header_charset,
        )
        with self._lock:
            self._results[reference_id] = _Result(info=info, body=body)
        return info

    def result_info(self, reference_id: str) -> ResultInfo | None:
        with self._lock:
            result = self._results.get(reference_id)
            return None if result is None else result.info

    def remove_result(self, reference_id: str) -> None:
        with self._lock:
            self._results.pop(reference_id, None)

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(copy.deepcopy(fault))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        """The faults still armed (``times`` is what is left)."""
        with self._lock:
            return copy.deepcopy(self._faults)

    def configure(self, **settings: Any) -> None:
        with self._lock:
            self._settings.update(settings)
            if "random_fault_seed" in settings:
                self._rng = random.Random(self._settings.random_fault_seed)

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return dataclasses.asdict(self._settings)

    def rotate_secret(self, new_secret: str) -> None:
        self.configure(client_secret=new_secret)

    def revoke_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    def set_scopes(self, scopes: list[str]) -> None:
        self.configure(scopes=list(scopes))

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (token and signed URL expiry) without sleeping."""
        with self._lock:
            self._clock_offset += seconds

    def reset(self) -> None:
        self._clear_state()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                key: dict(value) if isinstance(value, Counter) else value
                for key, value in self._stats.items()
            }

    def requests_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._issued_tokens)

    def issued_signatures(self) -> list[str]:
        with self._lock:
            return list(self._issued_signatures)

    def issued_url_credentials(self) -> list[str]:
        with self._lock:
            return list(self._issued_url_credentials)


class _Handler(_TokenEndpoint, _DownloadApi, _StorageEndpoint, _AdminEndpoint):
    """One connection: routes each request to its endpoint, after the faults that fire first."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    # ---- routing -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        self.stage = "other"
        self.reference_id = None
        self.fault_kind = None
        self.authorization_present = "Authorization" in self.headers
        self.client_auth = None
        self.request_body = b""
        try:
            body = self._read_body()
            self.request_body = body
        except ValueError:
            self._send_json(413, {"message": "Request body too large or malformed"})
            return
        if path.startswith(ADMIN_PREFIX):
            self.stage = "admin"
            self._admin(path[len(ADMIN_PREFIX) :], body)
            return
        download = _DOWNLOAD_RE.match(path)
        if path == TOKEN_PATH:
            self.stage = "token"
            self._tao_stage(lambda fault: self._token(body))
        elif download is not None:
            self.stage = "download"
            self.reference_id = unquote(download.group("ref") or "")
            self._tao_stage(self._download)
        elif path.startswith(STORAGE_PREFIX):
            self.stage = "storage"
            parts = path[len(STORAGE_PREFIX) :].split("/")
            self.reference_id = unquote(parts[0])
            self._tao_stage(lambda fault: self._storage(path, parts, fault))
        else:
            self._send_json(404, {"message": "Not Found"})

    def _tao_stage(self, answer: Callable[[tuple[str, Fault] | None], None]) -> None:
        emulator = self.emulator
        if self.stage == "token":
            emulator._count("token_requests")
        elif self.stage == "download":
            emulator._count("download_calls", self.reference_id or "")
        else:
            emulator._count("storage_gets", self.reference_id or "")
        emulator._sleep(emulator._settings.latency_ms)
        rolled = emulator._roll_random_fault(self.stage)
        fault = emulator._take_fault(self.stage, self.reference_id, phase_success=False)
        if fault is None and rolled is not None and rolled[1].kind not in _SUCCESS_PHASE_KINDS:
            emulator._count_random(*rolled)
            fault, rolled = rolled[1], None
        if fault is not None:
            self.fault_kind = fault.kind
            if self._apply_early_fault(fault):
                return
        answer(rolled)

    def _apply_early_fault(self, fault: Fault) -> bool:
        """Apply a fault that fires before normal processing; True when the answer is sent."""
        if fault.kind == "delay":
            self.emulator._sleep(fault.delay_ms)
            return False
        if fault.kind == "reset":
            self._reset_connection()
        if fault.kind == "revoke":
            token = self._bearer_token()
            if token is not None:
                self.emulator._revoke(token)
            self._access_denied()
            return True
        if fault.kind == "redirect":
            location = self._fill_placeholders(fault.location)
            status = fault.status if fault.status is not None and 300 <= fault.status < 400 else 302
            self._send(status, b"", None, {"Location": location, **fault.headers})
            return True
        if fault.kind == "s3_redirect":
            self._s3_redirect(fault)
            return True
        # status
        status = fault.status if fault.status is not None else 500
        body = fault.body
        content_type = fault.content_type
        if self.stage == "storage":
            if body is None:
                code, message = _S3_STATUS_ERRORS.get(status, _S3_STATUS_ERRORS[500])
                body = _s3_error(fault.code or code, message if fault.message is None else fault.message)
            content_type = content_type or "application/xml"
        else:
            if body is None:
                body = json.dumps({"message": f"Emulated error {status}"})
            content_type = content_type or "application/json"
        self._send(status, body, content_type, fault.headers)
        return True
