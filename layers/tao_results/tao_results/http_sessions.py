"""HTTP plumbing: sessions (the storage one address-checked), requests errors → families, bounded reads."""

from __future__ import annotations

import http.cookiejar
import ipaddress
import json
import socket
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from tao_results.deadline import current_deadline
from tao_results.errors import ProcessingError, TransientError
from tao_results.literal_http import LiteralTargetAdapter, LiteralTargetHTTPSPool, LiteralTargetPool
from tao_results.redaction import SECRETS, redact_url
from tao_results.url_policy import IPAddress, SignedUrlPolicy

MAX_API_ANSWER_BYTES = 64 * 1024
MAX_DETAIL_CHARACTERS = 300

Resolver = Callable[[str, int], Sequence[str]]
"""``(host name, port) -> addresses`` (text, IPv4 or IPv6); raises ``socket.gaierror`` on failure."""


def system_resolver(host: str, port: int) -> list[str]:
    """The platform's resolver (``getaddrinfo``, TCP), addresses in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class RefuseAllCookies(http.cookiejar.CookiePolicy):
    """Neither session keeps cookies: an API's or a storage's ``Set-Cookie`` never comes back.

    The function is a client of stateless APIs (Bearer token, presigned URL); a cookie could only
    carry one answer's state into another request, possibly to another host.
    """

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: urllib.request.Request) -> bool:
        return False

    def path_return_ok(self, path: str, request: urllib.request.Request) -> bool:
        return False


def new_session(pool_size: int) -> requests.Session:
    """A keep-alive session that ignores the environment (no .netrc credentials, no proxies)
    and keeps no cookies."""
    session = _bare_session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def new_storage_session(
    pool_size: int,
    policy: SignedUrlPolicy,
    resolver: Resolver = system_resolver,
    verify: bool | str = True,
) -> requests.Session:
    """Like :func:`new_session`, but every new connection is admitted by ``policy`` first.

    Each connection resolves its host through ``resolver``, refuses (``PermanentError``
    ``signed_url_rejected``) unless :meth:`SignedUrlPolicy.admit_connection` admits every address,
    then connects to one of exactly those addresses; TLS SNI, certificate verification and the
    ``Host`` header keep the name. ``verify`` is requests' own (a CA bundle path in tests).
    """
    session = _bare_session()
    session.verify = verify
    adapter = _AddressCheckingAdapter(
        _ConnectionGuard(policy, resolver), pool_connections=4, pool_maxsize=pool_size, max_retries=0
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _bare_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(RefuseAllCookies())
    return session


class _ConnectionGuard:
    """Resolve, admit, connect: the part of a connection the policy must see."""

    def __init__(self, policy: SignedUrlPolicy, resolver: Resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    def open_socket(self, connection: HTTPConnection) -> socket.socket:
        host, port = connection.host, int(connection.port or 443)
        try:
            addresses = self._resolve(host, port)
        except OSError as error:
            raise NameResolutionError(host, connection, error) from error  # type: ignore[arg-type]
        self.policy.admit_connection(host, port, addresses)
        last_error: OSError = OSError(f"no address for {host!r}")
        for address in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in connection.socket_options or ():
                    sock.setsockopt(*option)
                timeout: object = connection.timeout
                if timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(connection.timeout)
                if connection.source_address:
                    sock.bind(connection.source_address)
                sock.connect((str(address), port))
                return sock
            except TimeoutError as error:
                sock.close()
                raise ConnectTimeoutError(
                    connection, f"Connection to {host} timed out. (connect timeout={connection.timeout})"
                ) from error
            except OSError as error:
                sock.close()
                last_error = error
        raise NewConnectionError(connection, f"Failed to establish a new connection: {last_error}")

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]  # a literal is its own answer
        except ValueError:
            pass
        answers = self.resolver(host, port)
        try:
            addresses = [ipaddress.ip_address(answer) for answer in answers]
        except ValueError as error:
            raise socket.gaierror(f"the resolver answered a non-address for {host!r}") from error
        if not addresses:
            raise socket.gaierror(f"{host!r} resolved to no address")
        return addresses


class _GuardedHTTPConnection(HTTPConnection):
    guard: ClassVar[_ConnectionGuard]

    def _new_conn(self) -> socket.socket:
        return self.guard.open_socket(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    guard: ClassVar[_ConnectionGuard]

    def _new_conn(self) -> socket.socket:
        return self.guard.open_socket(self)


class _AddressCheckingAdapter(LiteralTargetAdapter):
    """An adapter whose pools build connections bound to one :class:`_ConnectionGuard`, and
    send each request's target byte for byte (see :mod:`tao_results.literal_http`)."""

    def __init__(self, guard: _ConnectionGuard, **kwargs: Any) -> None:
        # urllib3 instantiates connection classes itself: the guard travels as a class attribute
        # of classes made for this adapter (pool keys admit no custom keyword arguments).
        plain = type("GuardedHTTPConnection", (_GuardedHTTPConnection,), {"guard": guard})
        tls = type("GuardedHTTPSConnection", (_GuardedHTTPSConnection,), {"guard": guard})
        self._pool_classes = {
            "http": type("GuardedHTTPConnectionPool", (LiteralTargetPool,), {"ConnectionCls": plain}),
            "https": type("GuardedHTTPSConnectionPool", (LiteralTargetHTTPSPool,), {"ConnectionCls": tls}),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # A proxy would connect on our behalf to an address we never checked.
        raise ValueError("the storage session does not use proxies")


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """``session.request`` with network failures mapped to TransientError (URL redacted).

    A connection refused by the storage session's policy comes out as that ``PermanentError``
    (``signed_url_rejected``), also when a library wrapped it on the way. With a record's
    deadline in scope (``deadline.deadline_scope``) the connect and read timeouts
    are at most the time left, and no request starts after the deadline (TransientError
    ``deadline``); the body is read against the deadline too (``read_bounded``, ``ResultBody``).
    """
    deadline = current_deadline()
    if deadline is not None:
        timeout = kwargs.get("timeout")
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        budget = deadline.budget(float(read) if read is not None else 60.0, f"{method} {redact_url(url)}")
        kwargs["timeout"] = (budget if connect is None else min(float(connect), budget), budget)
    try:
        return session.request(method, url, allow_redirects=False, **kwargs)
    except requests.RequestException as error:
        classified = _classified_cause(error)
        if classified is not None:
            raise classified from error
        if isinstance(error, requests.Timeout):
            raise TransientError("timeout", f"{method} {redact_url(url)} timed out") from error
        if isinstance(error, requests.ConnectionError):
            raise TransientError(
                "connection_error", f"{method} {redact_url(url)}: connection failed"
            ) from error
        raise TransientError("http_error", f"{method} {redact_url(url)}: {type(error).__name__}") from error


def _classified_cause(error: BaseException) -> ProcessingError | None:
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ProcessingError):
            return current
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(current.args)
    return None


