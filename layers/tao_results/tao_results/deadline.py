"""The time an invocation has left, minus a safety margin, so work stops cleanly before Lambda kills it.

Three horizons, all measured on ``time.monotonic``:

* the *work* deadline: Lambda's remaining time minus the margin. Copies, token and API calls,
  part-buffer waits and every AWS attempt stop here (:meth:`Deadline.check`, :meth:`budget`);
* the *cleanup* deadline (:meth:`Deadline.for_cleanup`): half the margin later. Aborting a multipart
  upload, dead-lettering and setting a retry backoff run against it, after the work has stopped;
* the *abandon* horizon (:meth:`Deadline.abandon_in`): three quarters of the margin later. The handler
  stops waiting for a record at this point whatever it is doing, so it always returns before
  Lambda's timeout; the last quarter is left for Powertools' flush and the response.

The deadline of the record a thread works on is published in a context variable
(:func:`deadline_scope`), so the HTTP and AWS edges (``http.send``, the botocore hook in ``aws``)
bound their calls by it without every signature in between carrying it.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tao_results.errors import TransientError

DEFAULT_REMAINING_MS = 900_000
# DEADLINE_MARGIN_SECONDS is clamped to this fraction of the invocation's time: a 20 s margin on a
# 15 s function would leave no time to work at all.
MAX_MARGIN_FRACTION = 1 / 2

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("tao_deadline", default=None)


class Deadline:
    def __init__(
        self, expires_at: float, clock: Callable[[], float] = time.monotonic, margin: float = 0.0
    ) -> None:
        self._expires_at = expires_at
        self._clock = clock
        self.margin = margin

    @classmethod
    def from_context(cls, context: object, margin_seconds: float) -> Deadline:
        """From a Lambda context's ``get_remaining_time_in_millis`` (no context: 15 minutes).

        The margin is at most :data:`MAX_MARGIN_FRACTION` of the remaining time (see
        :func:`effective_margin`).
        """
        remaining = remaining_seconds(context)
        margin = effective_margin(margin_seconds, remaining)
        return cls(time.monotonic() + remaining - margin, margin=margin)

    def remaining(self) -> float:
        return self._expires_at - self._clock()

    def allows(self, seconds: float) -> bool:
        return self.remaining() > seconds

    def check(self, stage: str) -> None:
        if self.remaining() <= 0:
            raise TransientError("deadline", f"stopped the {stage} before the invocation's deadline")

    def budget(self, ceiling: float, stage: str) -> float:
        """Seconds a blocking step may take: ``min(ceiling, remaining)``; TransientError when none is left."""
        self.check(stage)
        return min(ceiling, self.remaining())

    def for_cleanup(self) -> Deadline:
        """The deadline for cleanup after the work stopped: half the margin later."""
        return Deadline(self._expires_at + self.margin / 2, self._clock)

    def abandon_in(self) -> float:
        """Seconds until the handler must stop waiting for a record (three quarters of the margin late)."""
        return self.remaining() + self.margin * 0.75


def remaining_seconds(context: object) -> float:
    """``context.get_remaining_time_in_millis()`` in seconds (15 minutes without a context)."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    remaining_ms = getter() if callable(getter) else DEFAULT_REMAINING_MS
    return float(remaining_ms) / 1000.0


def effective_margin(margin_seconds: float, invocation_seconds: float) -> float:
    """``margin_seconds``, clamped to ``MAX_MARGIN_FRACTION * invocation_seconds``."""
    return min(margin_seconds, max(invocation_seconds, 0.0) * MAX_MARGIN_FRACTION)


def current_deadline() -> Deadline | None:
    """The deadline of the record this thread works on, if any (see :func:`deadline_scope`)."""
    return _current.get()


@contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Publish ``deadline`` to the HTTP and AWS edges for the duration of the block, in this thread.

    ``loop.run_in_executor`` and ``Executor.submit`` do not copy context variables: set it in the
    function the worker thread runs.
    """
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)
