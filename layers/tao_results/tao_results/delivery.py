"""What SQS says about one delivery of a message, read from Powertools' ``SQSRecord``.

The record travels through the pipeline as the ``SQSRecord`` the batch processor built; these
readers are the only place its optional parts are interpreted. Lambda's event source mapping always
sends them (Lambda developer guide, "Using Lambda with Amazon SQS", example event), but a test or a
direct invocation may not: a missing or unreadable field reads as ``None``, never an exception, and
each caller says what ``None`` means for it.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def original_body(record: SQSRecord) -> str | None:
    """The message body exactly as received (``body``), or None when the record has none."""
    body = record.get("body")
    return body if isinstance(body, str) else None


def receive_count(record: SQSRecord) -> int | None:
    """``attributes.ApproximateReceiveCount``: 1 on the first delivery, +1 on each redelivery."""
    try:
        return int(record.attributes.approximate_receive_count)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def sent_timestamp(record: SQSRecord) -> datetime | None:
    """``attributes.SentTimestamp`` (epoch milliseconds): when SQS first accepted the message, the
    same on every redelivery."""
    try:
        return datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000.0, UTC)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError):
        return None


def queue_arn(record: SQSRecord) -> str | None:
    """``eventSourceARN``, ``arn:<partition>:sqs:<region>:<account>:<queue name>``."""
    arn = record.get("eventSourceARN")
    return arn if isinstance(arn, str) and _QUEUE_ARN.fullmatch(arn) else None


def queue_url(record: SQSRecord) -> str | None:
    """The source queue's URL, as ``GetQueueUrl`` would answer it, without calling it.

    Powertools' ``SQSRecord.queue_url`` builds ``https://sqs.<region>.amazonaws.com/<account>/<name>``,
    right in the ``aws`` and ``aws-us-gov`` partitions; elsewhere (``aws-cn``: ``amazonaws.com.cn``)
    the host takes the partition's DNS suffix from botocore's partition data. SQS reads the queue
    from the URL's path; the request itself goes to the client's endpoint (``AWS_ENDPOINT_URL`` in
    tests), so moto and MiniStack accept this form too.
    """
    arn = queue_arn(record)
    if arn is None:
        return None
    url = record.queue_url
    suffix = _dns_suffix(arn.split(":")[1])
    if suffix is None or suffix == "amazonaws.com":
        return url
    return url.replace(".amazonaws.com/", f".{suffix}/", 1)


_QUEUE_ARN = re.compile(r"arn:[a-z-]+:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?")


@functools.cache
def _dns_suffix(partition: str) -> str | None:
    from botocore.loaders import create_loader  # noqa: PLC0415 - lazy boto import, read once

    for entry in create_loader().load_data("partitions")["partitions"]:
        if entry["id"] == partition:
            return str(entry["outputs"]["dnsSuffix"])
    return None
