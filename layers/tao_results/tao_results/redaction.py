"""Keeps credentials out of every log line: known secret values and credential-shaped text."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

REDACTED = "***"
MIN_SECRET_LENGTH = 6
_MAX_REMEMBERED = 64

# Credential-shaped text we never want in a log line, whoever wrote it. Group 1 is kept.
_PATTERNS = (
    re.compile(r"(?i)((?:X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|Signature)=)[^&\s\"'<]+"),
    re.compile(r"(?i)(Bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"(?i)(\\?\"?(?:access_token|client_secret|SecretString)\\?\"?\s*[:=]\s*\\?\"?)[^\"\\&\s,}]+"),
)


class SecretRegistry:
    """Values that must never be printed (the client secret, issued tokens)."""

    def __init__(self) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._values[value] = None
            self._values.move_to_end(value)
            while len(self._values) > _MAX_REMEMBERED:
                self._values.popitem(last=False)

    def scrub(self, text: str) -> str:
        with self._lock:
            values = list(self._values)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(rf"\g<1>{REDACTED}", text)
        return text


SECRETS = SecretRegistry()
