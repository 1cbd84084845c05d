"""The servers the benchmarks run against, and the measured worker processes.

Every party is its own process: moto (SQS, Secrets Manager, and S3 for the moto target), the TAO
emulator, SeaweedFS (the real S3 target) and one worker per warm "container". Messages go through
moto's SQS queue and the event is built like Lambda's event source mapping builds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tao_emulator import EmulatorAdmin, running_emulator_process
from tao_results_cli.local.events import sqs_event
from tests.bench.cgroups import LambdaLimits
from tests.bench.seaweed import SeaweedS3
from tests.bench.tls import TlsFiles, make_tls
from tests.support.aws_stack import (
    FAKE_CREDENTIALS,
    MotoServer,
    StackResources,
    aws_client,
    create_resources,
    function_environment,
)

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"


def _worker_log() -> Any:
    """Workers' stderr (the handler's logs): discarded unless BENCH_WORKER_LOG names a file."""
    path = os.environ.get("BENCH_WORKER_LOG")
    return open(path, "a") if path else subprocess.DEVNULL


class WorkerProcess:
    """``python -m tests.bench.worker`` in a child process, spoken to in JSON lines."""

    def __init__(self, limits: LambdaLimits | None = None) -> None:
        """``limits``: the cgroups the worker joins before Python starts (Lambda's memory and CPU)."""
        self.limits = limits
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(ROOT / "layers" / "tao_results"), str(ROOT / "functions" / "download_result")]
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=_worker_log(),
            text=True,
            preexec_fn=limits.preexec if limits is not None else None,  # noqa: PLW1509 - no threads
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.pid} died during {op}")
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise RuntimeError(f"worker {op} failed: {answer['error']}\n{answer.get('trace', '')}")
        return dict(answer)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class Target:
    """One S3 server the function writes to ("seaweedfs" or "moto")."""

    name: str
    endpoint_url: str
    bucket: str
    pid: int | None = None

    def client(self) -> Any:
        return aws_client("s3", self.endpoint_url)


@dataclass
class Stack:
    moto: MotoServer
    resources: StackResources
    tao: EmulatorAdmin
    targets: dict[str, Target] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Targets whose name ends in "-tls" use HTTPS on both legs: this emulator and S3 (local CA).
    tao_tls: EmulatorAdmin | None = None
    tls: TlsFiles | None = None

    def emulator(self, target: str) -> EmulatorAdmin:
        if target.endswith("-tls"):
            assert self.tao_tls is not None
            return self.tao_tls
        return self.tao

    def environment(self, target: str, **overrides: str) -> dict[str, str]:
        env = function_environment(self.resources, self.emulator(target).base_url, **overrides)
        env.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        env["POWERTOOLS_METRICS_DISABLED"] = "true"
        if target != "moto":
            env["AWS_ENDPOINT_URL_S3"] = self.targets[target].endpoint_url
        if target.endswith("-tls") and self.tls is not None:
            env["AWS_CA_BUNDLE"] = self.tls.bundle
            env["BENCH_CA_BUNDLE"] = self.tls.bundle
        return env

    def event(self, reference_ids: list[str]) -> dict[str, Any]:
        """Send one message per reference through the real queue, receive them as one batch."""
        sqs = aws_client("sqs", self.resources.endpoint_url)
        for reference_id in reference_ids:
            sqs.send_message(
                QueueUrl=self.resources.queue_url, MessageBody=json.dumps({"referenceId": reference_id})
            )
        messages: list[dict[str, Any]] = []
        while len(messages) < len(reference_ids):
            answer = sqs.receive_message(
                QueueUrl=self.resources.queue_url,
                MaxNumberOfMessages=min(10, len(reference_ids) - len(messages)),
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages.extend(answer.get("Messages", []))
        return sqs_event(messages, self.resources.queue_arn)

    def settle(self, event: dict[str, Any]) -> None:
        """After the invocation: delete the batch, as the event source mapping does on success."""
        sqs = aws_client("sqs", self.resources.endpoint_url)
        for record in event["Records"]:
            sqs.delete_message(QueueUrl=self.resources.queue_url, ReceiptHandle=record["receiptHandle"])

    def new_reference(self, size: int, prefix: str = "bench") -> str:
        reference_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
        for emulator in (self.tao, self.tao_tls):
            if emulator is not None:
                emulator.add_result(reference_id, size=size, filename="result.csv")
        return reference_id

    def clear_results(self, target: str) -> None:
        """Delete everything the function wrote, so servers do not grow across the run."""
        info = self.targets[target]
        s3 = info.client()
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=info.bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=info.bucket, Key=item["Key"])


def open_stack(exits: ExitStack, *, seaweed: bool = True, tls: bool = False) -> Stack:
    """moto, the emulator and SeaweedFS; with ``tls`` also an HTTPS emulator and SeaweedFS' HTTPS
    endpoint (target ``seaweedfs-tls``), both behind a throwaway local CA."""
    os.environ.update(FAKE_CREDENTIALS)
    moto = exits.enter_context(MotoServer())
    resources = create_resources(moto.endpoint_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    admin = exits.enter_context(running_emulator_process(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    stack = Stack(moto, resources, admin)
    stack.targets["moto"] = Target("moto", moto.endpoint_url, resources.bucket)
    files: TlsFiles | None = None
    if tls:
        directory = exits.enter_context(tempfile.TemporaryDirectory(prefix="bench-tls-"))
        files = make_tls(Path(directory))
        # The bench process's own clients (emulator admin, boto3) trust the local CA too.
        os.environ["REQUESTS_CA_BUNDLE"] = files.bundle
        os.environ["AWS_CA_BUNDLE"] = files.bundle
        stack.tls = files
        stack.tao_tls = exits.enter_context(
            running_emulator_process(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                tls_cert_file=files.cert,
                tls_key_file=files.key,
            )
        )
    if seaweed:
        try:
            server = SeaweedS3(tls=files)
            server.start()
        except Exception as error:
            stack.notes.append(f"SeaweedFS could not start ({error}); moto only")
        else:
            exits.callback(server.stop)
            server_client = aws_client("s3", server.endpoint_url)
            server_client.create_bucket(Bucket=resources.bucket)
            stack.targets["seaweedfs"] = Target(
                "seaweedfs", server.endpoint_url, resources.bucket, server.pid
            )
            if server.https_endpoint_url is not None:
                stack.targets["seaweedfs-tls"] = Target(
                    "seaweedfs-tls", server.https_endpoint_url, resources.bucket, server.pid
                )
    return stack
