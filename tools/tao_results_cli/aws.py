"""The operator tools' AWS access: one client factory, one stack reader, one reading of errors.

Every command (``enqueue``, ``dlq``, ``run-local``, ``doctor``, ``status``) gets its clients here,
the same way against AWS and against a local endpoint: boto3 honours ``AWS_ENDPOINT_URL`` (and the
per-service ``AWS_ENDPOINT_URL_<SERVICE>``) by itself. The region is boto3's configuration
(``AWS_DEFAULT_REGION``, the profile), else ``AWS_REGION`` (which Lambda sets), else the region in
the queue URL the client is for. The function's own clients (``tao_results.aws_clients``) are not
made here: the doctor uses those on purpose, to take the function's path.

Error codes are the services' ``Error.Code`` values, read with the layer's
:func:`tao_results.errors.aws_error_details`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tao_results.errors import aws_error_details

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient

# The caller's policy does not allow the call (IAM's AccessDenied in the query and JSON protocols;
# UnauthorizedOperation where a service answers in EC2's vocabulary).
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
# SQS's answer for a queue URL that names no queue (JSON protocol, then the query protocol's code).
MISSING_QUEUE_CODES = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})
# The credentials themselves were refused, or may not make the call.
CREDENTIAL_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken",
     "AccessDenied", "AccessDeniedException", "MissingAuthenticationToken"}
)  # fmt: skip
# CloudFormation answers DescribeStacks for an unknown name with ValidationError "Stack with id X
# does not exist"; other ValidationErrors (a malformed name) are not a missing stack.
MISSING_STACK_CODE = "ValidationError"
MISSING_STACK_TEXT = "does not exist"
MAX_MESSAGE = 300

_URL_REGION = re.compile(r"^https?://(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.(?:queue\.)?amazonaws\.com", re.I)


# ------------------------------------------------------------------------------------------ clients


def region_from_queue_url(queue_url: str) -> str | None:
    """``eu-west-1`` for ``https://sqs.eu-west-1.amazonaws.com/123/q`` (None for other hosts)."""
    match = _URL_REGION.match(queue_url)
    return match.group(1).lower() if match else None


def region(queue_url: str | None = None) -> str | None:
    """The tools' one region rule: boto3's configuration, else ``AWS_REGION``, else ``queue_url``'s."""
    import boto3  # noqa: PLC0415 - only the commands that talk to AWS pay for boto3

    return (
        boto3.session.Session().region_name
        or os.environ.get("AWS_REGION")
        or (region_from_queue_url(queue_url) if queue_url else None)
    )


def _client(
    service: str,
    queue_url: str | None = None,
    *,
    max_attempts: int = 3,
    pool_size: int = 10,
    read_timeout: float = 60.0,
) -> Any:
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=pool_size,
        connect_timeout=5,
        read_timeout=read_timeout,
    )
    return boto3.session.Session().client(service, region_name=region(queue_url), config=config)  # type: ignore[call-overload]


# One function per service: boto3's stubs type a client by its literal service name.
def sqs_client(
    queue_url: str | None = None,
    *,
    max_attempts: int = 3,
    pool_size: int = 10,
    read_timeout: float = 60.0,
) -> SQSClient:
    """An SQS client (standard retries, ``max_attempts`` in all, a pool of ``pool_size``)."""
    client: SQSClient = _client(
        "sqs", queue_url, max_attempts=max_attempts, pool_size=pool_size, read_timeout=read_timeout
    )
    return client


def cloudformation_client() -> CloudFormationClient:
    client: CloudFormationClient = _client("cloudformation")
    return client


def lambda_client() -> LambdaClient:
    client: LambdaClient = _client("lambda")
    return client


def cloudwatch_client() -> CloudWatchClient:
    client: CloudWatchClient = _client("cloudwatch")
    return client


# -------------------------------------------------------------------------------------------- queues


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    """The ARN of a queue (raises the client's error when the queue does not exist)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return attributes["QueueArn"]


def queue_region(queue_arn: str) -> str:
    """The region field of an SQS ARN (``arn:aws:sqs:REGION:ACCOUNT:NAME``)."""
    parts = queue_arn.split(":")
    if len(parts) < 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
    return parts[3]


def queue_account(queue_arn: str) -> str:
    """The account field of an SQS ARN."""
    queue_region(queue_arn)
    return queue_arn.split(":")[4]


# --------------------------------------------------------------------------------------------- stack


class StackNotFound(Exception):
    """The stack does not exist (or lacks what a command reads from it): a usage error."""

    def __init__(self, stack_name: str, message: str | None = None) -> None:
        super().__init__(message or f"no stack named {stack_name!r} in this account and region")
        self.stack_name = stack_name


@dataclass(frozen=True)
class Stack:
    """What DescribeStacks says of one stack: its ``StackStatus`` and ``OutputKey`` → ``OutputValue``."""

    name: str
    status: str
    outputs: dict[str, str]


def read_stack(cloudformation: CloudFormationClient, stack_name: str) -> Stack:
    """The stack (DescribeStacks); raises :class:`StackNotFound` when there is none of that name,
    the client's ``ClientError`` for any other refusal (AccessDenied included)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if is_missing_stack(error):
            raise StackNotFound(stack_name) from error
        raise
    if not stacks:
        raise StackNotFound(stack_name)
    stack = stacks[0]
    outputs = {o.get("OutputKey", ""): o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    return Stack(stack_name, stack.get("StackStatus", ""), outputs)


# -------------------------------------------------------------------------------------------- errors


def is_denied(error: ClientError) -> bool:
    """Whether the caller may not make the call: a denial code, or a bare HTTP 403 whose body the
    client could not read (an endpoint answering another protocol than the client speaks)."""
    details = aws_error_details(error)
    return details.code in DENIED_CODES or (details.status == 403 and details.code in {"Unknown", "403"})


def is_missing_queue(error: ClientError) -> bool:
    return aws_error_details(error).code in MISSING_QUEUE_CODES


def is_missing_stack(error: ClientError) -> bool:
    details = aws_error_details(error)
    return details.code == MISSING_STACK_CODE and MISSING_STACK_TEXT in details.message


def describe_client_error(error: ClientError) -> str:
    """One line: ``<Operation> failed: <Error.Code>: <Error.Message>`` (whitespace collapsed, the
    message cut at :data:`MAX_MESSAGE` characters)."""
    details = aws_error_details(error)
    return f"{error.operation_name} failed: {details.code}: {' '.join(details.message.split())[:MAX_MESSAGE]}"
