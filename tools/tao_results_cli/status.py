"""``tao-results status``: a deployed stack's queues, dead-letter reasons and last hour's copies.

Everything is read from AWS, nothing is hand-copied: the queue URLs come from the stack's outputs
(CloudFormation DescribeStacks), depths from SQS GetQueueAttributes (visible, in flight, delayed:
``ApproximateNumberOfMessages``, ``…NotVisible``, ``…Delayed``), dead-letter reasons from a peek at
the DLQ like ``dlq list`` (which raises each peeked message's ``ApproximateReceiveCount``), and the
copied count and bytes from CloudWatch GetMetricStatistics over the last hour (the function's
``ResultsCopied`` and ``BytesCopied``, namespace and service as in template.yaml). A caller who may
not read CloudWatch gets the queues and a note instead of an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tao_results_cli.aws import (
    StackNotFound,
    cloudformation_client,
    cloudwatch_client,
    is_denied,
    read_stack,
    sqs_client,
)
from tao_results_cli.queues import list_dead_letters

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

# template.yaml's Globals: POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME.
METRICS_NAMESPACE = "TaoResultsToS3"
SERVICE_NAME = "tao-results-to-s3"
DEPTH_ATTRIBUTES: dict[str, QueueAttributeNameType] = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


@dataclass
class QueueStatus:
    name: str
    url: str
    depth: dict[str, int]


@dataclass
class StackStatus:
    stack_name: str
    queues: list[QueueStatus]
    dlq_reasons: Counter[str] = field(default_factory=Counter)
    dlq_peeked: int = 0
    copied: int | None = None
    bytes_copied: float | None = None
    metrics_note: str | None = None


def stack_outputs(stack_name: str, cloudformation: CloudFormationClient | None = None) -> dict[str, str]:
    """The stack's outputs, ``OutputKey`` → ``OutputValue`` (DescribeStacks); raises
    :class:`~tao_results_cli.aws.StackNotFound`."""
    return read_stack(cloudformation or cloudformation_client(), stack_name).outputs


def queue_depth(sqs: SQSClient, url: str) -> dict[str, int]:
    """Visible, in-flight and delayed messages (approximate, as SQS says)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=list(DEPTH_ATTRIBUTES.values()),
    )["Attributes"]
    return {key: int(attributes.get(name, "0")) for key, name in DEPTH_ATTRIBUTES.items()}


def last_hour_copies(
    cloudwatch: CloudWatchClient,
    now: datetime,
    service: str = SERVICE_NAME,
    namespace: str = METRICS_NAMESPACE,
) -> tuple[int, float]:
    """``ResultsCopied`` and ``BytesCopied`` summed over the hour before ``now`` (one 3600 s period)."""
    sums = []
    for name in ("ResultsCopied", "BytesCopied"):
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=[{"Name": "service", "Value": service}],
            StartTime=now - timedelta(hours=1),
            EndTime=now,
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        sums.append(sum(float(point.get("Sum", 0.0)) for point in points))
    return int(sums[0]), sums[1]


def read_status(stack_name: str, *, peek_limit: int = 100, now: datetime | None = None) -> StackStatus:
    """Everything ``status`` prints; raises :class:`~tao_results_cli.aws.StackNotFound` for a wrong
    stack name."""
    outputs = stack_outputs(stack_name)
    missing = [key for key in ("SourceQueueUrl", "DeadLetterQueueUrl") if key not in outputs]
    if missing:
        raise StackNotFound(
            stack_name, f"stack {stack_name!r} has no output {', '.join(missing)}: is it this project's?"
        )
    source_url, dlq_url = outputs["SourceQueueUrl"], outputs["DeadLetterQueueUrl"]
    sqs = sqs_client(source_url)
    status = StackStatus(
        stack_name,
        [
            QueueStatus("source", source_url, queue_depth(sqs, source_url)),
            QueueStatus("dead-letter", dlq_url, queue_depth(sqs, dlq_url)),
        ],
    )
    if status.queues[1].depth["visible"]:
        letters = list_dead_letters(sqs, dlq_url, limit=peek_limit)
        status.dlq_peeked = len(letters)
        status.dlq_reasons = Counter(letter.reason for letter in letters)
    cloudwatch = cloudwatch_client()
    try:
        status.copied, status.bytes_copied = last_hour_copies(cloudwatch, now or datetime.now(UTC))
    except ClientError as error:
        if not is_denied(error):
            raise
        status.metrics_note = (
            "last hour's copies not shown: CloudWatch refused GetMetricStatistics (AccessDenied)"
        )
    except BotoCoreError as error:
        status.metrics_note = f"last hour's copies not shown: {error}"
    return status


def format_status(status: StackStatus) -> str:
    """The report, as printed."""
    lines = [f"stack {status.stack_name}"]
    width = max(len(queue.name) for queue in status.queues)
    for queue in status.queues:
        depth = queue.depth
        lines.append(
            f"  {queue.name.ljust(width)}  {depth['visible']} visible, {depth['in_flight']} in flight, "
            f"{depth['delayed']} delayed   {queue.url}"
        )
    if status.dlq_reasons:
        counts = ", ".join(f"{reason} {count}" for reason, count in status.dlq_reasons.most_common())
        lines.append(f"  dead letters by reason (peeked {status.dlq_peeked}): {counts}")
    if status.metrics_note:
        lines.append(f"  {status.metrics_note}")
    elif status.copied is not None:
        lines.append(
            f"  last hour: {status.copied} result(s) copied, {_size(status.bytes_copied or 0.0)} "
            "(CloudWatch; metrics arrive within a few minutes)"
        )
    return "\n".join(lines)


def _size(size: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"
