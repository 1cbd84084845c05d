"""Drive the real Lambda handler against moto's server and the TAO emulator, over sockets.

Messages really go through the source queue: the harness sends them, receives them the way the
event source mapping does, and builds the SQS event with the same code as ``tao-results run-local``.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import tao_results.wiring as wiring_module
from tao_emulator import TaoEmulator
from tao_results.http_sessions import Resolver, system_resolver
from tao_results_cli.local.context import FunctionSettings, new_context
from tao_results_cli.local.events import sqs_event
from tests.support.aws_stack import StackResources, aws_client, function_environment

APP_PATH = Path(__file__).resolve().parents[2] / "functions" / "download_result" / "app.py"
_module_numbers = itertools.count()

# Fast failure settings for tests: short timeouts, no long in-invocation waits.
TEST_OVERRIDES = {
    "HTTP_CONNECT_TIMEOUT_SECONDS": "1",
    "HTTP_READ_TIMEOUT_SECONDS": "2",
    "DEADLINE_MARGIN_SECONDS": "1",
    "PART_SIZE_BYTES": str(5 * 1024 * 1024),
    "RETRY_BACKOFF_BASE_SECONDS": "0",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def load_handler_module(
    environ: dict[str, str], *, resolver: Resolver | None = None, storage_verify: bool | str = True
) -> ModuleType:
    """Import ``app.py`` as Lambda's init phase does: a fresh module, configuration read now.

    ``resolver`` and ``storage_verify`` reach ``build_batch_handler`` (the test-only parameters: names
    resolved from a table instead of DNS, a test CA trusted by the storage session) while app.py
    itself runs unchanged.
    """
    saved = dict(os.environ)
    os.environ.update(environ)
    real_build_batch_handler = wiring_module.build_batch_handler
    wiring_module.build_batch_handler = functools.partial(  # type: ignore[assignment]
        real_build_batch_handler, resolver=resolver or system_resolver, storage_verify=storage_verify
    )
    try:
        spec = importlib.util.spec_from_file_location(f"app_under_test_{next(_module_numbers)}", APP_PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        wiring_module.build_batch_handler = real_build_batch_handler  # type: ignore[assignment]
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Harness:
    resources: StackResources
    tao: TaoEmulator
    overrides: dict[str, str] = field(default_factory=dict)
    received: dict[str, str] = field(default_factory=dict)
    resolver: Resolver | None = None
    storage_verify: bool | str = True

    def __post_init__(self) -> None:
        self.environment = function_environment(
            self.resources, self.tao.base_url, **{**TEST_OVERRIDES, **self.overrides}
        )
        os.environ.update(self.environment)  # boto3 clients read AWS_ENDPOINT_URL and credentials
        self.app = load_handler_module(
            self.environment, resolver=self.resolver, storage_verify=self.storage_verify
        )
        self.sqs = aws_client("sqs", self.resources.endpoint_url)
        self.s3 = aws_client("s3", self.resources.endpoint_url)

    # --- the queue side -------------------------------------------------------------------
    def send(self, *bodies: str | dict[str, Any]) -> list[str]:
        ids = []
        for body in bodies:
            text = body if isinstance(body, str) else json.dumps(body)
            ids.append(
                self.sqs.send_message(QueueUrl=self.resources.queue_url, MessageBody=text)["MessageId"]
            )
        return ids

    def send_refs(self, *reference_ids: str) -> list[str]:
        return self.send(*({"referenceId": ref} for ref in reference_ids))

    def receive_event(self, expected: int, timeout: float = 10.0) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            answer = self.sqs.receive_message(
                QueueUrl=self.resources.queue_url,
                MaxNumberOfMessages=min(10, expected - len(messages)),
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages.extend(answer.get("Messages", []))
        assert len(messages) == expected, f"received {len(messages)} of {expected} messages"
        for message in messages:
            self.received[message["MessageId"]] = message["ReceiptHandle"]
        return sqs_event(messages, self.resources.queue_arn)

    def invoke(self, event: dict[str, Any], timeout_seconds: float = 60.0) -> dict[str, Any]:
        context = new_context(
            FunctionSettings(timeout_seconds=timeout_seconds), "eu-west-1", "123456789012", "test-stream"
        )
        return dict(self.app.lambda_handler(event, context))

    def run(
        self, *bodies: str | dict[str, Any], timeout_seconds: float = 60.0
    ) -> tuple[list[str], list[str]]:
        """Send, receive as one batch, invoke; return (messageIds, failed messageIds)."""
        ids = self.send(*bodies)
        answer = self.invoke(self.receive_event(len(ids)), timeout_seconds)
        return ids, [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]

    def make_visible_again(self, message_ids: Iterable[str]) -> None:
        """What a lapsed visibility timeout does: the message can be received again."""
        for message_id in message_ids:
            self.sqs.change_message_visibility(
                QueueUrl=self.resources.queue_url,
                ReceiptHandle=self.received[message_id],
                VisibilityTimeout=0,
            )

    # --- where things ended ---------------------------------------------------------------
    def dead_letters(self) -> list[dict[str, Any]]:
        letters = []
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.resources.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            )
            messages = answer.get("Messages", [])
            if not messages:
                return letters
            for message in messages:
                letter = json.loads(message["Body"])
                letter["_attributes"] = {
                    name: value.get("StringValue")
                    for name, value in message.get("MessageAttributes", {}).items()
                }
                letters.append(letter)

    def keys(self) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=self.resources.bucket)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def object(self, key: str) -> dict[str, Any]:
        return dict(self.s3.get_object(Bucket=self.resources.bucket, Key=key))

    def object_bytes(self, key: str) -> bytes:
        return bytes(self.object(key)["Body"].read())

    def open_uploads(self) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=self.resources.bucket).get("Uploads", []))

    def queue_counts(self) -> tuple[int, int]:
        """(visible, in flight) on the source queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


HarnessFactory = Callable[..., Harness]
