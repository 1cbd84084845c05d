"""Record every address this process tries to reach: name lookups and TCP connects.

Two layers, because pytest-socket (``--allow-hosts``) replaces ``socket.socket.connect`` with a guard
that refuses non-allowed hosts before the kernel sees them:

* a wrapper around whatever ``socket.socket.connect`` currently is (pytest-socket's guard), so an
  attempt is recorded even when the guard refuses it;
* a ``sys.addaudithook`` hook on ``socket.connect`` / ``socket.getaddrinfo``, which sees what reaches
  the C level whoever calls it (``connect_ex``, libraries holding the original method).

Audit hooks cannot be removed, so one is installed per process and only records while a
:class:`ConnectionAudit` is active.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_active: list[ConnectionAudit] = []
_hook_installed = False
_install_lock = threading.Lock()


@dataclass
class ConnectionAudit:
    """What was attempted while active: ``connects`` (host, port) and ``lookups`` (host names)."""

    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_connect(self, address: Any) -> None:
        if isinstance(address, tuple) and len(address) >= 2:
            with self._lock:
                self.connects.append((str(address[0]), int(address[1])))

    def record_lookup(self, host: Any) -> None:
        text = host.decode() if isinstance(host, bytes) else str(host)
        with self._lock:
            self.lookups.append(text)

    def hosts(self) -> set[str]:
        with self._lock:
            return {host for host, _ in self.connects}

    def non_loopback_connects(self) -> list[tuple[str, int]]:
        """Attempts to anything but 127.0.0.1 / ::1 (127.0.0.2 etc. count as foreign here)."""
        with self._lock:
            return [(host, port) for host, port in self.connects if host not in ("127.0.0.1", "::1")]

    def foreign_lookups(self) -> list[str]:
        """Name lookups of anything but loopback literals and ``localhost``."""
        with self._lock:
            return [host for host in self.lookups if not _is_plain_loopback(host)]


def _is_plain_loopback(host: str) -> bool:
    if host in ("localhost", "127.0.0.1", "::1", "", "0"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return str(address) in ("127.0.0.1", "::1")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _active:
        return
    if event == "socket.connect" and len(args) >= 2:
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            for audit in _active:
                audit.record_connect(address)
    elif event == "socket.getaddrinfo" and args:
        for audit in _active:
            audit.record_lookup(args[0])


def _install_hook() -> None:
    global _hook_installed  # noqa: PLW0603 - one hook per process, by design
    with _install_lock:
        if not _hook_installed:
            sys.addaudithook(_hook)
            _hook_installed = True


@contextmanager
def audited_connections() -> Iterator[ConnectionAudit]:
    """Record connection attempts (refused ones included) for the duration of the block."""
    _install_hook()
    audit = ConnectionAudit()
    guarded = socket.socket.connect

    def recording_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            audit.record_connect(address)
        return guarded(self, address)

    socket.socket.connect = recording_connect  # type: ignore[method-assign]
    _active.append(audit)
    try:
        yield audit
    finally:
        _active.remove(audit)
        socket.socket.connect = guarded  # type: ignore[method-assign]


@contextmanager
def silent_listener(host: str) -> Iterator[tuple[int, list[tuple[str, int]]]]:
    """A TCP listener on ``host`` (a loopback address such as 127.0.0.2) that records accepts.

    Yields ``(port, accepted)``; ``accepted`` lists the peers that connected (it should stay empty).
    """
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("listeners are for loopback addresses only")
    server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(16)
    server.settimeout(0.1)
    accepted: list[tuple[str, int]] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                connection, peer = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append((str(peer[0]), int(peer[1])))
            connection.close()

    thread = threading.Thread(target=accept_loop, name=f"listener-{host}", daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1]), accepted
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
