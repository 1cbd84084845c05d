"""A stand-in for the X-Ray daemon: a UDP socket on loopback that keeps every segment it receives.

The X-Ray SDK sends each (sub)segment as one datagram, ``{"format": "json", "version": 1}``, a
newline, then the segment document (X-Ray "Sending segment documents to the daemon"). Point the
function at it with ``AWS_XRAY_DAEMON_ADDRESS=<address>``.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

_MAX_DATAGRAM = 65_535


class XRayDaemon:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, 0))
        self._socket.settimeout(0.2)
        self._lock = threading.Lock()
        self._datagrams: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="xray-daemon", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"{host}:{port}"

    def __enter__(self) -> XRayDaemon:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._socket.recv(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._datagrams.append(data.decode("utf-8", errors="replace"))

    def datagrams(self) -> list[str]:
        """Every datagram received, as text (header line included)."""
        with self._lock:
            return list(self._datagrams)

    def segments(self) -> list[dict[str, Any]]:
        """The segment documents received (a datagram that is not header + JSON is an error)."""
        documents = []
        for datagram in self.datagrams():
            header, _, body = datagram.partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}, header
            documents.append(json.loads(body))
        return documents
