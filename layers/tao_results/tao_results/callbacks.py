"""Step Functions callbacks for requests that carry a ``taskToken`` (the ``.waitForTaskToken``
service integration pattern): ``SendTaskSuccess`` with the Stored detail as output, or
``SendTaskFailure`` with ``error`` = reason and ``cause`` = detail.

An answer saying the task is gone (``TaskTimedOut``, ``InvalidToken``, ``TaskDoesNotExist``: the
workflow timed out, was stopped, or was already answered by an earlier delivery) ends the record:
nobody is waiting any more. Every other failure is a TransientError and the record is retried.
The token is a bearer credential for the task: it is never logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tao_results.classification import transient_aws_error
from tao_results.errors import aws_error_details
from tao_results.redaction import SECRETS

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# SendTaskFailure API reference: error 0-256 characters, cause 0-32768 characters.
MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32768
TASK_GONE_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class TaskCallbacks:
    def __init__(self, sfn: Callable[[], SFNClient], on_gone: Callable[[str, str], None]) -> None:
        """``on_gone(operation, error_code)`` is told when the task no longer exists."""
        self._sfn = sfn
        self._on_gone = on_gone

    def succeed(self, task_token: str, output: Mapping[str, Any]) -> None:
        self._call(
            "SendTaskSuccess",
            taskToken=task_token,
            output=json.dumps(output, ensure_ascii=False, separators=(",", ":")),
        )

    def fail(self, task_token: str, error: str, cause: str) -> None:
        self._call(
            "SendTaskFailure",
            taskToken=task_token,
            error=error[:MAX_ERROR_CHARS],
            cause=SECRETS.scrub(cause)[:MAX_CAUSE_CHARS],
        )

    def _call(self, operation: str, **kwargs: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        sfn = self._sfn()
        method = sfn.send_task_success if operation == "SendTaskSuccess" else sfn.send_task_failure
        try:
            method(**kwargs)
        except (BotoCoreError, ClientError) as error:
            code = aws_error_details(error).code
            if code in TASK_GONE_CODES:
                self._on_gone(operation, code)
                return
            raise transient_aws_error(operation, error, "callback_failed") from error
