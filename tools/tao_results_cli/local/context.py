"""A stand-in for the Python runtime's ``LambdaContext``, with a real countdown."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class FunctionSettings:
    """What Lambda knows about the function: name, version, memory, timeout."""

    function_name: str = "download-result"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    timeout_seconds: float = 900.0


@dataclass
class LocalLambdaContext:
    """The attributes and method of ``awslambdaric``'s ``LambdaContext`` that handlers use.

    As in the real runtime, ``memory_limit_in_mb`` is a string (it comes from the environment
    variable ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``).
    """

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float = field(repr=False)
    client_context: None = None
    identity: None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the configured timeout (never negative)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def function_arn(settings: FunctionSettings, region: str, account: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{settings.function_name}"


def log_stream_name(settings: FunctionSettings) -> str:
    """Named like Lambda's: ``YYYY/MM/DD/[VERSION]<hex>``."""
    today = datetime.now(UTC).strftime("%Y/%m/%d")
    return f"{today}/[{settings.function_version}]{uuid.uuid4().hex}"


def new_context(settings: FunctionSettings, region: str, account: str, stream: str) -> LocalLambdaContext:
    """A context for one invocation, its clock starting now."""
    return LocalLambdaContext(
        function_name=settings.function_name,
        function_version=settings.function_version,
        invoked_function_arn=function_arn(settings, region, account),
        memory_limit_in_mb=str(settings.memory_limit_in_mb),
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{settings.function_name}",
        log_stream_name=stream,
        deadline=time.monotonic() + settings.timeout_seconds,
    )


def lambda_environment(settings: FunctionSettings, region: str, stream: str) -> dict[str, str]:
    """The ``AWS_LAMBDA_*`` variables the runtime sets (applied only where not already set)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": settings.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": settings.function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings.memory_limit_in_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{settings.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_REGION": region,
    }
