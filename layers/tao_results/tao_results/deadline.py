"""The time an invocation has left, minus a safety margin, so work stops cleanly before Lambda kills it."""

from __future__ import annotations

import time
from collections.abc import Callable

from tao_results.errors import TransientError


class Deadline:
    def __init__(self, expires_at: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._expires_at = expires_at
        self._clock = clock

    @classmethod
    def from_context(cls, context: object, margin_seconds: float) -> Deadline:
        """From a Lambda context's ``get_remaining_time_in_millis`` (no context: 15 minutes)."""
        remaining_ms = getattr(context, "get_remaining_time_in_millis", lambda: 900_000)()
        return cls(time.monotonic() + remaining_ms / 1000.0 - margin_seconds)

    def remaining(self) -> float:
        return self._expires_at - self._clock()

    def allows(self, seconds: float) -> bool:
        return self.remaining() > seconds

    def check(self, stage: str) -> None:
        if self.remaining() <= 0:
            raise TransientError("deadline", f"stopped the {stage} before the invocation's deadline")
