"""Transient failures: when should SQS deliver the message again?

Lambda leaves a failed record in flight until the queue's visibility timeout (sized for the longest
copy, so up to hours) lapses. We shorten it to a backoff (or the server's Retry-After), so a 429
or a blip is retried in seconds, and a longer outage backs off exponentially.

It also knows how many deliveries the queue allows: its RedrivePolicy ``maxReceiveCount``
(``MAX_RECEIVE_COUNT``, or read once per queue with ``sqs:GetQueueAttributes``), so the pipeline can
tell the last delivery (``ApproximateReceiveCount >= maxReceiveCount``) and dead-letter with a
reason instead of leaving the message to SQS's redrive.

The queue's URL, the receipt handle and the receive count come from the record itself (see
delivery): no ``GetQueueUrl`` call, so the function's role has no ``sqs:GetQueueUrl``.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from tao_results.delivery import queue_arn, queue_url, receive_count
from tao_results.errors import TransientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from mypy_boto3_sqs import SQSClient

MAX_VISIBILITY_TIMEOUT = 43_200


def minimum_redelivery_span(max_receive_count: int, base: float, ceiling: float) -> float:
    """Seconds from the first delivery to the last allowed one, at the least (jitter at its minimum).

    Delivery ``k`` (1-based) that fails transiently sets the visibility to :func:`backoff_seconds`,
    at least ``min(base * 2**(k-1) / 2, ceiling)``; the last delivery ``N = max_receive_count``
    comes after the gaps of deliveries 1..N-1, so no earlier than
    ``sum(min(base * 2**(k-1) / 2, ceiling, 43200) for k in 1..N-1)`` seconds after the first
    (processing time only adds to it). ``NOT_FOUND_GRACE_SECONDS`` must fit in this span, or the
    queue's deliveries run out while a 404 is still read as "not ready yet".
    """
    ceiling = min(ceiling, MAX_VISIBILITY_TIMEOUT)
    return float(sum(min(base * 2 ** min(k - 1, 16) / 2, ceiling) for k in range(1, max_receive_count)))


def backoff_seconds(receive_count: int, base: float, ceiling: float, retry_after: float | None) -> int:
    """Exponential in the number of deliveries, with jitter; at least the server's Retry-After."""
    exponential = base * 2 ** min(max(receive_count - 1, 0), 16)
    jittered = random.uniform(exponential / 2, exponential)
    delay = max(jittered, retry_after or 0.0)
    return math.ceil(min(delay, ceiling, MAX_VISIBILITY_TIMEOUT))


class RetryScheduler:
    def __init__(
        self,
        sqs: Callable[[], SQSClient],
        base_seconds: float,
        max_seconds: float,
        on_error: Callable[[str], None],
        max_receive_count: int | None = None,
    ) -> None:
        self._sqs = sqs
        self._base = base_seconds
        self._max = max_seconds
        self._on_error = on_error
        self._max_receive_count = max_receive_count
        self._receive_limits: dict[str, int | None] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._base > 0

    def defer(self, record: SQSRecord, error: TransientError) -> int | None:
        """Make the record visible again after a backoff; returns the delay, None if not changed."""
        if not self.enabled:
            return None
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        url = queue_url(record)
        if url is None:
            self._on_error("could not set the retry backoff: the record has no SQS eventSourceARN")
            return None
        delay = backoff_seconds(receive_count(record) or 1, self._base, self._max, error.retry_after)
        try:
            self._sqs().change_message_visibility(
                QueueUrl=url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
            )
        except (BotoCoreError, ClientError, TransientError, KeyError) as change_error:
            # Not fatal: the message still comes back when the queue's visibility timeout lapses.
            self._on_error(f"could not set the retry backoff: {type(change_error).__name__}: {change_error}")
            return None
        return delay

    def is_last_delivery(self, record: SQSRecord) -> bool:
        """Whether SQS will not deliver ``record`` again if it fails now (its redrive would move it).

        False when the count or the limit is unknown (no RedrivePolicy, or it could not be read):
        SQS keeps delivering, and dead-lettering early would lose a message that may still succeed.
        """
        count = receive_count(record)
        if count is None:
            return False
        limit = self.receive_limit(record)
        return limit is not None and count >= limit

    def receive_limit(self, record: SQSRecord) -> int | None:
        """``MAX_RECEIVE_COUNT`` if set, else the source queue's RedrivePolicy ``maxReceiveCount``."""
        if self._max_receive_count is not None:
            return self._max_receive_count
        arn = queue_arn(record)
        if arn is None:
            return None
        if arn in self._receive_limits:
            return self._receive_limits[arn]
        url = queue_url(record)  # only on a cache miss: once per queue
        if url is None:
            return None
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        try:
            answer = self._sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
            policy = answer.get("Attributes", {}).get("RedrivePolicy")
            limit = int(json.loads(policy)["maxReceiveCount"]) if policy else None
        except (BotoCoreError, ClientError, TransientError, KeyError, ValueError, TypeError) as error:
            # Not cached: the next record asks again.
            self._on_error(f"could not read the queue's maxReceiveCount: {type(error).__name__}: {error}")
            return None
        with self._lock:
            self._receive_limits[arn] = limit
        return limit
