"""MiniStack on loopback, and the function deployed to it from ``sam build`` output.

MiniStack (PyPI ``ministack``) lives in ``.venv-e2e`` with ``awslambdaric``; ``make e2e`` installs
both and passes ``E2E_VENV`` and ``E2E_BUILD_DIR`` (the ``sam build`` output) to pytest.

Two ways to run the same built artifacts, both driven by MiniStack's own SQS event source mapping:

``executor``
    ``Runtime: python3.12``: MiniStack's local Python executor imports ``app.lambda_handler`` in a
    pooled worker process, with the layer's ``python/`` directory on ``sys.path``, and kills the
    worker when ``Timeout`` runs out.
``awslambdaric``
    ``Runtime: provided.al2023``: MiniStack serves the Lambda Runtime API on 127.0.0.1 and starts
    the package's ``bootstrap``, which runs the real runtime interface client
    (``python -m awslambdaric app.lambda_handler``) with the layer at ``<opt>/python`` on
    ``PYTHONPATH``, the way the python3.12 runtime puts ``/opt/python`` there. MiniStack's provided
    runtime does not unpack layers, so the layer is fetched back from MiniStack
    (``GetLayerVersion`` → ``Content.Location``) and unpacked into a private ``opt`` directory.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.aws_stack import FAKE_CREDENTIALS, REGION, aws_client, free_port

RUNTIMES = ("executor", "awslambdaric")
AUDIT_DIR = Path(__file__).resolve().parent / "audit"

# The bootstrap a provided.al2023 package needs to run a Python handler under the real RIC.
_BOOTSTRAP = """#!/bin/sh
# The python3.12 runtime's path order: task root, then the layer's /opt/python (here $E2E_OPT).
# $E2E_AUDIT_DIR (last) only records connects: see tests/e2e/audit.
OPT_PATH="$E2E_OPT/python:$E2E_OPT/python/lib/python3.12/site-packages"
export PYTHONPATH="$LAMBDA_TASK_ROOT:$OPT_PATH:$E2E_AUDIT_DIR"
exec "$E2E_RIC_PYTHON" -m awslambdaric "$_HANDLER"
"""


def _zip_dir(root: Path, extra: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(root).as_posix())
        for name, text in (extra or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable: MiniStack execs the bootstrap
            archive.writestr(info, text)
    return buffer.getvalue()


class MiniStack:
    """``ministack`` (hypercorn) in a child process bound to 127.0.0.1 on a free port."""

    def __init__(self, venv: Path, workdir: Path) -> None:
        self.venv = venv
        self.workdir = workdir
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "ministack.log"
        self.audit_log = workdir / "connections.log"
        self._process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        tmp = self.workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "TMPDIR": str(tmp),  # its code caches, worker dirs and pid file stay in the test's dir
            **FAKE_CREDENTIALS,
            "BIND_HOST": "127.0.0.1",  # its default is 0.0.0.0
            "GATEWAY_PORT": str(self.port),
            "MINISTACK_HOST": "127.0.0.1",  # the host in the queue URLs it hands out
            "MINISTACK_REGION": REGION,
            "SERVICES": "lambda,sqs,s3,secretsmanager,logs,iam,sts",
            "LAMBDA_EXECUTOR": "local",  # its default; never Docker (no daemon is reached either)
            "DOCKER_HOST": f"unix://{self.workdir}/no-docker.sock",
            "PERSIST_STATE": "0",
            "S3_PERSIST": "0",
            "S3_DATA_DIR": str(self.workdir / "s3"),
            "STATE_DIR": str(self.workdir / "state"),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # every Python process it starts inherits these: each connect and lookup is recorded
            "PYTHONPATH": str(AUDIT_DIR),
            "E2E_AUDIT_DIR": str(AUDIT_DIR),
            "E2E_AUDIT_LOG": str(self.audit_log),
        }

    def start(self) -> MiniStack:
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            [str(self.venv / "bin" / "ministack")],
            cwd=self.workdir,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its worker processes go with it on stop
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"ministack exited ({self._process.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/_ministack/health", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ministack did not answer within 60 s; see {self.log_path}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint_url)


@dataclass
class Deployment:
    """One runtime's stack: queues, bucket, function and its (disabled) event source mapping."""

    runtime: str
    function_name: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    bucket: str
    mapping_uuid: str


