"""A local AWS stack: moto in server mode on loopback, plus the resources the function needs.

Used by the integration tests (through ``tests.support.aws_stack``), the demo and the benchmarks, so
that boto3 talks HTTP to a real server through ``AWS_ENDPOINT_URL`` exactly as it would to AWS.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3

REGION = "eu-west-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as error:
            last_error = error
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last_error!r})")


class MotoServer:
    """moto's HTTP server in a child process on a loopback port.

    ``start_new_session`` (as :class:`subprocess.Popen`'s) puts the child in its own session, out of
    the terminal's foreground process group: a Ctrl-C then reaches only the caller.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, *, start_new_session: bool = False
    ) -> None:
        self.host = host
        self.start_new_session = start_new_session
        self.port = port or free_port(host)
        self.endpoint_url = f"http://{host}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        # MOTO_PORT: moto's Step Functions interpreter calls its service integrations (SQS
        # sendMessage.waitForTaskToken) back through this very server.
        env = {**os.environ, **FAKE_CREDENTIALS, "MOTO_PORT": str(self.port)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.start_new_session,
        )
        wait_until(self._responds, timeout=30, what="moto server")
        return self

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return None if self._process is None else self._process.pid

    def _responds(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"moto server exited with {self._process.returncode}")
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as response:
            return bool(response.status == 200)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class StackResources:
    endpoint_url: str
    bucket: str
    secret_id: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str


def aws_client(service: str, endpoint_url: str) -> Any:
    # boto3-stubs types one overload per service name; this takes any name, as boto3 does.
    client: Callable[..., Any] = boto3.client
    return client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def create_resources(
    endpoint_url: str,
    *,
    client_id: str,
    client_secret: str,
    name: str = "tao-results",
    max_receive_count: int = 3,
    visibility_timeout: int = 60,
) -> StackResources:
    """Create bucket, credentials secret, DLQ and source queue (redriving to the DLQ)."""
    s3 = aws_client("s3", endpoint_url)
    sqs = aws_client("sqs", endpoint_url)
    secrets = aws_client("secretsmanager", endpoint_url)

    bucket = f"{name}-results"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    secret = secrets.create_secret(
        Name=f"{name}/tao-credentials",
        SecretString=json.dumps({"client_id": client_id, "client_secret": client_secret}),
    )
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-requests",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return StackResources(
        endpoint_url=endpoint_url,
        bucket=bucket,
        secret_id=secret["ARN"],
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
    )


def function_environment(resources: StackResources, tao_base_url: str, **overrides: str) -> dict[str, str]:
    """The environment the Lambda function gets, pointed at the local stack.

    The local TAO emulator speaks plain http on a loopback address: the function may use it only
    because ``ALLOW_INSECURE_HTTP`` says so and the address is listed literally (any port).
    """
    tao_host = urlsplit(tao_base_url).hostname or ""
    env = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": resources.endpoint_url,
        "TAO_BASE_URL": tao_base_url,
        "TAO_CREDENTIALS_SECRET_ID": resources.secret_id,
        "RESULTS_BUCKET": resources.bucket,
        "DEAD_LETTER_QUEUE_URL": resources.dead_letter_queue_url,
        "POWERTOOLS_SERVICE_NAME": "tao-results-to-s3",
        "POWERTOOLS_METRICS_NAMESPACE": "TaoResultsToS3",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "ALLOW_INSECURE_HTTP": "true",
        "SIGNED_URL_ALLOWED_HOSTS": f"{tao_host},amazon-s3",
    }
    env.update(overrides)
    return env


@contextmanager
def running_moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server
