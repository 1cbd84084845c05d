"""The function's standard output, kept apart from the runner's own lines and read for destinations.

In Lambda, whatever the function writes to stdout (its JSON log lines, its EMF metric documents)
goes to CloudWatch Logs, and so does what it writes to stderr (warnings, say). Run locally,
:class:`FunctionOutput` takes the place of both streams for the run:
every complete line goes to a sink of its own (a file, stderr, or nowhere) and the lines that say
where a message went are remembered, so the runner can print ``→ s3://bucket/key`` or
``→ DLQ (reason)`` per message. The lines it reads are the function's own (see
``tao_results.pipeline``): "Result copied" (``key``, ``correlation_id`` = the referenceId),
"Permanent failure, message dead-lettered" and "Transient failure, ..." (``reason``,
``message_id``). They are logged at INFO and above, so the function's log level must be INFO or
lower for destinations to be known.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from tao_results_cli.local.stats import InvocationOutcome, MessageEvent

COPIED = "Result copied"
# A redelivery whose result the bucket already holds (same source ETag and length): not uploaded.
ALREADY_STORED = "Result already stored, not uploaded again"
DEAD_LETTERED = "Permanent failure, message dead-lettered"
TRANSIENT = "Transient failure, the message will be retried"
UNEXPECTED = "Unexpected error, the message will be retried"


@dataclass(frozen=True)
class Destination:
    """Where the function said a message went: ``s3`` (``where`` = s3://bucket/key), ``dlq``, ``retry``."""

    kind: str
    where: str

    def arrow(self) -> str:
        return f"→ {self.where}"


class _LineWriter(io.TextIOBase):
    """A text stream that hands on whole lines; each thread's partial line is buffered apart
    (``print`` writes the text and the newline in two calls)."""

    def __init__(self) -> None:
        super().__init__()
        self._partial = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending: str = getattr(self._partial, "text", "") + text
        *complete, rest = pending.split("\n")
        self._partial.text = rest
        for line in complete:
            self.add_line(line)
        return len(text)

    def add_line(self, line: str) -> None:
        raise NotImplementedError


class FunctionOutput(_LineWriter):
    """A stand-in for ``sys.stdout``: whole lines to ``sink``, destinations remembered.

    Thread-safe: each thread's partial line is buffered apart (``print`` writes the text and the
    newline in two calls), and complete lines are written to the sink one at a time.
    """

    def __init__(self, sink: IO[str] | None, bucket: str | None = None) -> None:
        super().__init__()
        self.sink = sink
        self.bucket = bucket or "?"
        self.lines = 0
        self.metric_documents = 0
        self._lock = threading.Lock()
        self._copies: dict[str, deque[Destination]] = defaultdict(deque)  # by referenceId
        self._by_message: dict[str, Destination] = {}  # dead letters and retries, by messageId

    def flush(self) -> None:
        with self._lock:
            if self.sink is not None:
                self.sink.flush()

    def add_line(self, line: str) -> None:
        """One complete line of the function's output (without its newline)."""
        record = _json_object(line)
        with self._lock:
            self.lines += 1
            if record is not None:
                self._remember(record)
            if self.sink is not None:
                self.sink.write(line + "\n")

    def _remember(self, record: dict[str, Any]) -> None:
        if "_aws" in record:
            self.metric_documents += 1
            return
        message = record.get("message")
        if message in (COPIED, ALREADY_STORED) and isinstance(record.get("key"), str):
            reference = str(record.get("correlation_id"))
            where = f"s3://{self.bucket}/{record['key']}"
            if message == ALREADY_STORED:
                where += " (already stored, not uploaded again)"
            self._copies[reference].append(Destination("s3", where))
        elif message in (DEAD_LETTERED, TRANSIENT) and record.get("message_id"):
            reason = str(record.get("reason") or "?")
            status = record.get("http_status")
            why = f"{reason}, HTTP {status}" if status else reason
            destination = (
                Destination("dlq", f"DLQ ({why})")
                if message == DEAD_LETTERED
                else Destination("retry", f"retry ({why})")
            )
            self._by_message[str(record["message_id"])] = destination

    def destination(self, message_id: str, reference_id: str | None) -> Destination | None:
        """What the function logged for this message's last invocation (each line is used once)."""
        with self._lock:
            found = self._by_message.pop(message_id, None)
            if found is not None:
                return found
            copies = self._copies.get(str(reference_id))
            return copies.popleft() if copies else None


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Terminal(NamedTuple):
    """The real streams, for the runner's own lines while the function's output is captured."""

    stdout: IO[str]
    stderr: IO[str]


class _SecondStream(_LineWriter):
    """``sys.stderr``'s stand-in: whole lines into the same :class:`FunctionOutput` as stdout.

    Lambda sends both streams to the function's log stream; a line buffer of its own keeps a
    partial stdout line and a warning written meanwhile from being glued together.
    """

    def __init__(self, output: FunctionOutput) -> None:
        super().__init__()
        self._output = output

    def add_line(self, line: str) -> None:
        self._output.add_line(line)

    def flush(self) -> None:
        self._output.flush()


@contextmanager
def capturing_function_output(output: FunctionOutput) -> Iterator[Terminal]:
    """Route ``sys.stdout`` and ``sys.stderr`` to ``output`` for the block, as Lambda sends both to
    the log stream; yields the real streams for the runner's own lines.

    Whatever the function writes to stderr is its output too: Python warnings (Powertools' "No
    application metrics to publish" is a ``UserWarning``), ``logging``'s last-resort handler for a
    library logger without handlers, a stray ``print(file=sys.stderr)``. So ``--function-logs none``
    drops them with the rest. A Powertools logger keeps the stream it found when it was created;
    one created before the block (a logger configured earlier in this process) is pointed at
    ``output`` too, and back afterwards.
    """
    real = Terminal(sys.stdout, sys.stderr)
    sys.stdout = output
    sys.stderr = _SecondStream(output)
    moved = _point_stream_handlers(real.stdout, output)
    try:
        yield real
    finally:
        sys.stdout, sys.stderr = real.stdout, real.stderr
        for handler in moved:
            handler.setStream(real.stdout)
        _point_stream_handlers(output, real.stdout)


def _point_stream_handlers(
    old: IO[str] | io.TextIOBase, new: IO[str] | io.TextIOBase
) -> list[logging.StreamHandler[Any]]:
    moved = []
    loggers = [logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)
                moved.append(handler)
    return moved


def where_it_went(event: MessageEvent, output: FunctionOutput) -> tuple[str, str]:
    """(kind, text) for one ``MessageEvent``: ``s3``, ``dlq``, ``retry``, ``kept`` or ``unknown``.

    ``kept``: the invocation failed as a whole (raised, timed out, answered nonsense), so SQS will
    deliver every message of the batch again.
    """
    said = output.destination(event.message_id, event.reference_id)
    if event.outcome == InvocationOutcome.DELETED:
        if said is not None and said.kind in ("s3", "dlq"):
            return said.kind, said.arrow()
        return "unknown", "→ done (the function logged no destination: log level above INFO?)"
    if event.outcome == InvocationOutcome.RETRY:
        return "retry", (said.arrow() if said is not None else "→ retry") + ", SQS delivers it again"
    if event.outcome == InvocationOutcome.DELETE_FAILED:
        where = said.arrow() if said is not None else "→ done"
        return "kept", f"{where}, but DeleteMessage failed: SQS delivers it again"
    return "kept", f"→ back to the queue: {event.outcome.value} ({event.detail})"
