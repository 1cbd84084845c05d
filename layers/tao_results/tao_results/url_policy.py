"""Which signed URLs may be fetched: checked before any connection is made.

A signed URL comes from a third party's answer; fetching it blindly would let that answer point
the function at the instance metadata service, a private network or any other host. Only hosts
matching the allow-list are contacted, over https (plain http only for a local http TAO stack).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from tao_results.errors import PermanentError

_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_FORBIDDEN_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


def redact_url(url: str) -> str:
    """The URL without its query string (which holds the signature): safe to log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if _safe_port(parts) else host
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?<redacted>" if parts.query else "")


def _safe_port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


@dataclass(frozen=True)
class SignedUrlPolicy:
    allowed_host_patterns: tuple[str, ...]
    allow_plain_http: bool

    def check(self, url: object) -> str:
        """Return ``url`` if it may be fetched, else raise ``PermanentError(signed_url_rejected)``."""
        if not isinstance(url, str) or not url:
            raise _rejected("the signed URL is not a non-empty string")
        if _FORBIDDEN_URL_CHARACTERS.search(url):
            raise _rejected("the signed URL contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for an invalid port
        except ValueError:
            raise _rejected("the signed URL cannot be parsed") from None
        allowed_schemes = ("https", "http") if self.allow_plain_http else ("https",)
        if parts.scheme not in allowed_schemes:
            raise _rejected(f"scheme {parts.scheme!r} is not allowed (allowed: {', '.join(allowed_schemes)})")
        if "@" in parts.netloc:
            raise _rejected("the signed URL carries userinfo")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise _rejected("the signed URL has no host")
        if not self.host_allowed(host):
            raise _rejected(f"host {host!r} is not in SIGNED_URL_ALLOWED_HOSTS")
        return url

    def host_allowed(self, host: str) -> bool:
        host = host.lower()
        if is_ip_literal(host):
            # An IP address is only trusted when it is listed literally: patterns never match one.
            literal = str(ipaddress.ip_address(host))
            return any(
                is_ip_literal(p) and str(ipaddress.ip_address(p.strip("[]"))) == literal
                for p in self.allowed_host_patterns
            )
        if not _HOST_NAME.match(host):
            return False
        return any(_name_matches(host, pattern) for pattern in self.allowed_host_patterns)


def _name_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def is_ip_literal(text: str) -> bool:
    """An IPv4 or IPv6 address (brackets allowed), as opposed to a host name."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _rejected(detail: str) -> PermanentError:
    return PermanentError("signed_url_rejected", detail)
