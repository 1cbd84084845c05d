"""A TAO Advance emulator: a real HTTP/1.1 server on loopback for tests, the demo and the benchmarks.

It serves the three things the function talks to, over real sockets, with the behaviour the TAO
"Download results via API" page documents plus what we know beyond it, and it injects faults.

Endpoints (all on one ``base_url`` such as ``http://127.0.0.1:40123``)
-----------------------------------------------------------------------
``POST /api/v1/upload/v1/oauth2/tokens``
    OAuth2 client credentials (RFC 6749 §4.4). A request's client-authentication *form* is
    ``client_secret_basic`` when it carries ``Authorization: Basic`` (id and secret
    form-urlencoded, then base64, decoded per RFC 6749 §2.3.1: a ``+`` is a space), else
    ``multipart`` for a ``multipart/form-data`` body (``curl --form``), else ``client_secret_post``
    (``application/x-www-form-urlencoded`` body). A form not in ``token_auth_methods`` (and every
    request while ``token_reject_all``) gets the ``token_rejection`` answer (see
    :data:`TOKEN_REJECTIONS`); credentials both in the header and the body → 400
    ``invalid_request`` (RFC 6749 §2.3). ``grant_type`` must be ``client_credentials`` (else 400
    ``{"error": "unsupported_grant_type"}``); wrong client → 401 ``{"error": "invalid_client"}``.
    Success → 200 ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``;
    ``expires_in`` is a JSON number, a numeric string or absent (``token_expires_in_as``).
    ``scope`` is optional: the granted scopes are the requested ones the client has, or all it has
    when it asks for none it has. Tokens keep the scopes they were issued with and expire
    server-side after ``token_expires_in`` (emulator clock, see ``advance_clock``), even when the
    answer does not say so. The request log gives each token request's form as ``client_auth``.
``GET /api/v1/download/{referenceId}`` and ``GET /api/v1/upload/api/v1/download/{referenceId}``
    (the doc uses both). Bad/missing/expired/revoked Bearer → 401 ``text/plain`` ``Access Denied``;
    no ``rostering`` scope → 403 ``{"message": "Insufficient scope"}``; unknown or not yet ready →
    404 ``{"message": "Reference ID not found. File not found in pending bucket."}``; ready → 200
    ``{"signedUrl": "..."}``. ``ready_after_calls=N`` makes the first N *authorised* calls for a
    reference answer 404 (faulted or unauthorised calls do not count).
``GET /storage/results/{referenceId}/{filename}?X-Amz-...``
    An S3-like presigned URL (``X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature``
    and, as for temporary credentials, ``X-Amz-Security-Token`` with ``+/=`` in it),
    the signature an HMAC-SHA256 over path, date and expiry with a per-emulator key). Like S3: an
    ``Authorization`` header → 400 XML ``InvalidArgument`` "Only one auth mechanism allowed" (the
    XML echoes the header value in ``ArgumentValue``, as S3 does); bad signature → 403
    ``SignatureDoesNotMatch``; past expiry → 403 ``AccessDenied`` "Request has expired"; missing
    query auth → 403 ``AccessDenied``; an ``X-Amz-Security-Token`` it never issued → 400
    ``InvalidToken``, one whose session ended → 400 ``ExpiredToken``. Otherwise 200 with
    ``Content-Length``, ``Content-Type``, ``Content-Disposition`` (default ``attachment;
    filename="<filename>"``), ``Content-Encoding`` (when the result has one), ``ETag`` and the body
    streamed in 1 MiB memoryview slices. A single ``Range: bytes=a-b`` gets a 206. HEAD → 403 (the
    URL is signed for GET, as on S3). With ``signature_scope="literal"`` the signature covers the
    request target byte for byte (path, and query without ``X-Amz-Signature``), as signers that
    check the literal request do: a client that re-quotes ``%7E`` or upper-cases ``%2f`` gets 403
    ``SignatureDoesNotMatch``.
``/_emulator/{method}``
    Admin API (JSON in/out, ``POST`` with the keyword arguments as a JSON object) mirroring the
    in-process methods below; used by :class:`EmulatorAdmin`.

Result bodies
-------------
``add_result(ref, size=N)`` generates N deterministic bytes: one 1 MiB pseudo-random block per
``seed`` (``shake_256``), and chunk *i* of a result is that block rotated by an offset derived from
the reference and *i*, so every MiB of a file differs (a part-reordering bug changes the sha256)
and two references differ. Memory stays bounded (2 MiB per seed) whatever the size; streaming is a
single ``sendall`` of a memoryview per MiB. ``add_result(ref, content=b"...")`` serves exact bytes.
The returned :class:`ResultInfo` carries ``size`` and ``sha256`` (of exactly the bytes served).

In-process API (:class:`TaoEmulator`; :class:`EmulatorAdmin` has the same methods over HTTP)
---------------------------------------------------------------------------------------------
``TaoEmulator(host="127.0.0.1", port=0, **settings)``, ``start() -> self``, ``stop()``, context
manager, ``base_url``, ``host``, ``port``;
``add_result(reference_id, *, size=None, content=None, filename="result.csv",
content_type="text/csv", content_disposition=DEFAULT, ready_after_calls=0, seed=None,
content_encoding=None, header_charset="latin-1") -> ResultInfo`` (``content_disposition=None`` omits
the header, a string is sent raw; ``content_encoding`` is sent as ``Content-Encoding`` whatever the
client's ``Accept-Encoding``, the bytes served as given; ``header_charset="utf-8"`` puts
``Content-Type``/``Content-Disposition`` on the wire as raw UTF-8 instead of Latin-1); ``result_info(ref)``,
``remove_result(ref)``; ``add_fault(Fault)``, ``clear_faults()``, ``faults()`` (remaining);
``configure(**settings)``, ``settings()``; ``rotate_secret(new)`` (old secret stops working, issued
tokens stay valid); ``revoke_tokens()``; ``set_scopes([...])`` (for tokens issued afterwards);
``advance_clock(seconds)`` (moves the emulator's clock: token expiry and URL expiry);
``reset()`` (results, faults, stats, log, tokens, clock, fault RNG); ``stats()``,
``requests_log()`` (per request: stage, method, path, raw ``request_line``, lower-cased
``header_names``, status, fault...), ``issued_tokens()``, ``issued_signatures()`` (every token and
every X-Amz-Signature ever handed out, so tests can grep logs for leaks),
``issued_url_credentials()`` (every ``X-Amz-Credential`` and ``X-Amz-Security-Token`` value of the
signed URLs).

Settings: ``client_id`` ("demo-client"), ``client_secret`` ("demo-secret"), ``token_expires_in``
(3600), ``signed_url_ttl`` (300), ``latency_ms`` (0, slept before every TAO and storage answer,
not admin calls), ``scopes`` (["rostering"]), ``random_fault_rate`` (0.0), ``random_fault_seed``
(0), ``random_fault_kinds`` (all of :data:`RANDOM_FAULT_KINDS`), ``slow_delay_ms`` (1000),
``content_seed`` (0, default seed of generated bodies), ``idle_timeout_s`` (60, keep-alive idle),
``token_auth_methods`` (all of :data:`TOKEN_AUTH_METHODS`: the client-authentication forms the
token endpoint takes, any subset), ``token_rejection`` ("400_invalid_request", how it refuses
another form), ``token_expires_in_as`` ("int" | "string" | "absent"), ``token_reject_all``
(False: True refuses every token request with the ``token_rejection`` answer),
``signature_scope`` ("decoded": HMAC over the unquoted path | "literal": over the raw target),
``signed_url_escapes`` ("upper" | "lower": hex case of the escapes in issued URLs),
``signed_url_tilde`` ("raw" | "escaped": ``~`` issued as ``%7E``), ``signed_url_extra_query`` (""
: raw text appended to every issued query, e.g. ``a=b+c&p=%2f``), ``signing_key`` ("" = random;
hex, shared by two emulators so one can redirect to the other, 127.0.0.1 on another port).
``set_cookie`` (None; a ``Set-Cookie`` value sent on every TAO and storage answer).

TLS: ``serve_tls(certfile, keyfile) -> port`` adds a second listener on the same host that serves
the same endpoints over TLS (e.g. with a certificate for an S3 name from a test CA); its
connections count in ``stats()["tls_connections_accepted"]``. Every ``requests_log()`` entry
carries the request's ``host`` header, ``cookie_present`` and ``tls``.

``echo_credentials`` (False): every error answer of the token endpoint, the Download API and the
storage quotes what the request carried (its ``Authorization`` value, its query string, its form
body, decoded), as gateways and WAFs do. The quote cycles through the forms an echo takes: raw,
JSON-escaped (ASCII), percent-encoded, JSON-escaped twice, PHP's JSON (``\\/``), ``\\u00XX`` for
every non-alphanumeric character, XML numeric references; it goes in the JSON ``message``, in the
S3 XML ``Message`` (XML-escaped), or after a text body. ``stats()["echoed_errors"]`` counts them.
``tls_cert_file``/``tls_key_file`` ("": plain HTTP; PEM paths, read by ``start()``): unlike
``serve_tls``, the main listener itself serves TLS, admin API included, ``base_url`` starts with
``https://`` and so do the signed URLs it issues (the benchmarks' TLS-on-both-legs runs).

Faults
------
``Fault(stage, kind, reference_id=None, times=1, probability=1.0, **params)``; ``stage`` is
``"token" | "download" | "storage"``; ``reference_id=None`` matches any; ``times=None`` = forever.
The first matching fault (in insertion order) that passes its probability roll fires. Kinds:

``status``      answer ``status`` (default 500) with ``body`` (None → a stage-typical body),
                ``content_type`` (default JSON, XML for storage) and extra ``headers``.
``reset``       close the TCP connection without answering (SO_LINGER 0 → RST).
``delay``       sleep ``delay_ms`` then answer normally (client timeouts).
``truncate``    storage: full ``Content-Length``, only ``truncate_at`` bytes (None → half), close.
``overlong``    storage: ``Transfer-Encoding: chunked`` plus a ``Content-Length`` ``extra`` bytes
                smaller than the body actually sent.
``expired_url`` download: a valid signature whose expiry has already passed.
``signed_url``  download: 200 ``{"signedUrl": url}``, ``{base_url}`` and ``{signed_path}`` (a valid
                signed path+query for the reference) substituted in ``url``.
``redirect``    storage: ``status`` (default 302) with ``Location: location`` (placeholders
                ``{base_url}``, ``{signed_path}``, ``{signed_query}``, ``{host_port}``), empty body.
``s3_redirect`` storage: S3's own redirects (User Guide, "Request routing"): ``status`` 301
                ``PermanentRedirect`` (no Location; XML ``<Endpoint>endpoint</Endpoint>`` and
                ``x-amz-bucket-region: region``) or 307 ``TemporaryRedirect`` (also
                ``Location: http://{endpoint}{the same path and query}``); ``endpoint`` defaults
                to ``{host_port}``.
``content_length`` storage: the body in full, but one ``Content-Length`` header line per item of
                ``length_values`` (raw: ``["+5"]``, ``["5", "7"]``, ``["²"]``...), then close.
``expired_session`` download: the URL carries an ``X-Amz-Security-Token`` whose session has
                ended: storage answers 400 ``ExpiredToken``.
``revoke``      download: revoke the presented token and answer 401 ``Access Denied``.

``status`` on storage takes ``code``/``message`` for its S3 XML error body (``ExpiredToken``,
``SignatureDoesNotMatch``...; default: a code typical of the status).

``expired_url``/``signed_url``/``truncate``/``overlong``/``content_length``/``expired_session``
only fire on a request that would otherwise succeed; the others fire before authentication. Random faults
(``configure(random_fault_rate=.., random_fault_seed=.., random_fault_kinds=[..])``): each TAO
and storage call rolls a seeded RNG and, with that probability, gets one kind of the realistic mix
in :data:`RANDOM_FAULT_KINDS` applicable to its stage (``slow`` applies everywhere). Explicit faults
win over random ones. Stats count fired faults by ``Fault.kind`` (``faults_injected``) and random
ones also by mix name (``random_faults_injected``). A single sequential client sees the same
sequence for the same seed.

CLI: ``python -m tests.support.tao_emulator --host 127.0.0.1 --port 0 [--client-id ..]
[--client-secret ..] [--latency-ms N]`` prints one JSON line ``{"base_url": ...}`` once listening
and serves until SIGTERM/SIGINT. :func:`spawn_emulator` / :func:`running_emulator_process` start
that in a child process and hand back an :class:`EmulatorAdmin`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import dataclasses
import email.parser
import email.policy
import enum
import hashlib
import hmac
import ipaddress
import json
import os
import queue
import random
import re
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlencode

import requests

__all__ = [
    "DEFAULT",
    "RANDOM_FAULT_KINDS",
    "TOKEN_AUTH_METHODS",
    "TOKEN_REJECTIONS",
    "EmulatorAdmin",
    "Fault",
    "ResultInfo",
    "TaoEmulator",
    "running_emulator_process",
    "spawn_emulator",
]

TOKEN_PATH = "/api/v1/upload/v1/oauth2/tokens"
DOWNLOAD_PATHS = ("/api/v1/download", "/api/v1/upload/api/v1/download")
STORAGE_PREFIX = "/storage/results/"
ADMIN_PREFIX = "/_emulator/"
NOT_FOUND_MESSAGE = "Reference ID not found. File not found in pending bucket."
ACCESS_DENIED = "Access Denied"
BLOCK_SIZE = 1 << 20  # one generated block; also the streaming chunk size
_ROTATION_STEP = 0x9E3779B1  # odd: chunk rotations are all distinct for 2**20 chunks (1 TiB)
_MAX_REQUEST_BODY = 10 << 20
_FAKE_ACCESS_KEY = "ASIAEMULATOR7EXAMPLE"
_REGION = "eu-west-1"

Stage = Literal["token", "download", "storage"]
FaultKind = Literal[
    "status",
    "reset",
    "delay",
    "truncate",
    "overlong",
    "expired_url",
    "signed_url",
    "redirect",
    "revoke",
    "s3_redirect",
    "content_length",
    "expired_session",
]
FAULT_KINDS: frozenset[str] = frozenset(
    [
        "status",
        "reset",
        "delay",
        "truncate",
        "overlong",
        "expired_url",
        "signed_url",
        "redirect",
        "revoke",
        "s3_redirect",
        "content_length",
        "expired_session",
    ]
)
# Kinds that only replace an answer that would otherwise be a success; the rest fire up front.
_SUCCESS_PHASE_KINDS = frozenset(
    ["truncate", "overlong", "expired_url", "signed_url", "content_length", "expired_session"]
)
_STAGE_KINDS: dict[str, frozenset[str]] = {
    "token": frozenset(["status", "reset", "delay"]),
    "download": frozenset(
        ["status", "reset", "delay", "expired_url", "signed_url", "revoke", "expired_session"]
    ),
    "storage": frozenset(
        ["status", "reset", "delay", "truncate", "overlong", "redirect", "s3_redirect", "content_length"]
    ),
}

#: The realistic mix random faults draw from: name → (stage or None for any stage).
RANDOM_FAULT_KINDS: dict[str, str | None] = {
    "download_500": "download",
    "download_429": "download",
    "download_reset": "download",
    "storage_truncate": "storage",
    "download_expired_url": "download",
    "download_revoke": "download",
    "token_503": "token",
    "storage_500": "storage",
    "slow": None,
}


#: Client-authentication forms of the token endpoint (OpenID Connect Core §9 names, plus multipart).
TOKEN_AUTH_METHODS = ("client_secret_post", "client_secret_basic", "multipart")
#: How the token endpoint refuses a form it does not take: name → (status, body, content type, headers).
#: The 400s are RFC 6749 §5.2 JSON; 401 "Access Denied" is the vendor's gateway; 401 with a Basic
#: challenge is RFC 6749 §5.2 for invalid_client; 415 is a server that does not parse the body type.
TOKEN_REJECTIONS: dict[str, tuple[int, str, str, dict[str, str]]] = {
    "400_invalid_request": (
        400,
        json.dumps({"error": "invalid_request", "error_description": "Unsupported client authentication"}),
        "application/json",
        {},
    ),
    "400_invalid_client": (
        400,
        json.dumps({"error": "invalid_client", "error_description": "Client authentication failed"}),
        "application/json",
        {},
    ),
    "400_unauthorized_client": (
        400,
        json.dumps({"error": "unauthorized_client", "error_description": "Client not authorized"}),
        "application/json",
        {},
    ),
    "401_access_denied": (401, "Access Denied", "text/plain", {}),
    "401_basic_challenge": (
        401,
        json.dumps({"error": "invalid_client"}),
        "application/json",
        {"WWW-Authenticate": 'Basic realm="tao", charset="UTF-8"'},
    ),
    "415": (
        415,
        json.dumps({"error": "invalid_request", "error_description": "Unsupported Media Type"}),
        "application/json",
        {},
    ),
}
_EXPIRES_IN_FORMS = ("int", "string", "absent")


class _Default(enum.Enum):
    TOKEN = "default"


#: Sentinel for ``add_result(content_disposition=...)``: the default ``attachment; filename=".."``.
DEFAULT = _Default.TOKEN


# --------------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------------


def _encode_bytes(value: str | bytes | None) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def _decode_bytes(value: Any) -> str | bytes | None:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    return cast("str | bytes | None", value)


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour; see the module docstring for the kinds and their parameters."""

    stage: Stage
    kind: FaultKind
    reference_id: str | None = None
    times: int | None = 1
    probability: float = 1.0
    # kind parameters
    status: int | None = None
    body: str | bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_ms: int = 0
    truncate_at: int | None = None
    extra: int = 1
    url: str = ""
    location: str = ""
    code: str | None = None
    message: str | None = None
    endpoint: str = "{host_port}"
    region: str = "eu-west-1"
    length_values: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.stage not in _STAGE_KINDS:
            raise ValueError(f"unknown fault stage {self.stage!r}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind not in _STAGE_KINDS[self.stage]:
            raise ValueError(f"fault kind {self.kind!r} does not apply to stage {self.stage!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["body"] = _encode_bytes(self.body)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown Fault fields: {sorted(unknown)}")
        values = dict(data)
        values["body"] = _decode_bytes(values.get("body"))
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ResultInfo:
    """What the emulator serves for one reference (``sha256`` is of exactly the bytes served)."""

    reference_id: str
    size: int
    sha256: str
    etag: str
    filename: str
    content_type: str
    content_disposition: str | None
    ready_after_calls: int
    seed: int | None
    content_encoding: str | None = None
    header_charset: str = "latin-1"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultInfo:
        return cls(**data)


@dataclasses.dataclass
class _Settings:
    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    token_expires_in: int = 3600
    signed_url_ttl: int = 300
    latency_ms: int = 0
    scopes: list[str] = dataclasses.field(default_factory=lambda: ["rostering"])
    random_fault_rate: float = 0.0
    random_fault_seed: int = 0
    random_fault_kinds: list[str] = dataclasses.field(default_factory=lambda: list(RANDOM_FAULT_KINDS))
    slow_delay_ms: int = 1000
    content_seed: int = 0
    idle_timeout_s: float = 60.0
    token_auth_methods: list[str] = dataclasses.field(default_factory=lambda: list(TOKEN_AUTH_METHODS))
    token_rejection: str = "400_invalid_request"
    token_expires_in_as: str = "int"
    token_reject_all: bool = False
    signature_scope: str = "decoded"
    signed_url_escapes: str = "upper"
    signed_url_tilde: str = "raw"
    signed_url_extra_query: str = ""
    signing_key: str = ""
    # Sent as a Set-Cookie header on every TAO and storage answer (None: none), so tests can show
    # that no cookie ever comes back.
    set_cookie: str | None = None
    echo_credentials: bool = False
    # HTTPS instead of HTTP (PEM paths; read at start): the benchmarks measure Lambda's TLS cost.
    tls_cert_file: str = ""
    tls_key_file: str = ""

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(values) - names
        if unknown:
            raise TypeError(f"unknown emulator settings: {sorted(unknown)}")
        for kind in values.get("random_fault_kinds", []):
            if kind not in RANDOM_FAULT_KINDS:
                raise ValueError(f"unknown random fault kind {kind!r}; known: {sorted(RANDOM_FAULT_KINDS)}")
        if not 0.0 <= float(values.get("random_fault_rate", 0.0)) <= 1.0:
            raise ValueError("random_fault_rate must be within [0, 1]")
        for method in values.get("token_auth_methods", []):
            if method not in TOKEN_AUTH_METHODS:
                raise ValueError(f"unknown token auth method {method!r}; known: {list(TOKEN_AUTH_METHODS)}")
        if values.get("token_rejection", "400_invalid_request") not in TOKEN_REJECTIONS:
            raise ValueError(f"unknown token_rejection; known: {sorted(TOKEN_REJECTIONS)}")
        if values.get("token_expires_in_as", "int") not in _EXPIRES_IN_FORMS:
            raise ValueError(f"token_expires_in_as must be one of {list(_EXPIRES_IN_FORMS)}")
        for name, allowed in _SETTING_CHOICES.items():
            if name in values and values[name] not in allowed:
                raise ValueError(f"{name} must be one of {sorted(allowed)}")
        if "signing_key" in values:
            bytes.fromhex(str(values["signing_key"]))  # ValueError unless hex
        for name, value in values.items():
            setattr(self, name, list(value) if isinstance(value, list | tuple) else value)


_SETTING_CHOICES: dict[str, frozenset[str]] = {
    "signature_scope": frozenset(["decoded", "literal"]),
    "signed_url_escapes": frozenset(["upper", "lower"]),
    "signed_url_tilde": frozenset(["raw", "escaped"]),
}


@dataclasses.dataclass
class _Token:
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False


# --------------------------------------------------------------------------------------------------
# Result bodies
# --------------------------------------------------------------------------------------------------

_BLOCK_CACHE: dict[int, memoryview] = {}
_BLOCK_LOCK = threading.Lock()


def _doubled_block(seed: int) -> memoryview:
    """A pseudo-random 1 MiB block for ``seed``, stored twice so any rotation is one slice."""
    with _BLOCK_LOCK:
        view = _BLOCK_CACHE.get(seed)
        if view is None:
            block = hashlib.shake_256(f"tao-emulator-block:{seed}".encode()).digest(BLOCK_SIZE)
            view = memoryview(block + block)
            _BLOCK_CACHE[seed] = view
        return view


class _Body:
    """The bytes of one result, produced as memoryview slices of at most ``BLOCK_SIZE``."""

    def __init__(self, reference_id: str, size: int | None, content: bytes | None, seed: int) -> None:
        self.content = content
        if content is not None:
            self.size = len(content)
        else:
            if size is None or size < 0:
                raise ValueError("add_result needs size >= 0 or content")
            self.size = size
        digest = hashlib.sha256(f"{seed}:{reference_id}".encode()).digest()
        self.base = int.from_bytes(digest[:8], "big") % BLOCK_SIZE
        self.block = _doubled_block(seed) if content is None else memoryview(b"")

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[memoryview]:
        end = self.size if end is None else end
        if self.content is not None:
            view = memoryview(self.content)
            for pos in range(start, end, BLOCK_SIZE):
                yield view[pos : min(pos + BLOCK_SIZE, end)]
            return
        pos = start
        while pos < end:
            index, within = divmod(pos, BLOCK_SIZE)
            rotation = (self.base + index * _ROTATION_STEP) % BLOCK_SIZE + within
            length = min(BLOCK_SIZE - within, end - pos)
            yield self.block[rotation : rotation + length]
            pos += length

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()


@dataclasses.dataclass
class _Result:
    info: ResultInfo
    body: _Body
    authorised_calls: int = 0


# --------------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------------


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


class TaoEmulator:
    """The emulator, in process. Thread-safe; every method can be called while it serves."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **settings: Any) -> None:
        address = ipaddress.ip_address(host)
        if not address.is_loopback:
            raise ValueError(f"the emulator binds to loopback only, not {host!r}")
        self.host = host
        self._requested_port = port
        self._settings = _Settings()
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

    def add_result(
        self,
        reference_id: str,
        *,
        size: int | None = None,
        content: bytes | None = None,
        filename: str = "result.csv",
        content_type: str = "text/csv",
        content_disposition: str | _Default | None = DEFAULT,
        ready_after_calls: int = 0,
        seed: int | None = None,
        content_encoding: str | None = None,
        header_charset: str = "latin-1",
    ) -> ResultInfo:
        """Register (or replace) a result; computes its sha256 once, streaming."""
        if content is not None and size is not None and size != len(content):
            raise ValueError("size and len(content) differ")
        if header_charset not in ("latin-1", "utf-8"):
            raise ValueError("header_charset must be 'latin-1' or 'utf-8'")
        effective_seed = self._settings.content_seed if seed is None else seed
        body = _Body(reference_id, size, content, effective_seed)
        sha256 = body.sha256()  # outside the lock: may take seconds for GiB results
        disposition = (
            f'attachment; filename="{filename}"' if content_disposition is DEFAULT else content_disposition
        )
        info = ResultInfo(
            reference_id=reference_id,
            size=body.size,
            sha256=sha256,
            etag=f'"{sha256[:32]}"',
            filename=filename,
            content_type=content_type,
            content_disposition=disposition,
            ready_after_calls=ready_after_calls,
            seed=None if content is not None else effective_seed,
            content_encoding=content_encoding,
            header_charset=header_charset,
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

    # ---- internals used by the handler ---------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._clock_offset

    def _count_connection(self, tls: bool = False) -> None:
        with self._lock:
            self._stats["connections_accepted"] += 1
            if tls:
                self._stats["tls_connections_accepted"] += 1

    def _sleep(self, milliseconds: float) -> None:
        if milliseconds > 0:
            self._stopping.wait(milliseconds / 1000.0)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def _count(self, key: str, reference_id: str | None = None) -> None:
        with self._lock:
            if reference_id is None:
                self._stats[key] += 1
            else:
                self._stats[key][reference_id] += 1

    def _take_fault(self, stage: str, reference_id: str | None, phase_success: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.stage != stage or (fault.kind in _SUCCESS_PHASE_KINDS) != phase_success:
                    continue
                if fault.reference_id is not None and fault.reference_id != reference_id:
                    continue
                if fault.times is not None and fault.times <= 0:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                self._faults = [f for f in self._faults if f.times is None or f.times > 0]
                self._stats["faults_injected"][fault.kind] += 1
                return copy.deepcopy(fault)
        return None

    def _roll_random_fault(self, stage: str) -> tuple[str, Fault] | None:
        with self._lock:
            settings = self._settings
            if settings.random_fault_rate <= 0:
                return None
            if self._rng.random() >= settings.random_fault_rate:
                return None
            candidates = [
                name for name in settings.random_fault_kinds if RANDOM_FAULT_KINDS[name] in (None, stage)
            ]
            if not candidates:
                return None
            name = self._rng.choice(candidates)
            retry_after = self._rng.choice(["0", "1"])
        fault = _random_fault(name, stage, settings.slow_delay_ms, retry_after)
        return name, fault

    def _count_random(self, name: str, fault: Fault) -> None:
        with self._lock:
            self._stats["random_faults_injected"][name] += 1
            self._stats["faults_injected"][fault.kind] += 1

    def _issue_token(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            expires_in = self._settings.token_expires_in
            self._tokens[token] = _Token(scopes=scopes, expires_at=self._now() + expires_in)
            self._issued_tokens.append(token)
            self._stats["tokens_issued"] += 1
        return token, expires_in

    def _token(self, token: str) -> _Token | None:
        with self._lock:
            record = self._tokens.get(token)
            if record is None or record.revoked or self._now() >= record.expires_at:
                return None
            return record

    def _revoke(self, token: str) -> None:
        with self._lock:
            record = self._tokens.get(token)
            if record is not None:
                record.revoked = True

    def _key(self) -> bytes:
        shared = self._settings.signing_key
        return bytes.fromhex(shared) if shared else self._signing_key

    def _signature(self, path: str, amz_date: str, expires: str) -> str:
        message = f"GET\n{unquote(path)}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def _literal_signature(self, path: str, query_without_signature: str) -> str:
        """``signature_scope="literal"``: the HMAC covers the request target byte for byte."""
        message = f"GET\n{path}?{query_without_signature}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def _styled(self, text: str) -> str:
        """Apply ``signed_url_tilde``/``signed_url_escapes`` to an issued path or query."""
        if self._settings.signed_url_tilde == "escaped":
            text = text.replace("~", "%7E")
        if self._settings.signed_url_escapes == "lower":
            text = re.sub(r"%[0-9A-F]{2}", lambda match: match.group(0).lower(), text)
        return text

    def _session_token(self, expired: bool) -> str:
        """A session token, base64 with "+/=" in it as STS tokens are (their encoded forms matter).

        Stateless: a nonce, whether its session is over, and an HMAC under the signing key, so a
        second emulator sharing ``signing_key`` (a redirect target) accepts it too.
        """
        payload = secrets.token_bytes(31) + (b"\x01" if expired else b"\x00")
        mac = hmac.new(self._key(), payload, hashlib.sha256).digest()[:16]
        return base64.b64encode(payload + mac + b"\xfb\xff").decode("ascii")

    def _session_state(self, token: str) -> str:
        """``"live"``, ``"expired"`` or ``"invalid"`` (not issued under this signing key)."""
        try:
            raw = base64.b64decode(token, validate=True)
        except ValueError:
            return "invalid"
        payload, mac = raw[:32], raw[32:48]
        if len(raw) != 50 or not hmac.compare_digest(
            mac, hmac.new(self._key(), payload, hashlib.sha256).digest()[:16]
        ):
            return "invalid"
        return "expired" if payload[-1:] == b"\x01" else "live"

    def _signed_path(self, info: ResultInfo, *, expired: bool = False, expired_session: bool = False) -> str:
        """A presigned path+query for ``info``, recorded in ``issued_signatures``.

        ``expired_session`` adds an ``X-Amz-Security-Token`` whose session has already ended (S3
        then answers 400 ``ExpiredToken``). The path and query are styled by the ``signed_url_*``
        settings; ``X-Amz-Signature`` always comes last.
        """
        ttl = self._settings.signed_url_ttl
        issued_at = self._now() - (ttl + 60 if expired else 0)
        amz_date = datetime.fromtimestamp(issued_at, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        path = f"{STORAGE_PREFIX}{quote(info.reference_id, safe='')}/{quote(info.filename, safe='')}"
        credential = f"{_FAKE_ACCESS_KEY}/{amz_date[:8]}/{_REGION}/s3/aws4_request"
        # Every URL carries a session token, as a presigned URL made with temporary credentials
        # does; ``expired_session`` issues one whose session is already over.
        session_token = self._session_token(expired=expired_session)
        with self._lock:
            self._issued_url_credentials += [credential, session_token]
        parameters = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": credential,
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(ttl),
            "X-Amz-SignedHeaders": "host",
        }
        parameters["X-Amz-Security-Token"] = session_token
        query = urlencode(parameters, quote_via=quote)
        if self._settings.signed_url_extra_query:
            query += "&" + self._settings.signed_url_extra_query
        path, query = self._styled(path), self._styled(query)
        if self._settings.signature_scope == "literal":
            signature = self._literal_signature(path, query)
        else:
            signature = self._signature(path, amz_date, str(ttl))
        with self._lock:
            self._issued_signatures.append(signature)
        return f"{path}?{query}&X-Amz-Signature={signature}"

    def _lookup(self, reference_id: str) -> _Result | None:
        with self._lock:
            return self._results.get(reference_id)

    def _admin_call(self, method: str, arguments: dict[str, Any]) -> Any:
        """Run one admin method from its JSON form (used by the ``/_emulator/`` endpoints)."""
        if method == "add_result":
            arguments = dict(arguments)
            if isinstance(arguments.get("content"), dict):
                arguments["content"] = _decode_bytes(arguments["content"])
            if "content_disposition" not in arguments:
                arguments["content_disposition"] = DEFAULT
            return self.add_result(**arguments).to_dict()
        if method == "add_fault":
            self.add_fault(Fault.from_dict(arguments["fault"]))
            return None
        if method == "faults":
            return [fault.to_dict() for fault in self.faults()]
        if method == "result_info":
            info = self.result_info(**arguments)
            return None if info is None else info.to_dict()
        if method not in _ADMIN_PLAIN_METHODS:
            raise LookupError(f"unknown admin method {method!r}")
        function: Callable[..., Any] = getattr(self, method)
        return function(**arguments)


_ADMIN_PLAIN_METHODS = frozenset(
    [
        "remove_result",
        "clear_faults",
        "configure",
        "settings",
        "rotate_secret",
        "revoke_tokens",
        "set_scopes",
        "advance_clock",
        "reset",
        "stats",
        "requests_log",
        "issued_tokens",
        "issued_signatures",
        "issued_url_credentials",
    ]
)


def _random_fault(name: str, stage: str, slow_delay_ms: int, retry_after: str) -> Fault:
    json_type = "application/json"
    if name == "download_500":
        body = json.dumps({"message": "Internal error while checking the status (emulated)"})
        return Fault("download", "status", status=500, body=body, content_type=json_type)
    if name == "download_429":
        body = json.dumps({"message": "Too Many Requests"})
        return Fault(
            "download",
            "status",
            status=429,
            body=body,
            content_type=json_type,
            headers={"Retry-After": retry_after},
        )
    if name == "download_reset":
        return Fault("download", "reset")
    if name == "storage_truncate":
        return Fault("storage", "truncate")
    if name == "download_expired_url":
        return Fault("download", "expired_url")
    if name == "download_revoke":
        return Fault("download", "revoke")
    if name == "token_503":
        html = "<html><head><title>503 Service Temporarily Unavailable</title></head></html>"
        return Fault("token", "status", status=503, body=html, content_type="text/html")
    if name == "storage_500":
        return Fault(
            "storage",
            "status",
            status=500,
            body=_s3_error("InternalError", "We encountered an internal error. Please try again."),
        )
    return Fault(cast("Stage", stage), "delay", delay_ms=slow_delay_ms)


_S3_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("InvalidRequest", "Invalid Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


def _s3_error(code: str, message: str, **extra: str) -> str:
    fields = "".join(f"<{key}>{_xml_escape(value)}</{key}>" for key, value in extra.items())
    request_id = secrets.token_hex(8).upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{_xml_escape(message)}</Message>{fields}"
        f"<RequestId>{request_id}</RequestId><HostId>{secrets.token_urlsafe(24)}</HostId></Error>"
    )


def _on_the_wire(value: str, charset: str) -> str:
    """``value`` as ``send_header`` must get it to put ``charset`` bytes on the wire (it writes Latin-1)."""
    return value.encode("utf-8").decode("latin-1") if charset == "utf-8" else value


def _xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# --------------------------------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------------------------------

_SIGNATURE_VALUE = re.compile(r"((?:X-Amz-Signature|X-Amz-Security-Token)=)[^&\s]*")
_DOWNLOAD_RE = re.compile(r"^/api/v1/(?:upload/api/v1/)?download(?:/(?P<ref>[^/]*))?/?$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _ConnectionDropped(Exception):
    """The answer was a TCP reset; nothing else may be written."""


class _Handler(BaseHTTPRequestHandler):
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

    def _s3_redirect(self, fault: Fault) -> None:
        """S3's redirects (User Guide, "Request routing"): 301 PermanentRedirect names the endpoint
        only in its XML body and ``x-amz-bucket-region`` (no Location); 307 TemporaryRedirect also
        sends a Location to the same request on that endpoint."""
        endpoint = self._fill_placeholders(fault.endpoint)
        status = fault.status if fault.status in (301, 307) else 301
        headers = {"x-amz-request-id": secrets.token_hex(8).upper(), "x-amz-bucket-region": fault.region}
        if status == 307:
            code, message = (
                "TemporaryRedirect",
                "Please re-send this request to the specified temporary endpoint.",
            )
            headers["Location"] = f"http://{endpoint}{self.path}"
        else:
            code, message = (
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified endpoint. "
                "Please send all future requests to this endpoint.",
            )
        body = _s3_error(code, message, Bucket="tao-results", Endpoint=endpoint)
        self._send(status, body, "application/xml", {**headers, **fault.headers})

    # ---- admin ---------------------------------------------------------------------------------

    def _admin(self, method: str, body: bytes) -> None:
        self.emulator._count("admin_requests")
        try:
            arguments = json.loads(body) if body.strip() else {}
            if not isinstance(arguments, dict):
                raise TypeError("admin arguments must be a JSON object")
            result = self.emulator._admin_call(method.strip("/"), arguments)
        except LookupError as error:
            self._send_json(404, {"error": str(error)})
            return
        except (TypeError, ValueError, KeyError, binascii.Error) as error:
            self._send_json(400, {"error": f"{type(error).__name__}: {error}"})
            return
        self._send_json(200, {"result": result})

    # ---- token ---------------------------------------------------------------------------------

    def _token(self, body: bytes) -> None:
        if self.command != "POST":
            self._send_json(
                405, {"error": "invalid_request", "error_description": "POST only"}, {"Allow": "POST"}
            )
            return
        settings = self.emulator._settings
        content_type = self.headers.get("Content-Type", "")
        authorization = self.headers.get("Authorization", "")
        basic_used = authorization[:6].lower() == "basic "
        if basic_used:
            self.client_auth = "client_secret_basic"
        elif content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
            self.client_auth = "multipart"
        else:
            self.client_auth = "client_secret_post"
        if settings.token_reject_all or self.client_auth not in settings.token_auth_methods:
            status, answer, answer_type, headers = TOKEN_REJECTIONS[settings.token_rejection]
            self._send(status, answer, answer_type, headers)
            return
        try:
            form = _parse_form(content_type, body)
        except ValueError as error:
            self._send_json(400, {"error": "invalid_request", "error_description": str(error)})
            return
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if basic_used:
            if client_secret is not None:
                self._send_json(
                    400,
                    {"error": "invalid_request", "error_description": "more than one authentication method"},
                )
                return
            client_id, client_secret = _decode_basic(authorization[6:])
        if not (
            client_id is not None
            and client_secret is not None
            and hmac.compare_digest(client_id.encode(), settings.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), settings.client_secret.encode())
        ):
            headers = {"WWW-Authenticate": 'Basic realm="tao"'} if basic_used else {}
            self._send_json(401, {"error": "invalid_client"}, headers)
            return
        if form.get("grant_type") != "client_credentials":
            self._send_json(400, {"error": "unsupported_grant_type"})
            return
        has = tuple(settings.scopes)
        requested = (form.get("scope") or "").split()
        granted = tuple(scope for scope in requested if scope in has) or has
        token, expires_in = self.emulator._issue_token(granted)
        document: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if settings.token_expires_in_as == "int":
            document["expires_in"] = expires_in
        elif settings.token_expires_in_as == "string":
            document["expires_in"] = str(expires_in)
        document["scope"] = " ".join(granted)
        self._send_json(200, document, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    # ---- download ------------------------------------------------------------------------------

    def _bearer_token(self) -> str | None:
        authorization = self.headers.get("Authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return value.strip()

    def _download(self, rolled: tuple[str, Fault] | None) -> None:
        if self.command != "GET":
            self._send_json(405, {"message": "Method Not Allowed"}, {"Allow": "GET"})
            return
        token = self._bearer_token()
        record = None if token is None else self.emulator._token(token)
        if record is None:
            self._access_denied()
            return
        if "rostering" not in record.scopes:
            self._send_json(403, {"message": "Insufficient scope"})
            return
        emulator = self.emulator
        ready = False
        with emulator._lock:
            result = emulator._results.get(self.reference_id or "")
            if result is not None:
                result.authorised_calls += 1
                ready = result.authorised_calls > result.info.ready_after_calls
        if result is None or not ready:
            self._send_json(404, {"message": NOT_FOUND_MESSAGE})
            return
        fault = self._success_fault(rolled)
        if fault is not None and fault.kind == "signed_url":
            self._send_json(200, {"signedUrl": self._fill_placeholders(fault.url)})
            return
        expired = fault is not None and fault.kind == "expired_url"
        expired_session = fault is not None and fault.kind == "expired_session"
        url = emulator.base_url + emulator._signed_path(
            result.info, expired=expired, expired_session=expired_session
        )
        self._send_json(200, {"signedUrl": url})

    # ---- storage -------------------------------------------------------------------------------

    def _storage(self, path: str, parts: list[str], rolled: tuple[str, Fault] | None) -> None:
        if "Authorization" in self.headers:
            self._send_s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
                "string parameter or the Authorization header should be specified",
                ArgumentName="Authorization",
                ArgumentValue=self.headers.get("Authorization", ""),
            )
            return
        query = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "", keep_blank_values=True)
        params = {key: values[0] for key, values in query.items()}
        required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature")
        if any(name not in params for name in required):
            self._send_s3_error(403, "AccessDenied", "Access Denied")
            return
        emulator = self.emulator
        amz_date, expires = params["X-Amz-Date"], params["X-Amz-Expires"]
        if emulator._settings.signature_scope == "literal":
            raw_query = self.path.split("?", 1)[1]
            unsigned = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
            expected = emulator._literal_signature(path, unsigned)
        else:
            expected = emulator._signature(path, amz_date, expires)
        if (
            self.command != "GET"
            or params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256"
            or not hmac.compare_digest(expected, params["X-Amz-Signature"])
        ):
            self._send_s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
            return
        try:
            issued = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
            lifetime = int(expires)
        except ValueError:
            self._send_s3_error(
                400, "AuthorizationQueryParametersError", "Invalid X-Amz-Date or X-Amz-Expires"
            )
            return
        if emulator._now() > issued + lifetime:
            self._send_s3_error(
                403,
                "AccessDenied",
                "Request has expired",
                X_Amz_Expires=expires,
                Expires=datetime.fromtimestamp(issued + lifetime, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            return
        if "X-Amz-Security-Token" in params:
            session = emulator._session_state(params["X-Amz-Security-Token"])
            if session == "invalid":
                self._send_s3_error(
                    400, "InvalidToken", "The provided token is malformed or otherwise invalid."
                )
                return
            if session == "expired":
                self._send_s3_error(400, "ExpiredToken", "The provided token has expired.")
                return
        result = emulator._lookup(self.reference_id or "")
        if result is None or len(parts) != 2 or unquote(parts[1]) != result.info.filename:
            self._send_s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=path)
            return
        self._stream(result, self._success_fault(rolled))

    def _stream(self, result: _Result, fault: Fault | None) -> None:
        info, body = result.info, result.body
        start, end, status = 0, info.size, 200
        headers = {
            "Content-Type": _on_the_wire(info.content_type, info.header_charset),
            "ETag": info.etag,
            "Accept-Ranges": "bytes",
            "Last-Modified": self.date_time_string(int(time.time()) - 60),
            "x-amz-request-id": secrets.token_hex(8).upper(),
        }
        if info.content_disposition is not None:
            headers["Content-Disposition"] = _on_the_wire(info.content_disposition, info.header_charset)
        if info.content_encoding is not None:
            headers["Content-Encoding"] = info.content_encoding
        range_header = self.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, info.size)
            if parsed is None:
                self._send_s3_error(
                    416, "InvalidRange", "The requested range is not satisfiable", RangeRequested=range_header
                )
                return
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        total = end - start
        sent = 0
        try:
            if fault is not None and fault.kind == "overlong":
                self.close_connection = True
                headers["Transfer-Encoding"] = "chunked"
                self._start(status, headers, max(0, total - fault.extra))
                for chunk in body.chunks(start, end):
                    self.wfile.write(b"%x\r\n" % len(chunk))
                    self.wfile.write(chunk)
                    self.wfile.write(b"\r\n")
                    sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
                return
            if fault is not None and fault.kind == "content_length":
                self.close_connection = True
                self._start(status, headers, None, fault.length_values)
                for chunk in body.chunks(start, end):
                    self.wfile.write(chunk)
                    sent += len(chunk)
                return
            limit = total
            if fault is not None and fault.kind == "truncate":
                self.close_connection = True
                limit = min(total, total // 2 if fault.truncate_at is None else max(0, fault.truncate_at))
            self._start(status, headers, total)
            for chunk in body.chunks(start, start + limit):
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            self.close_connection = True
        finally:
            with self.emulator._lock:
                self.emulator._stats["bytes_served"] += sent


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    match = _RANGE_RE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        length = int(last)
        if length == 0:
            return None
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        return None
    return start, end


def _decode_basic(credentials: str) -> tuple[str | None, str | None]:
    """``Basic`` credentials → (client_id, client_secret), each form-urlencoded (RFC 6749 §2.3.1)."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    if ":" not in decoded:
        return None, None
    user, _, password = decoded.partition(":")
    try:
        return unquote_plus(user, errors="strict"), unquote_plus(password, errors="strict")
    except UnicodeDecodeError:
        return None, None


def _parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """Parse an urlencoded or multipart/form-data body into its first values."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("application/x-www-form-urlencoded", ""):
        try:
            parsed = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as error:
            raise ValueError("form body is not UTF-8") from error
        return {key: values[0] for key, values in parsed.items()}
    if media_type == "multipart/form-data":
        if "boundary=" not in content_type:
            raise ValueError("multipart body without boundary")
        header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
        if not message.is_multipart():
            raise ValueError("malformed multipart body")
        form: dict[str, str] = {}
        for part in message.iter_parts():
            if not isinstance(part, Message):
                continue
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                form.setdefault(name, payload.decode())
        return form
    raise ValueError(f"unsupported Content-Type {media_type!r}")


# --------------------------------------------------------------------------------------------------
# HTTP admin client, subprocess helpers, CLI
# --------------------------------------------------------------------------------------------------


class EmulatorAdmin:
    """Drives an emulator (usually in another process) through ``/_emulator/``; same API."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self._session = requests.Session()

    def _call(self, method: str, **arguments: Any) -> Any:
        response = self._session.post(
            f"{self.base_url}{ADMIN_PREFIX}{method}", json=arguments, timeout=self.timeout
        )
        if response.status_code != 200:
            raise RuntimeError(f"emulator admin {method} failed: {response.status_code} {response.text}")
        return response.json()["result"]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> EmulatorAdmin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_result(
        self,
        reference_id: str,
        *,
        size: int | None = None,
        content: bytes | None = None,
        filename: str = "result.csv",
        content_type: str = "text/csv",
        content_disposition: str | _Default | None = DEFAULT,
        ready_after_calls: int = 0,
        seed: int | None = None,
        content_encoding: str | None = None,
        header_charset: str = "latin-1",
    ) -> ResultInfo:
        arguments: dict[str, Any] = {
            "reference_id": reference_id,
            "size": size,
            "content": _encode_bytes(content),
            "filename": filename,
            "content_type": content_type,
            "ready_after_calls": ready_after_calls,
            "seed": seed,
            "content_encoding": content_encoding,
            "header_charset": header_charset,
        }
        if content_disposition is not DEFAULT:
            arguments["content_disposition"] = content_disposition
        return ResultInfo.from_dict(self._call("add_result", **arguments))

    def result_info(self, reference_id: str) -> ResultInfo | None:
        data = self._call("result_info", reference_id=reference_id)
        return None if data is None else ResultInfo.from_dict(data)

    def remove_result(self, reference_id: str) -> None:
        self._call("remove_result", reference_id=reference_id)

    def add_fault(self, fault: Fault) -> None:
        self._call("add_fault", fault=fault.to_dict())

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def faults(self) -> list[Fault]:
        return [Fault.from_dict(data) for data in self._call("faults")]

    def configure(self, **settings: Any) -> None:
        self._call("configure", **settings)

    def settings(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("settings"))

    def rotate_secret(self, new_secret: str) -> None:
        self._call("rotate_secret", new_secret=new_secret)

    def revoke_tokens(self) -> None:
        self._call("revoke_tokens")

    def set_scopes(self, scopes: list[str]) -> None:
        self._call("set_scopes", scopes=list(scopes))

    def advance_clock(self, seconds: float) -> None:
        self._call("advance_clock", seconds=seconds)

    def reset(self) -> None:
        self._call("reset")

    def stats(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("stats"))

    def requests_log(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self._call("requests_log"))

    def issued_tokens(self) -> list[str]:
        return cast("list[str]", self._call("issued_tokens"))

    def issued_signatures(self) -> list[str]:
        return cast("list[str]", self._call("issued_signatures"))

    def issued_url_credentials(self) -> list[str]:
        return cast("list[str]", self._call("issued_url_credentials"))


_REPO_ROOT = Path(__file__).resolve().parents[2]
_CLI_SETTINGS = {
    "client_id": "--client-id",
    "client_secret": "--client-secret",
    "latency_ms": "--latency-ms",
    "tls_cert_file": "--tls-cert-file",
    "tls_key_file": "--tls-key-file",
}


def spawn_emulator(
    host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 20.0, **settings: Any
) -> tuple[subprocess.Popen[str], EmulatorAdmin]:
    """Start ``python -m tests.support.tao_emulator`` in a child process; caller stops it."""
    command = [sys.executable, "-m", "tests.support.tao_emulator", "--host", host, "--port", str(port)]
    for name, flag in _CLI_SETTINGS.items():
        if name in settings:
            command += [flag, str(settings.pop(name))]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(command, cwd=_REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=startup_timeout)
        base_url = str(json.loads(line)["base_url"])
    except (queue.Empty, ValueError, KeyError) as error:
        _terminate(process)
        raise RuntimeError(f"emulator process did not start (exit code {process.poll()})") from error
    admin = EmulatorAdmin(base_url)
    admin.process = process
    if settings:
        admin.configure(**settings)
    return process, admin


def _terminate(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return int(process.returncode)


@contextlib.contextmanager
def running_emulator_process(**settings: Any) -> Iterator[EmulatorAdmin]:
    """An emulator in a child process for the duration of the block (``admin.process`` is it)."""
    process, admin = spawn_emulator(**settings)
    try:
        yield admin
    finally:
        admin.close()
        _terminate(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.tao_emulator", description=__doc__.split("\n")[0]
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
