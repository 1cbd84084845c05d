"""Sending a signed URL's path and query exactly as issued, byte for byte.

Some signers check the literal request line, not its decoded meaning, so ``%7E`` must stay
``%7E`` and ``%2f`` must stay ``%2f``. Two layers would change it: requests re-quotes a URL when it
prepares a request (``requote_uri`` turns ``%7E`` into ``~``), and urllib3 upper-cases every
percent-escape before it writes the request line (``_encode_target``; urllib3 issues #1677, #3081:
intended, no switch). :class:`LiteralTargetAdapter` carries the literal target past both: the
fetcher sets ``PreparedRequest.url`` after preparing (skipping requests' re-quoting), the adapter
takes the target from that string as is, and its connection pools write that target in the request
line when urllib3's own encoding of it differs only in the case of its escapes.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# RFC 3986 request-target characters (path-abempty "?" query), escapes with either case of hex.
_VALID_TARGET = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")

_LITERAL_TARGET: ContextVar[str | None] = ContextVar("literal_target", default=None)


def request_target(url: str) -> str:
    """The request-target of ``url`` as written in it: path and query, fragment dropped.

    ``https://h/a%7e?b=%2f#x`` → ``/a%7e?b=%2f``; an empty path becomes ``/`` (RFC 9112 §3.2.1).
    Unlike ``PreparedRequest.path_url`` it neither collapses a leading ``//`` nor drops a bare ``?``.
    """
    without_fragment = url.split("#", 1)[0]
    _, separator, rest = without_fragment.partition("://")
    if not separator:
        return "/"
    starts = [index for index in (rest.find("/"), rest.find("?")) if index >= 0]
    target = rest[min(starts) :] if starts else ""
    if not target.startswith("/"):
        target = "/" + target
    return target


def sendable_literally(target: str) -> bool:
    """Whether ``target`` is an ASCII RFC 3986 request-target that can go on the wire unchanged."""
    return target.isascii() and _VALID_TARGET.fullmatch(target) is not None


class LiteralTargetPool(HTTPConnectionPool):
    """A pool that writes the caller's target in the request line instead of urllib3's re-encoding."""

    def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        token = _LITERAL_TARGET.set(url)
        try:
            return super().urlopen(method, url, *args, **kwargs)
        finally:
            _LITERAL_TARGET.reset(token)

    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        literal = _LITERAL_TARGET.get()
        # Only a case change of escapes is undone: any other difference means urllib3 had to
        # encode something, and then its encoding is the one that can be sent at all.
        if (
            literal is not None
            and literal != url
            and literal.upper() == url.upper()
            and sendable_literally(literal)
        ):
            url = literal
        return super()._make_request(conn, method, url, *args, **kwargs)


class LiteralTargetHTTPSPool(LiteralTargetPool, HTTPSConnectionPool):
    pass


class LiteralTargetAdapter(HTTPAdapter):
    """An adapter whose requests carry ``PreparedRequest.url``'s path and query byte for byte."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": LiteralTargetPool,
            "https": LiteralTargetHTTPSPool,
        }

    def request_url(self, request: PreparedRequest, proxies: Any) -> str:
        # The session ignores the environment (no proxies), so the target is always origin-form.
        return request_target(request.url or "")
