"""The result's filename, made safe to be one segment of an S3 key (the key itself: key_template)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote, urlsplit

DEFAULT_FILENAME = "result"
MAX_FILENAME_BYTES = 200

_UNSAFE_CHARACTERS = re.compile(r"[^\w.\-()+,=@]+")


def result_filename(content_disposition: str | None, signed_url: str) -> str:
    """The filename from ``Content-Disposition``, else the URL's last path segment, else ``result``."""
    for candidate in (_disposition_filename(content_disposition), _url_filename(signed_url)):
        safe = sanitize_filename(candidate)
        if safe:
            return safe
    return DEFAULT_FILENAME


def sanitize_filename(name: str | None) -> str | None:
    """A single key segment: no separators or control characters, bounded length; None if empty."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE_CHARACTERS.sub("_", name).strip("._")
    if not name:
        return None
    return _truncate_keeping_extension(name)


def _truncate_keeping_extension(name: str) -> str:
    if len(name.encode()) <= MAX_FILENAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > 16:
        stem, extension = name, ""
    budget = MAX_FILENAME_BYTES - len(extension.encode()) - (1 if extension else 0)
    stem = stem.encode()[:budget].decode(errors="ignore")
    return f"{stem}.{extension}" if extension else stem


# RFC 6266 §4.1 disposition parameters: token "=" ( token / quoted-string ), OWS around ";" and "=".
_DISPOSITION_PARAMETER = re.compile(
    r';[ \t]*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^;]*)', re.DOTALL
)
# RFC 8187 §3.2.1 ext-value: charset "'" [ language ] "'" value-chars
_EXT_VALUE = re.compile(r"([!#$%&+\-^_`{}~0-9A-Za-z]+)'[^']*'(.*)", re.DOTALL)
# RFC 8187 §3.2.1 attr-char: what filename*= carries unencoded.
_ATTR_CHARS = "!#$&+-.^_`|~"


def _disposition_filename(header: str | None) -> str | None:
    """The filename of a ``Content-Disposition`` (RFC 6266): ``filename*`` (RFC 8187) if it decodes,
    else ``filename`` (a quoted-string or token, raw UTF-8 already decoded by the caller).
    """
    if not header:
        return None
    parameters: dict[str, str] = {}
    for name, raw in _DISPOSITION_PARAMETER.findall(header):
        value = raw.strip(" \t")
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
        parameters.setdefault(name.lower(), value)
    extended = _decode_ext_value(parameters.get("filename*"))
    return extended or parameters.get("filename") or None


def _decode_ext_value(value: str | None) -> str | None:
    match = _EXT_VALUE.fullmatch(value or "")
    if match is None:
        return None
    charset = match.group(1).lower()
    if charset not in ("utf-8", "iso-8859-1"):  # the two RFC 8187 §3.2.1 requires
        return None
    try:
        return unquote(match.group(2), encoding=charset, errors="strict")
    except (UnicodeDecodeError, LookupError):
        return None


def object_content_disposition(filename: str) -> str:
    """``attachment; filename="<ASCII fallback>"; filename*=UTF-8''<pct-encoded>`` (RFC 6266 §4.3).

    ``filename`` is a sanitised name (:func:`sanitize_filename`). The fallback keeps its ASCII
    letters (accents stripped: ``résultat.csv`` → ``resultat.csv``), other characters become
    ``_``; ``filename*`` (RFC 8187) carries the exact UTF-8 name. ``attachment`` makes a browser
    opening a presigned link save the file rather than render it (HTML, SVG).
    """
    decomposed = unicodedata.normalize("NFKD", filename)
    ascii_name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    fallback = re.sub(r"[^A-Za-z0-9.\-()+,=@_]", "_", ascii_name) or DEFAULT_FILENAME
    encoded = quote(filename, safe=_ATTR_CHARS, encoding="utf-8")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _url_filename(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    return unquote(path.rsplit("/", 1)[-1]) or None
