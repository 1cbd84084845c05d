"""Transient failures: when should SQS deliver the message again?

Lambda leaves a failed record in flight until the queue's visibility timeout (sized for the longest
copy, so up to hours) lapses. We shorten it to a backoff (or the server's Retry-After), so a 429
or a blip is retried in seconds, and a longer outage backs off exponentially.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tao_results.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_VISIBILITY_TIMEOUT = 43_200


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
    ) -> None:
        self._sqs = sqs
        self._base = base_seconds
        self._max = max_seconds
        self._on_error = on_error
        self._queue_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._base > 0

    def defer(self, record: Mapping[str, Any], error: TransientError) -> int | None:
        """Make the record visible again after a backoff; returns the delay, None if not changed."""
        if not self.enabled:
            return None
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        attributes = record.get("attributes") or {}
        try:
            receive_count = int(attributes.get("ApproximateReceiveCount", 1))
            delay = backoff_seconds(receive_count, self._base, self._max, error.retry_after)
            self._sqs().change_message_visibility(
                QueueUrl=self._queue_url(str(record["eventSourceARN"])),
                ReceiptHandle=str(record["receiptHandle"]),
                VisibilityTimeout=delay,
            )
        except (BotoCoreError, ClientError, KeyError, ValueError, TypeError) as change_error:
            # Not fatal: the message still comes back when the queue's visibility timeout lapses.
            self._on_error(f"could not set the retry backoff: {type(change_error).__name__}: {change_error}")
            return None
        return delay

    def _queue_url(self, queue_arn: str) -> str:
        with self._lock:
            if queue_arn not in self._queue_urls:
                _, _, _, _, account, name = queue_arn.split(":", 5)
                answer = self._sqs().get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
                self._queue_urls[queue_arn] = answer["QueueUrl"]
            return self._queue_urls[queue_arn]
