"""Keeps credentials out of every log line, trace and dead letter, in every form an upstream echoes.

Two defences, applied by :meth:`SecretRegistry.scrub` in this order:

* Known values. The current client secret and the current access token are *pinned*: replaced when
  they change, never evicted. Older tokens and the credential values of every signed URL received
  (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``, SigV2 ``Signature`` and
  ``AWSAccessKeyId``, Azure SAS ``sig``, GCS ``X-Goog-*``) live in a bounded LRU. Each value is
  matched raw, JSON-escaped (RFC 8259, ASCII-only or not, once or twice), percent-encoded
  (RFC 3986 and ``application/x-www-form-urlencoded``, upper- or lower-case hex), XML/HTML-escaped,
  and a pinned value also inside a Base64 ``Authorization: Basic`` value (RFC 7617).
* Credential-shaped text, whoever wrote it: signed-URL query parameters, ``Bearer``/``Basic``
  values, ``access_token``/``client_secret``-like fields.

Callers scrub the whole text first and only then cut it to a length (:func:`scrub_and_cut`): a cut
through a secret leaves a prefix that no longer matches.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections import OrderedDict
from urllib.parse import SplitResult, parse_qsl, quote, quote_plus, unquote, unquote_plus, urlsplit

REDACTED = "***"
# What a whole text becomes when a credential survives in it in a form we do not mask piece by piece.
WITHHELD = "[withheld: this text quoted a credential in an encoded form]"
MIN_SECRET_LENGTH = 6
RECENT_CAPACITY = 256
"""Older tokens and URL credentials remembered (values, not forms): ~30 URLs per invocation."""

CLIENT_SECRET = "client_secret"  # noqa: S105 - a slot name, not a secret
ACCESS_TOKEN = "access_token"  # noqa: S105 - a slot name, not a secret

# Query parameters of presigned URLs whose values are credentials (AWS SigV4/SigV2, GCS, Azure SAS).
SIGNED_URL_CREDENTIAL_PARAMETERS = frozenset(
    name.lower()
    for name in (
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "Signature",
        "AWSAccessKeyId",
        "x-amz-security-token",
        "X-Goog-Signature",
        "X-Goog-Credential",
        "sig",
    )
)

_QUERY_CREDENTIAL = (
    r"(?:X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|X-Goog-Signature|X-Goog-Credential"
    r"|AWSAccessKeyId|Signature|sig)"
)
# Credential-shaped text we never want anywhere, whoever wrote it. Group 1 is kept.
_PATTERNS = (
    re.compile(rf"(?i)(?<![A-Za-z0-9_])({_QUERY_CREDENTIAL}(?:=|%3D|\\u003d))[^&\s\"'<>\\]+"),
    re.compile(r"(?i)(Bearer(?:\s+|%20|\+))[A-Za-z0-9\-._~+/%]+=*"),
    re.compile(r"(?i)(Basic(?:\s+|%20|\+))[A-Za-z0-9+/%]+=*"),
    re.compile(
        r"(?i)(\\*\"?(?:access_token|refresh_token|id_token|client_secret|SecretString|password)"
        r"\\*\"?\s*(?:[:=]|%3D)\s*\\*\"?)[^\"\\&\s,}]+"
    ),
)


def _percent_lower(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group(0).lower(), text)


def _json_escaped(text: str) -> set[str]:
    once = {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    twice = {json.dumps(form)[1:-1] for form in once}
    return once | twice


# One pass over JSON's escapes: ``\\uXXXX`` and any backslash-escaped character (``\\/``, ``\\"``).
_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.))", re.DOTALL)
_MAX_DECODED_VARIANTS = 24


def _unescape_json(text: str) -> str:
    return _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), text)


def decoded_variants(text: str) -> set[str]:
    """``text`` with the escapes an upstream may apply to an echo undone, alone and combined.

    JSON's ``\\uXXXX`` and backslash escapes (``\\/`` as PHP writes, ``\\"``), HTML/XML character
    references (``&#34;``, ``&#x22;``, ``&quot;``) and percent-encoding (with and without ``+`` as a
    space), up to three layers deep. The set is bounded; it includes ``text`` itself.
    """
    decoders = (
        _unescape_json,
        html.unescape,
        unquote,
        unquote_plus,
    )
    variants, frontier = {text}, [text]
    for _ in range(3):
        following = []
        for variant in frontier:
            for decode in decoders:
                decoded = decode(variant)
                if decoded not in variants and len(variants) < _MAX_DECODED_VARIANTS:
                    variants.add(decoded)
                    following.append(decoded)
        frontier = following
    return variants


def _base64_fragments(data: bytes) -> set[str]:
    """The Base64 characters that depend on ``data`` alone, for each of its 3 possible alignments.

    Wherever ``data`` sits inside a Base64-encoded text (e.g. ``client_id:client_secret``), the
    characters between its first and last full sextet are one of these three strings.
    """
    fragments = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data + b"\0\0").decode("ascii")
        first = -(-offset * 8 // 6)  # ceil
        last = (offset + len(data)) * 8 // 6  # exclusive
        fragments.add(encoded[first:last])
    return fragments


def forms_of(value: str, *, basic: bool = False) -> frozenset[str]:
    """Every form of ``value`` we match: raw, JSON-, URL-, XML-escaped (and Base64 if ``basic``)."""
    url_forms = {quote(value, safe=""), quote(value), quote_plus(value)}
    base = {value, html.escape(value), html.escape(value, quote=False)}
    base |= url_forms | {_percent_lower(form) for form in url_forms}
    forms = set(base)
    for form in base:
        forms |= _json_escaped(form)
    if basic:
        for raw in {value, quote_plus(value)}:
            forms |= _base64_fragments(raw.encode("utf-8"))
    return frozenset(form for form in forms if len(form) >= MIN_SECRET_LENGTH)


class SecretRegistry:
    """Values that must never be printed: pinned (current secret and token) and recently seen."""

    def __init__(self, capacity: int = RECENT_CAPACITY) -> None:
        self._capacity = capacity
        self._pinned: dict[str, str] = {}
        # Recent value → its forms, computed once (a rebuild happens on every signed URL).
        self._recent: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()
        self._forms: tuple[str, ...] = ()
        self._values: tuple[str, ...] = ()

    def pin(self, slot: str, value: str) -> None:
        """Make ``value`` the current one of ``slot``; the value it replaces joins the recent ones."""
        with self._lock:
            previous = self._pinned.get(slot)
            if previous == value:
                return
            self._pinned[slot] = value
            self._recent.pop(value, None)
            if previous is not None:
                self._remember(previous)
            self._rebuild()

    def add(self, value: str) -> None:
        """Remember ``value`` among the recent ones (bounded: the oldest is forgotten first)."""
        with self._lock:
            if value in self._pinned.values():
                return
            self._remember(value)
            self._rebuild()

    def add_all(self, values: list[str]) -> None:
        with self._lock:
            for value in values:
                if value not in self._pinned.values():
                    self._remember(value)
            self._rebuild()

    def pinned(self, slot: str) -> str | None:
        with self._lock:
            return self._pinned.get(slot)

    def scrub(self, text: str, withheld: str = WITHHELD) -> str:
        """``text`` with every known value (in each of its forms) and credential-shaped text masked.

        The forms cover the usual encodings of an echo; an upstream may use others (any mix of
        JSON, XML and percent escapes). So the masked text is decoded once more every way we know
        (:func:`decoded_variants`): if a known value still shows, the whole text is ``withheld``.
        """
        for form in self._forms:  # longest first: a form may contain a shorter one
            if form in text:
                text = text.replace(form, REDACTED)
        # Before the patterns: they may mask a prefix of an encoded value and hide the rest from us.
        values = self._values
        if values and any(value in variant for variant in decoded_variants(text) for value in values):
            return withheld
        for pattern in _PATTERNS:
            text = pattern.sub(rf"\g<1>{REDACTED}", text)
        return text

    def _remember(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH:
            return
        if value not in self._recent:
            self._recent[value] = forms_of(value)
        self._recent.move_to_end(value)
        while len(self._recent) > self._capacity:
            self._recent.popitem(last=False)

    def _rebuild(self) -> None:
        forms: set[str] = set()
        for value in self._pinned.values():
            if len(value) >= MIN_SECRET_LENGTH:
                forms |= forms_of(value, basic=True)
        for value_forms in self._recent.values():
            forms |= value_forms
        # Replaced atomically: scrub() reads them without the lock.
        self._forms = tuple(sorted(forms, key=len, reverse=True))
        self._values = tuple(
            value for value in (*self._pinned.values(), *self._recent) if len(value) >= MIN_SECRET_LENGTH
        )


SECRETS = SecretRegistry()


def scrub_and_cut(text: str, limit: int) -> str:
    """Scrub the whole ``text``, then keep at most ``limit`` characters of it."""
    return SECRETS.scrub(text)[:limit]


def register_signed_url(url: object) -> None:
    """Remember the credential values in a signed URL's query, as soon as the URL arrives.

    Covers SigV4 (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``), SigV2
    (``Signature``, ``AWSAccessKeyId``), GCS V4 (``X-Goog-*``) and Azure SAS (``sig``); the storage
    may echo any of them in an error body. Anything that is not a parseable string is ignored.
    """
    if not isinstance(url, str):
        return
    try:
        query = urlsplit(url).query
    except ValueError:
        query = url.partition("?")[2]
    values = [
        value
        for name, value in parse_qsl(query, keep_blank_values=False)
        if name.lower() in SIGNED_URL_CREDENTIAL_PARAMETERS
    ]
    # As sent, too: a '+' that parse_qsl turns into a space is still a '+' in an echoed query.
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if value and name.lower() in SIGNED_URL_CREDENTIAL_PARAMETERS:
            values.append(value)
    if values:
        SECRETS.add_all(values)


def redact_url(url: str) -> str:
    """The URL without its query string (which holds the signature): safe to log.

    ``https://h:8443/a/b.csv?X-Amz-Signature=…`` → ``https://h:8443/a/b.csv?<redacted>``; an IPv6
    host keeps its brackets; a URL that cannot be parsed becomes ``<unparseable URL>``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if _safe_port(parts) else host
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?<redacted>" if parts.query else "")


def _safe_port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None