@dataclass(frozen=True)
class Settings:
    """The template's settings for the resources, with a short function timeout for the test."""

    timeout: int = 8
    memory: int = 512
    batch_size: int = 10
    max_receive_count: int = 5
    maximum_concurrency: int = 5
    prefix: str = "tao-results/"

    @property
    def visibility_timeout(self) -> int:
        # The template's rule, 6 x Timeout + batching window; the window is 0 here (the template
        # maps it at its 300 s maximum), so a killed batch comes back within the test.
        return 6 * self.timeout


def publish_layer(stack: MiniStack, build_dir: Path) -> tuple[str, bytes]:
    layer_zip = _zip_dir(build_dir / "TaoResultsLayer")  # holds python/..., as Lambda expects
    answer = stack.client("lambda").publish_layer_version(
        LayerName="tao-results",
        Content={"ZipFile": layer_zip},
        CompatibleRuntimes=["python3.12"],
        CompatibleArchitectures=["arm64"],
    )
    return str(answer["LayerVersionArn"]), layer_zip


def unpack_layer_from_ministack(stack: MiniStack, layer_arn: str, opt_dir: Path) -> None:
    """The layer as MiniStack serves it back, unpacked where /opt would be."""
    location = stack.client("lambda").get_layer_version_by_arn(Arn=layer_arn)["Content"]["Location"]
    if not location.startswith(stack.endpoint_url):
        raise RuntimeError(f"layer content is not served by the local MiniStack: {location}")
    with urllib.request.urlopen(location, timeout=30) as response:
        data = response.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(opt_dir)


def deploy(
    stack: MiniStack,
    runtime: str,
    build_dir: Path,
    layer_arn: str,
    environment: dict[str, str],
    settings: Settings,
    opt_dir: Path,
    ric_python: Path,
) -> Deployment:
    name = f"tao-e2e-{runtime}"
    sqs, s3, lam = stack.client("sqs"), stack.client("s3"), stack.client("lambda")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-source",
        Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout),
            "MessageRetentionPeriod": "345600",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bucket = f"{name}-results"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})

    function_dir = build_dir / "DownloadResultFunction"
    variables = {**environment, "RESULTS_BUCKET": bucket, "DEAD_LETTER_QUEUE_URL": dlq_url}
    if runtime == "executor":
        code = _zip_dir(function_dir)
        kind = "python3.12"
    else:
        code = _zip_dir(function_dir, {"bootstrap": _BOOTSTRAP})
        kind = "provided.al2023"
        variables |= {"E2E_OPT": str(opt_dir), "E2E_RIC_PYTHON": str(ric_python)}
    lam.create_function(
        FunctionName=name,
        Runtime=kind,
        Handler="app.lambda_handler",
        Role="arn:aws:iam::000000000000:role/tao-e2e",
        Code={"ZipFile": code},
        Layers=[layer_arn],
        Timeout=settings.timeout,
        MemorySize=settings.memory,
        Architectures=["arm64"],
        Environment={"Variables": variables},
    )
    mapping = lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=name,
        Enabled=False,  # enabled once the scenario's messages are all on the queue
        BatchSize=settings.batch_size,
        MaximumBatchingWindowInSeconds=0,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": settings.maximum_concurrency},
    )
    return Deployment(runtime, name, queue_url, queue_arn, dlq_url, bucket, mapping["UUID"])


def set_mapping(stack: MiniStack, deployment: Deployment, enabled: bool) -> None:
    stack.client("lambda").update_event_source_mapping(UUID=deployment.mapping_uuid, Enabled=enabled)
