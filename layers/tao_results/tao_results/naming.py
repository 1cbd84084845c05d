"""Where a result lands: ``{prefix}{referenceId}/{filename}``, the filename made safe for a key."""

from __future__ import annotations

import re
import unicodedata
from email.message import Message
from urllib.parse import unquote, urlsplit

DEFAULT_FILENAME = "result"
MAX_FILENAME_BYTES = 200

_UNSAFE_CHARACTERS = re.compile(r"[^\w.\-()+,=@]+")


def object_key(prefix: str, reference_id: str, filename: str) -> str:
    return f"{prefix}{reference_id}/{filename}"


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


def _disposition_filename(header: str | None) -> str | None:
    if not header:
        return None
    message = Message()
    try:
        message["content-disposition"] = header
        filename = message.get_filename()
    except (ValueError, TypeError, LookupError):
        return None
    return filename if isinstance(filename, str) else None


def _url_filename(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    return unquote(path.rsplit("/", 1)[-1]) or None
