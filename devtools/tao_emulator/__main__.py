"""``python -m tao_emulator``: serve the emulator until SIGTERM/SIGINT (``--help`` for the options)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

import tao_emulator
from tao_emulator.server import TaoEmulator
from tao_emulator.settings import _Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tao_emulator", description=(tao_emulator.__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--client-id", default=_Settings.client_id)
    parser.add_argument("--client-secret", default=_Settings.client_secret)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--token-expires-in", type=int, default=_Settings.token_expires_in)
    parser.add_argument("--signed-url-ttl", type=int, default=_Settings.signed_url_ttl)
    parser.add_argument("--tls-cert-file", default="", help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key-file", default="", help="its PEM private key")
    args = parser.parse_args(argv)
    emulator = TaoEmulator(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        latency_ms=args.latency_ms,
        token_expires_in=args.token_expires_in,
        signed_url_ttl=args.signed_url_ttl,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
    ).start()
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sys.stdout.write(json.dumps({"base_url": emulator.base_url}) + "\n")
    sys.stdout.flush()
    while not stop.wait(0.2):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