def read_bounded(response: requests.Response, limit: int = MAX_API_ANSWER_BYTES) -> bytes | None:
    """The body if it is at most ``limit`` bytes, else None; the response is closed either way.

    Read piece by piece (``read1``: what has arrived), checking the deadline in scope between
    pieces, so a server that trickles bytes cannot hold the record past its deadline.
    """
    deadline = current_deadline()
    body = bytearray()
    try:
        while len(body) <= limit:
            if deadline is not None:
                deadline.check("reading an answer")
            chunk = response.raw.read1(limit + 1 - len(body), decode_content=True)
            if not chunk:
                break
            body += chunk
    except TransientError:
        raise
    except Exception as error:
        raise TransientError(
            "connection_error", f"reading the answer failed: {type(error).__name__}"
        ) from error
    finally:
        response.close()
    return bytes(body) if len(body) <= limit else None


def answer_detail(body: bytes | None) -> str:
    """A short detail from an error answer (its JSON ``message`` or its text), credentials masked."""
    if not body:
        return "(empty answer)"
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):  # JSON nested thousands deep exhausts the C parser's stack guard
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error", "Message"):
            if isinstance(payload.get(key), str):
                text = payload[key]
                break
    # Scrubbed whole before anything changes it: a cut through an echoed secret would leave a prefix
    # no scrub matches, and folding whitespace would alter a secret that contains some.
    return " ".join(SECRETS.scrub(text).split())[:MAX_DETAIL_CHARACTERS]
