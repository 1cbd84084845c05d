"""Imported at start-up by every Python process of the e2e stack (MiniStack, its Lambda workers,
awslambdaric), which get this directory on ``PYTHONPATH``: appends each TCP connect and name lookup
to ``$E2E_AUDIT_LOG``, so the tier can prove that nothing left loopback (``sys.addaudithook`` sees
the C-level calls whoever makes them)."""

import os
import sys

_LOG = os.environ.get("E2E_AUDIT_LOG")


def _write(line: str) -> None:
    descriptor = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # type: ignore[arg-type]
    try:
        os.write(descriptor, f"{os.getpid()} {line}\n".encode("utf-8", "replace"))
    finally:
        os.close(descriptor)


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2:
            _write(f"connect {address[0]} {address[1]}")
    elif event == "socket.getaddrinfo":
        _write(f"lookup {args[0]}")


if _LOG:
    sys.addaudithook(_hook)
