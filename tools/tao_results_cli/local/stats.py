"""What the local event source mapping observed, per message and per referenceId (thread-safe)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class InvocationOutcome(StrEnum):
    """What happened to one message after one invocation."""

    DELETED = "deleted"  # the handler succeeded for it and it was deleted from the queue
    RETRY = "retry"  # listed in batchItemFailures: left for SQS to redeliver
    HANDLER_ERROR = "handler_error"  # the handler raised: the whole batch is kept
    INVALID_ANSWER = "invalid_answer"  # the answer was malformed: the whole batch is kept
    TIMEOUT = "timeout"  # the handler ran past the function timeout: the whole batch is kept
    DELETE_FAILED = "delete_failed"  # succeeded, but DeleteMessageBatch kept failing for it


@dataclass
class MessageStats:
    """One message across all the times it was received."""

    message_id: str
    reference_id: str | None
    body: str
    attempts: int = 0  # the highest ApproximateReceiveCount seen
    invocations: int = 0
    durations_ms: list[float] = field(default_factory=list)
    outcome: InvocationOutcome | None = None
    first_seen: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)

    @property
    def settled(self) -> bool:
        return self.outcome in (InvocationOutcome.DELETED, InvocationOutcome.DELETE_FAILED)


@dataclass(frozen=True)
class MessageEvent:
    """Passed to ``on_message`` hooks after each invocation, once per message of the batch."""

    message_id: str
    reference_id: str | None
    receive_count: int
    outcome: InvocationOutcome
    duration_ms: float
    request_id: str
    detail: str | None = None


@dataclass(frozen=True)
class InvocationEvent:
    """Passed to ``on_invocation`` hooks: one handler call and what was done with its batch."""

    request_id: str
    message_ids: tuple[str, ...]
    duration_ms: float
    deleted: int
    kept: int
    error: str | None = None


MessageHook = Callable[[MessageEvent], None]
InvocationHook = Callable[[InvocationEvent], None]


class RunStats:
    """Counters and per-message records, safe to read while pollers update them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: dict[str, MessageStats] = {}
        self.invocations = 0
        self.handler_errors = 0
        self.receive_errors = 0
        self.started = time.monotonic()

    def record_received(
        self, message_id: str, body: str, reference_id: str | None, receive_count: int
    ) -> None:
        with self._lock:
            stats = self._messages.get(message_id)
            if stats is None:
                stats = self._messages[message_id] = MessageStats(message_id, reference_id, body)
            stats.attempts = max(stats.attempts, receive_count)
            stats.last_seen = time.time()

    def record_outcome(self, message_id: str, outcome: InvocationOutcome, duration_ms: float) -> None:
        with self._lock:
            stats = self._messages[message_id]
            stats.invocations += 1
            stats.durations_ms.append(duration_ms)
            if stats.outcome not in (InvocationOutcome.DELETED, InvocationOutcome.DELETE_FAILED):
                stats.outcome = outcome  # a late answer from an older delivery does not undo a settle

    def record_invocation(self, *, failed: bool) -> None:
        with self._lock:
            self.invocations += 1
            self.handler_errors += int(failed)

    def record_receive_error(self) -> None:
        with self._lock:
            self.receive_errors += 1

    def messages(self) -> list[MessageStats]:
        """A snapshot of every message seen, in the order first received."""
        with self._lock:
            return list(self._messages.values())

    def message(self, message_id: str) -> MessageStats | None:
        with self._lock:
            return self._messages.get(message_id)

    def by_reference(self) -> dict[str | None, list[MessageStats]]:
        """Messages grouped by referenceId (``None`` for bodies that carry none)."""
        grouped: dict[str | None, list[MessageStats]] = {}
        for stats in self.messages():
            grouped.setdefault(stats.reference_id, []).append(stats)
        return grouped

    def count(self, outcome: InvocationOutcome) -> int:
        return sum(1 for stats in self.messages() if stats.outcome == outcome)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
