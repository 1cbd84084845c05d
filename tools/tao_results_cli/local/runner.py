"""A local SQS event source mapping: poll a queue, invoke a handler as Lambda would, settle the batch.

It does what Lambda's poller does and nothing more. N pollers long-poll the queue, build the SQS
event exactly as Lambda does, call the handler with a Lambda-like context, then delete every message
not listed in ``batchItemFailures``. If the handler raises, times out or answers something malformed,
nothing is deleted. Visibility is never changed here: SQS's visibility timeout brings failed
messages back and its redrive policy (``maxReceiveCount``) moves the ones that keep failing to the
dead-letter queue, exactly as in AWS. Works against any endpoint, AWS included.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tao_results_cli.aws import queue_account, queue_arn, queue_region, sqs_client
from tao_results_cli.local.context import (
    FunctionSettings,
    lambda_environment,
    log_stream_name,
    new_context,
)
from tao_results_cli.local.events import read_batch_answer, sqs_event
from tao_results_cli.local.loader import Handler, apply_environment
from tao_results_cli.local.stats import (
    InvocationEvent,
    InvocationHook,
    InvocationOutcome,
    MessageEvent,
    MessageHook,
    RunStats,
)
from tao_results_cli.request_bodies import reference_id_of

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

LOGGER = logging.getLogger(__name__)

MAX_RECEIVE = 10  # SQS's limit per ReceiveMessage
MAX_BATCH_WITHOUT_WINDOW = 10  # Lambda's limit when MaximumBatchingWindowInSeconds is 0
MAX_BATCH_WITH_WINDOW = 10_000
MAX_WINDOW_SECONDS = 300
EMPTY_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class RunnerConfig:
    """The event source mapping's settings and when to stop.

    ``visibility_timeout`` (seconds), when set, is passed to ReceiveMessage; by default the queue's
    own visibility timeout applies, as with Lambda. Stop conditions: ``until_empty`` (no visible,
    in-flight or delayed message for ``settle_seconds``), ``max_seconds``, or the stop event.
    """

    queue_url: str
    batch_size: int = 10
    concurrency: int = 1
    wait_time_seconds: int = 20
    batching_window_seconds: float = 0.0
    visibility_timeout: int | None = None
    function: FunctionSettings = field(default_factory=FunctionSettings)
    until_empty: bool = False
    settle_seconds: float = 2.0
    max_seconds: float | None = None
    check_interval: float = 0.25
    delete_attempts: int = 3
    set_lambda_environment: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` for settings Lambda would refuse."""
        limit = MAX_BATCH_WITH_WINDOW if self.batching_window_seconds > 0 else MAX_BATCH_WITHOUT_WINDOW
        checks = [
            (1 <= self.batch_size <= limit, f"batch size must be 1..{limit} with this batching window"),
            (self.concurrency >= 1, "concurrency must be at least 1"),
            (0 <= self.wait_time_seconds <= 20, "wait time must be 0..20 seconds"),
            (0 <= self.batching_window_seconds <= MAX_WINDOW_SECONDS, "batching window must be 0..300 s"),
            (self.function.timeout_seconds > 0, "function timeout must be positive"),
            (self.visibility_timeout is None or self.visibility_timeout >= 0, "visibility must be >= 0"),
            (self.max_seconds is None or self.max_seconds > 0, "max seconds must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class LocalEventSourceMapping:
    """Pollers + invoker + settler for one queue and one handler. Call :meth:`run`.

    The handler may be set later (``mapping.handler = ...``), after :meth:`prepare` has put the
    runtime's ``AWS_LAMBDA_*`` variables in place, so that a handler reading its environment at
    import time sees them, as it would in Lambda.
    """

    def __init__(
        self,
        config: RunnerConfig,
        handler: Handler | None = None,
        *,
        sqs: SQSClient | None = None,
        stats: RunStats | None = None,
        on_message: Iterable[MessageHook] = (),
        on_invocation: Iterable[InvocationHook] = (),
    ) -> None:
        config.validate()
        self.config = config
        self.handler = handler
        self.sqs = sqs or sqs_client(config.queue_url, pool_size=config.concurrency + 4)
        self.stats = stats or RunStats()
        self.on_message = list(on_message)
        self.on_invocation = list(on_invocation)
        self.stop_reason: str | None = None
        self._stop = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._queue_arn = ""
        self._log_stream = log_stream_name(config.function)

    # ---------------------------------------------------------------- lifecycle

    def prepare(self) -> str:
        """Resolve the queue (fails fast if it does not exist) and set the runtime's variables."""
        self._queue_arn = queue_arn(self.sqs, self.config.queue_url)
        self._warn_about_visibility()
        if self.config.set_lambda_environment:
            region = queue_region(self._queue_arn)
            defaults = lambda_environment(self.config.function, region, self._log_stream)
            apply_environment({key: value for key, value in defaults.items() if key not in os.environ})
        return self._queue_arn

    def run(self, stop: threading.Event | None = None) -> RunStats:
        """Poll until a stop condition holds; the batch in progress is always finished first."""
        if self.handler is None:
            raise ValueError("no handler to invoke")
        if stop is not None:
            self._stop = stop
        if not self._queue_arn:
            self.prepare()
        pollers = [
            threading.Thread(target=self._poll, name=f"sqs-poller-{index}", daemon=True)
            for index in range(self.config.concurrency)
        ]
        for poller in pollers:
            poller.start()
        try:
            self.stop_reason = self._supervise()
        finally:
            self._stop.set()
            for poller in pollers:
                poller.join()
        LOGGER.info("local event source mapping stopped (%s)", self.stop_reason)
        return self.stats

    def stop(self) -> None:
        """Ask the pollers to stop after their current batch."""
        self._stop.set()

    def _supervise(self) -> str:
        started = time.monotonic()
        empty_since: float | None = None
        while not self._stop.wait(self.config.check_interval):
            now = time.monotonic()
            if self.config.max_seconds is not None and now - started >= self.config.max_seconds:
                return "max_seconds"
            if not self.config.until_empty:
                continue
            if self._idle() and self._queue_is_empty():
                empty_since = empty_since if empty_since is not None else now
                if now - empty_since >= self.config.settle_seconds:
                    return "until_empty"
            else:
                empty_since = None
        return "stopped"

    def _idle(self) -> bool:
        with self._busy_lock:
            return self._busy == 0

    def _queue_is_empty(self) -> bool:
        try:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.config.queue_url,
                AttributeNames=list(EMPTY_ATTRIBUTES),
            )["Attributes"]
        except (BotoCoreError, ClientError) as error:
            LOGGER.warning("cannot read queue depth: %s", error)
            return False
        return all(int(attributes.get(name, "0")) == 0 for name in EMPTY_ATTRIBUTES)

    def _warn_about_visibility(self) -> None:
        try:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.config.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
        except (BotoCoreError, ClientError):
            return
        visibility = self.config.visibility_timeout
        if visibility is None:
            visibility = int(attributes.get("VisibilityTimeout", "30"))
        if visibility < self.config.function.timeout_seconds:
            LOGGER.warning(
                "visibility timeout %ss is shorter than the function timeout %ss: Lambda would refuse "
                "this mapping, and a slow invocation's messages may be redelivered while it runs",
                visibility,
                self.config.function.timeout_seconds,
            )

    # ---------------------------------------------------------------- polling

    def _poll(self) -> None:
        while not self._stop.is_set():
            batch = self._collect_batch()
            if not batch:
                continue
            with self._busy_lock:
                self._busy += 1
            try:
                self._invoke(batch)
            except Exception:  # a bug here must not silently kill the poller
                LOGGER.exception("poller failed while handling a batch")
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _collect_batch(self) -> list[MessageTypeDef]:
        """One batch: a single receive, or several until full or the batching window closes."""
        config = self.config
        batch = self._receive(min(MAX_RECEIVE, config.batch_size), config.wait_time_seconds)
        if not batch or config.batching_window_seconds <= 0:
            return batch
        deadline = time.monotonic() + config.batching_window_seconds
        seen = {message["MessageId"] for message in batch}
        while len(batch) < config.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wanted = min(MAX_RECEIVE, config.batch_size - len(batch))
            for message in self._receive(wanted, min(config.wait_time_seconds, math.ceil(remaining))):
                if message["MessageId"] not in seen:
                    seen.add(message["MessageId"])
                    batch.append(message)
        return batch

    def _receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        request: dict[str, Any] = {
            "QueueUrl": self.config.queue_url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self.config.visibility_timeout is not None:
            request["VisibilityTimeout"] = self.config.visibility_timeout
        try:
            return list(self.sqs.receive_message(**request).get("Messages", []))
        except (BotoCoreError, ClientError) as error:
            self.stats.record_receive_error()
            LOGGER.warning("ReceiveMessage failed: %s", error)
            self._stop.wait(1.0)
            return []

    # ---------------------------------------------------------------- invoking

    def _invoke(self, messages: Sequence[MessageTypeDef]) -> None:
        batch = _Batch.of(messages)
        for message_id in batch.ids:
            self.stats.record_received(
                message_id, batch.bodies[message_id], batch.references[message_id], batch.counts[message_id]
            )
        event = sqs_event(messages, self._queue_arn)
        region, account = queue_region(self._queue_arn), queue_account(self._queue_arn)
        context = new_context(self.config.function, region, account, self._log_stream)
        started = time.monotonic()
        answer, error = self._call_handler(event, context)
        duration_ms = (time.monotonic() - started) * 1000
        outcomes, detail = self._judge(answer, error, duration_ms, batch.ids)
        to_delete = [
            message for message in messages if outcomes[message["MessageId"]] == InvocationOutcome.DELETED
        ]
        for message_id in self._delete(to_delete):
            outcomes[message_id] = InvocationOutcome.DELETE_FAILED
        self.stats.record_invocation(failed=detail is not None)
        for message_id in batch.ids:
            self.stats.record_outcome(message_id, outcomes[message_id], duration_ms)
        self._notify(context.aws_request_id, batch, outcomes, duration_ms, detail)

    def _call_handler(self, event: dict[str, Any], context: Any) -> tuple[Any, str | None]:
        assert self.handler is not None  # checked by run()
        try:
            return self.handler(event, context), None
        except (Exception, SystemExit) as error:
            LOGGER.exception("handler raised; the whole batch is kept for redelivery")
            return None, f"{type(error).__name__}: {error}"

    def _judge(
        self, answer: Any, error: str | None, duration_ms: float, ids: Sequence[str]
    ) -> tuple[dict[str, InvocationOutcome], str | None]:
        """Each message's outcome, and what went wrong with the invocation as a whole (if anything)."""
        timeout_ms = self.config.function.timeout_seconds * 1000
        if error is not None:
            return dict.fromkeys(ids, InvocationOutcome.HANDLER_ERROR), error
        if duration_ms > timeout_ms:
            detail = f"Task timed out after {self.config.function.timeout_seconds:.2f} seconds"
            return dict.fromkeys(ids, InvocationOutcome.TIMEOUT), detail
        reading = read_batch_answer(answer, ids)
        if not reading.valid:
            LOGGER.error("invalid handler answer; the whole batch is kept: %s", reading.error)
            return dict.fromkeys(ids, InvocationOutcome.INVALID_ANSWER), reading.error
        outcomes = {
            message_id: InvocationOutcome.RETRY
            if message_id in reading.failed_ids
            else InvocationOutcome.DELETED
            for message_id in ids
        }
        return outcomes, None

    def _notify(
        self,
        request_id: str,
        batch: _Batch,
        outcomes: dict[str, InvocationOutcome],
        duration_ms: float,
        detail: str | None,
    ) -> None:
        deleted = sum(1 for message_id in batch.ids if outcomes[message_id] == InvocationOutcome.DELETED)
        kept = len(batch.ids) - deleted
        invocation = InvocationEvent(request_id, tuple(batch.ids), duration_ms, deleted, kept, detail)
        _call_hooks(self.on_invocation, invocation)
        for message_id in batch.ids:
            event = MessageEvent(
                message_id=message_id,
                reference_id=batch.references[message_id],
                receive_count=batch.counts[message_id],
                outcome=outcomes[message_id],
                duration_ms=duration_ms,
                request_id=request_id,
                detail=detail,
            )
            _call_hooks(self.on_message, event)

    # ---------------------------------------------------------------- settling

    def _delete(self, messages: Sequence[MessageTypeDef]) -> set[str]:
        """Delete messages in batches of 10, retrying failed entries; return the ids not deleted."""
        not_deleted: set[str] = set()
        for start in range(0, len(messages), MAX_RECEIVE):
            not_deleted |= self._delete_chunk(messages[start : start + MAX_RECEIVE])
        return not_deleted

    def _delete_chunk(self, chunk: Sequence[MessageTypeDef]) -> set[str]:
        pending = {str(index): message for index, message in enumerate(chunk)}
        given_up: set[str] = set()
        for attempt in range(self.config.delete_attempts):
            if not pending:
                break
            if attempt:
                time.sleep(0.2 * 2**attempt)
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": key, "ReceiptHandle": m["ReceiptHandle"]} for key, m in pending.items()
            ]
            try:
                response = self.sqs.delete_message_batch(
                    QueueUrl=self.config.queue_url,
                    Entries=entries,
                )
            except (BotoCoreError, ClientError) as error:
                LOGGER.warning("DeleteMessageBatch failed (attempt %d): %s", attempt + 1, error)
                continue
            for done in response.get("Successful", []):
                pending.pop(done["Id"], None)
            for failure in response.get("Failed", []):
                message = pending[failure["Id"]]
                LOGGER.warning("could not delete %s: %s", message["MessageId"], failure)
                if failure.get("SenderFault"):  # e.g. an expired receipt handle: retrying cannot help
                    given_up.add(message["MessageId"])
                    pending.pop(failure["Id"])
        return given_up | {message["MessageId"] for message in pending.values()}


@dataclass(frozen=True)
class _Batch:
    """The per-message facts of one batch, by messageId."""

    ids: list[str]
    bodies: dict[str, str]
    counts: dict[str, int]
    references: dict[str, str | None]

    @classmethod
    def of(cls, messages: Sequence[MessageTypeDef]) -> _Batch:
        bodies = {message["MessageId"]: message.get("Body", "") for message in messages}
        return cls(
            ids=list(bodies),
            bodies=bodies,
            counts={message["MessageId"]: _receive_count(message) for message in messages},
            references={message_id: reference_id_of(body) for message_id, body in bodies.items()},
        )


def _receive_count(message: MessageTypeDef) -> int:
    try:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0"))
    except ValueError:
        return 0


def _call_hooks(hooks: Sequence[Callable[[Any], None]], payload: object) -> None:
    for hook in hooks:
        try:
            hook(payload)
        except Exception:
            LOGGER.exception("progress hook failed")


def install_stop_signals(
    stop: threading.Event, announce: Callable[[str], None] | None = None
) -> Callable[[], None]:
    """First SIGINT/SIGTERM sets ``stop`` (finish the batch, then stop); a second one interrupts.

    Must be called from the main thread. Returns a function that restores the previous handlers.
    """
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if announce is not None:
            announce(f"{signal.Signals(signum).name}: finishing the current batch, then stopping")

    for signum in previous:
        signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
