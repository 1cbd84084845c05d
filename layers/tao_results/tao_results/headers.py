"""What a storage answer's headers say, checked against their grammar before anything uses them.

The values end up on the S3 object (``Content-Type``, ``Content-Encoding``) that people later open
through presigned links, or size the download (``Content-Length``), so only values that match
RFC 9110's grammar exactly are kept; anything else is replaced by a safe default or refused.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tao_results.classification import INVALID_STORAGE_RESPONSE
from tao_results.errors import PermanentError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_MEDIA_TYPE_CHARACTERS = 255
MAX_CONTENT_ENCODING_CHARACTERS = 64

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string (ASCII only: obs-text is not kept), §5.6.3 OWS.
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED_STRING = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_OWS = r"[ \t]*"
# RFC 9110 §8.3.1: media-type = type "/" subtype parameters; parameters = *( OWS ";" OWS [ parameter ] )
_MEDIA_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}(?:{_OWS};{_OWS}(?:{_TCHARS}=(?:{_TCHARS}|{_QUOTED_STRING}))?)*"
)
# RFC 9110 §8.4: Content-Encoding = #content-coding; content-coding = token
_CONTENT_CODINGS = re.compile(rf"{_TCHARS}(?:{_OWS},{_OWS}{_TCHARS})*")
# RFC 9110 §8.6: Content-Length = 1*DIGIT; we also bound it to 19 digits (it must fit in an int64).
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")


def media_type(value: str | None) -> str:
    """``value`` if it is an ASCII RFC 9110 media-type of at most 255 characters, else octet-stream.

    Parameters are kept as sent (``text/csv; charset=utf-8``); surrounding whitespace is dropped.
    A value with CR/LF, non-ASCII characters, stray quotes or no subtype is replaced, so nothing
    that reaches the object's ``Content-Type`` can split a header or smuggle markup.
    """
    text = (value or "").strip(" \t")
    if len(text) <= MAX_MEDIA_TYPE_CHARACTERS and _MEDIA_TYPE.fullmatch(text):
        return text
    return DEFAULT_CONTENT_TYPE


def content_encoding(value: str | None) -> str | None:
    """The codings of an RFC 9110 ``Content-Encoding`` list (``gzip``, ``br``, ``gzip, br``), or None.

    None when absent, ``identity`` (RFC 9110 §8.4.1: no encoding) or not a valid token list: a
    value we cannot vouch for is not written on the object.
    """
    text = (value or "").strip(" \t")
    if not text or len(text) > MAX_CONTENT_ENCODING_CHARACTERS or not _CONTENT_CODINGS.fullmatch(text):
        return None
    codings = [coding.strip(" \t") for coding in text.split(",")]
    kept = [coding for coding in codings if coding.lower() != "identity"]
    return ", ".join(kept) or None


def content_length(value: str | None) -> int | None:
    """The byte count of a ``Content-Length`` header, None when absent.

    Raises ``PermanentError(invalid_storage_response)`` unless every comma-separated value (two
    header lines arrive joined as ``5, 5``) is 1-19 ASCII digits and all of them are equal
    (RFC 9112 §6.3: an invalid Content-Length makes the framing unrecoverable). Signs, ``_``,
    ``0x``, Unicode digits such as ``²`` and conflicting duplicates are all refused.
    """
    if value is None:
        return None
    values = {part.strip(" \t") for part in value.split(",")}
    if len(values) != 1 or not all(_CONTENT_LENGTH.fullmatch(part) for part in values):
        raise PermanentError(
            INVALID_STORAGE_RESPONSE.reason,
            f"storage answered an invalid Content-Length {value[:40]!r} (RFC 9110 §8.6: 1*DIGIT)",
            200,
        )
    return int(values.pop())


def header_text(value: str | None) -> str | None:
    """A header value as its sender wrote it: raw UTF-8 bytes are read as UTF-8, not Latin-1.

    http.client decodes header bytes as ISO-8859-1, so a raw UTF-8 ``filename="résultat.csv"``
    arrives as ``rÃ©sultat.csv``. Bytes that are valid UTF-8 are decoded as such; anything else
    keeps its Latin-1 reading (RFC 9110 §5.5: obs-text is opaque, Latin-1 is the historic charset).
    """
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def parse_retry_after(value: str | None, ceiling: float = 900.0) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), within ``[0, ceiling]``."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), ceiling)
