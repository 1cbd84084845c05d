"""The emulator's knobs (``TaoEmulator(**settings)``, ``configure(**settings)``).

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

``echo_credentials`` (False): every error answer of the token endpoint, the Download API and the
storage quotes what the request carried (its ``Authorization`` value, its query string, its form
body, decoded), as gateways and WAFs do. The quote cycles through the forms an echo takes: raw,
JSON-escaped (ASCII), percent-encoded, JSON-escaped twice, PHP's JSON (``\\/``), ``\\u00XX`` for
every non-alphanumeric character, XML numeric references; it goes in the JSON ``message``, in the
S3 XML ``Message`` (XML-escaped), or after a text body. ``stats()["echoed_errors"]`` counts them.
``tls_cert_file``/``tls_key_file`` ("": plain HTTP; PEM paths, read by ``start()``): unlike
``serve_tls``, the main listener itself serves TLS, admin API included, ``base_url`` starts with
``https://`` and so do the signed URLs it issues (the benchmarks' TLS-on-both-legs runs).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tao_emulator.faults import RANDOM_FAULT_KINDS
from tao_emulator.tokens import _EXPIRES_IN_FORMS, TOKEN_AUTH_METHODS, TOKEN_REJECTIONS


@dataclasses.dataclass
class Settings:
    """The knobs with their defaults (the one place they are written; the CLI takes its defaults
    from here); each is described in the module docstring."""

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


#: The settings ``python -m tao_emulator`` takes as options (``--client-id`` for ``client_id``), with
#: their metavar and help; the option's type and default are the field's. The rest are set through
#: ``configure``. The TLS files are here because ``start()`` reads them, before any admin call.
CLI_SETTINGS: dict[str, tuple[str, str]] = {
    "client_id": ("ID", "the OAuth2 client_id the token endpoint accepts"),
    "client_secret": ("SECRET", "the client_secret it accepts with it"),
    "latency_ms": (
        "MS",
        "milliseconds slept before every token, Download API and storage answer (not admin calls)",
    ),
    "token_expires_in": (
        "SECONDS",
        "seconds an issued access token lives (its expires_in), on the emulator's clock",
    ),
    "signed_url_ttl": (
        "SECONDS",
        "seconds an issued signed URL stays valid (X-Amz-Expires), on the emulator's clock",
    ),
    "tls_cert_file": (
        "PEM",
        "serve HTTPS, admin API included, with this certificate (chain) file; empty: plain HTTP",
    ),
    "tls_key_file": (
        "PEM",
        "the private key file of --tls-cert-file; empty: the key is in the certificate file",
    ),
}


def cli_flag(name: str) -> str:
    """The CLI option of a setting: ``client_id`` -> ``--client-id``."""
    return "--" + name.replace("_", "-")


_SETTING_CHOICES: dict[str, frozenset[str]] = {
    "signature_scope": frozenset(["decoded", "literal"]),
    "signed_url_escapes": frozenset(["upper", "lower"]),
    "signed_url_tilde": frozenset(["raw", "escaped"]),
}
