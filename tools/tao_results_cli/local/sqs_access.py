"""boto3 clients for the local tools, the same way against AWS and against a local endpoint.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_SQS``) by itself; when they are unset
the clients talk to AWS. The region comes from the usual configuration (or ``AWS_REGION``, which
Lambda sets), else from the queue URL.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_URL_REGION = re.compile(r"^https?://(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.(?:queue\.)?amazonaws\.com", re.I)


def region_from_queue_url(queue_url: str) -> str | None:
    """``eu-west-1`` for ``https://sqs.eu-west-1.amazonaws.com/123/q`` (None for other hosts)."""
    match = _URL_REGION.match(queue_url)
    return match.group(1).lower() if match else None


def sqs_client(
    queue_url: str | None = None,
    *,
    max_attempts: int = 3,
    pool_size: int = 10,
    read_timeout: float = 60.0,
) -> SQSClient:
    """An SQS client; the region falls back to the one in ``queue_url`` when none is configured."""
    session = boto3.session.Session()
    region = (
        session.region_name
        or os.environ.get("AWS_REGION")
        or (region_from_queue_url(queue_url) if queue_url else None)
    )
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=pool_size,
        connect_timeout=5,
        read_timeout=read_timeout,
    )
    client: SQSClient = session.client("sqs", region_name=region, config=config)
    return client


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    """The ARN of a queue (raises the client's error when the queue does not exist)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return attributes["QueueArn"]
