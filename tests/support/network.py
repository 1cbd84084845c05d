"""Name resolution, certificates and listeners for tests that must never leave loopback.

* :class:`TableResolver`: the function's injectable resolver (``build_batch_handler(resolver=...)``),
  answering from a dict, so an S3 name can "resolve" to 127.0.0.1 without /etc/hosts or DNS.
* :func:`numeric_only_getaddrinfo`: while active, ``socket.getaddrinfo`` answers numeric hosts
  and ``localhost`` only and raises for any other name, so code that bypassed the injected
  resolver fails loudly instead of sending a DNS query.
* :class:`LocalCA`: a throwaway certificate authority (``cryptography``, installed with moto) that
  issues server certificates for any name, e.g. ``bucket.s3.eu-west-1.amazonaws.com``.
* :class:`ConnectionCounter`: a TCP listener that only counts connections and the bytes sent to
  it (a TLS ClientHello would show as bytes), standing for an internal service.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TableResolver:
    """``(host, port) -> addresses`` from a table; unknown names raise ``socket.gaierror``."""

    def __init__(self, table: dict[str, Sequence[str]] | None = None) -> None:
        self.table: dict[str, list[str]] = {k.lower(): list(v) for k, v in (table or {}).items()}
        self.lookups: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.lookups.append(host)
        try:
            return list(self.table[host.lower().rstrip(".")])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not in the test's table") from None


@contextlib.contextmanager
def numeric_only_getaddrinfo() -> Iterator[list[str]]:
    """Patch ``socket.getaddrinfo`` to refuse names; yields the names something tried to resolve."""
    real = socket.getaddrinfo
    refused: list[str] = []

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode() if isinstance(host, bytes) else host
        if text is None or text == "localhost":
            return real(host, *args, **kwargs)
        try:
            ipaddress.ip_address(str(text).split("%", 1)[0])
        except ValueError:
            refused.append(str(text))
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no DNS for {text!r}") from None
        return real(host, *args, **kwargs)

    socket.getaddrinfo = guarded  # type: ignore[assignment]
    try:
        yield refused
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


class LocalCA:
    """A certificate authority in a temporary directory; ``issue(names)`` writes a server cert."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="test-ca-")
        self.path = Path(self._directory.name)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tao-results test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        self.ca_file = str(self.path / "ca.pem")
        Path(self.ca_file).write_bytes(self._certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, names: Sequence[str]) -> tuple[str, str]:
        """A server certificate for ``names`` (DNS names or IP addresses): (certfile, keyfile)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alternative: list[x509.GeneralName] = []
        for name in names:
            try:
                alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternative.append(x509.DNSName(name))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        stem = self.path / f"server-{x509.random_serial_number()}"
        certfile, keyfile = f"{stem}.pem", f"{stem}.key"
        Path(certfile).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        Path(keyfile).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return certfile, keyfile

    def close(self) -> None:
        self._directory.cleanup()


class ConnectionCounter:
    """A listener that accepts, counts and reads whatever arrives, and never answers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.bytes_received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-counter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            with connection:
                connection.settimeout(0.3)
                with contextlib.suppress(OSError):
                    self.bytes_received += len(connection.recv(65536))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def __enter__(self) -> ConnectionCounter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
