"""``tao-results doctor`` against moto's server (S3, SQS, Secrets Manager, Lambda, CloudFormation)
and the TAO emulator: every check passes on a healthy deployment, and each check fails alone when
its part of the deployment is broken. Lambda functions are created from a zip and never invoked.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tao_emulator import Fault, TaoEmulator
from tao_results_cli.cli import main
from tao_results_cli.doctor import Doctor, DoctorClients, DoctorOptions, Verdict
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.support.aws_stack import (
    FAKE_CREDENTIALS,
    MotoServer,
    StackResources,
    aws_client,
    create_resources,
    function_environment,
)
from tests.support.network import TableResolver
from tests.template.test_template import TEMPLATE, load_cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
READY = "ref-ready"
FUNCTION_TIMEOUT = 10
ALL_CHECKS = [
    "settings",
    "secret",
    "token",
    "download-api",
    "signed-url-policy",
    "bucket-write",
    "dead-letter-queue",
    "visibility-timeout",
    "batch-item-failures",
]
# Everything that may steer the doctor; each test sets what it needs.
DOCTOR_VARIABLES = (
    "TAO_BASE_URL", "TAO_TOKEN_URL", "TAO_DOWNLOAD_PATH", "TAO_TOKEN_SCOPE", "TAO_CREDENTIALS_SECRET_ID",
    "RESULTS_BUCKET", "RESULTS_PREFIX", "DEAD_LETTER_QUEUE_URL", "SIGNED_URL_ALLOWED_HOSTS",
    "SOURCE_QUEUE_URL", "PART_SIZE_BYTES", "TAO_TOKEN_AUTH_METHOD", "AWS_PROFILE", "AWS_ENDPOINT_URL_SQS",
    "LAMBDA_TASK_ROOT",
)  # fmt: skip


@dataclass(frozen=True)
class Deployment:
    resources: StackResources
    function_name: str
    function_env: dict[str, str]
    mapping_uuid: str


@dataclass(frozen=True)
class Report:
    status: int
    rows: dict[str, tuple[str, str]]  # check → (verdict, detail)
    verdict: str
    output: str

    def failing(self) -> set[str]:
        return {name for name, (verdict, _) in self.rows.items() if verdict == "FAIL"}


def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    moto_server.reset()
    return moto_server


@pytest.fixture
def deployment(moto: MotoServer, tao: TaoEmulator, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    """A healthy deployment: queues, bucket, secret, function (Timeout 10 s, queue visibility 60 s
    = exactly 6 x) with its SQS mapping reporting batch item failures, a ready result in TAO. The
    doctor's environment is the function's own settings plus the AWS configuration."""
    name = f"d{uuid.uuid4().hex[:8]}"
    resources = create_resources(
        moto.endpoint_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, name=name, visibility_timeout=60
    )
    settings_env = {
        key: value
        for key, value in function_environment(resources, tao.base_url).items()
        if not key.startswith("AWS_")
    }
    iam = aws_client("iam", moto.endpoint_url)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_client = aws_client("lambda", moto.endpoint_url)
    function_name = f"{name}-download-result"
    lambda_client.create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": function_zip()},
        Timeout=FUNCTION_TIMEOUT,
        Environment={"Variables": settings_env},
    )
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=resources.queue_arn,
        FunctionName=function_name,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    tao.add_result(READY, size=1234)
    for variable in DOCTOR_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for key, value in {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto.endpoint_url, **settings_env}.items():
        monkeypatch.setenv(key, value)
    return Deployment(resources, function_name, settings_env, mapping["UUID"])


def parse(status: int, out: str) -> Report:
    lines = out.strip().splitlines()
    assert lines[0].split() == ["CHECK", "VERDICT", "DETAIL"], out
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[1:-1]:
        name, verdict, *detail = re.split(r"\s{2,}", line, maxsplit=2)
        rows[name] = (verdict, detail[0] if detail else "")
    return Report(status, rows, lines[-1], out)


def doctor(args: list[str], capsys: pytest.CaptureFixture[str]) -> Report:
    status = main(["doctor", *args])
    captured = capsys.readouterr()
    assert captured.err == ""
    return parse(status, captured.out)


def full_args(deployment: Deployment) -> list[str]:
    return [
        "--function-name", deployment.function_name,
        "--source-queue-url", deployment.resources.queue_url,
        "--reference-id", READY,
    ]  # fmt: skip


def assert_nothing_secret(output: str, tao: TaoEmulator) -> None:
    assert CLIENT_SECRET not in output
    for value in [*tao.issued_tokens(), *tao.issued_signatures()]:
        assert value not in output
    assert "X-Amz-" not in output


def probe_objects(moto: MotoServer, resources: StackResources) -> list[dict[str, Any]]:
    s3 = aws_client("s3", moto.endpoint_url)
    answer = s3.list_object_versions(Bucket=resources.bucket, Prefix="tao-results/")
    return [*answer.get("Versions", []), *answer.get("DeleteMarkers", [])]


# ------------------------------------------------------------------------------------ healthy


def test_a_healthy_deployment_passes_every_check(
    deployment: Deployment, moto: MotoServer, tao: TaoEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    report = doctor(full_args(deployment), capsys)

    assert report.status == 0, report.output
    assert list(report.rows) == ALL_CHECKS
    assert {verdict for verdict, _ in report.rows.values()} == {"PASS"}, report.output
    assert report.verdict == "doctor: PASS (9 passed, 0 failed, 0 skipped)"
    assert "client authentication client_secret_post, found by auto" in report.rows["token"][1]
    assert f"{READY}: signed URL {tao.base_url}/storage/results/{READY}/" in report.rows["download-api"][1]
    assert "?<redacted>" in report.rows["download-api"][1]
    assert "VisibilityTimeout 60 s vs 6 x Timeout 10 s" in report.rows["visibility-timeout"][1]
    assert deployment.mapping_uuid in report.rows["batch-item-failures"][1]
    assert "written and deleted" in report.rows["bucket-write"][1]
    assert probe_objects(moto, deployment.resources) == []  # the probe is gone
    assert_nothing_secret(report.output, tao)


@pytest.mark.parametrize(
    ("accepted", "configured", "named"),
    [
        (["multipart"], None, "multipart, found by auto"),
        (["client_secret_basic"], "client_secret_basic", "client_secret_basic, TAO_TOKEN_AUTH_METHOD"),
    ],
)
def test_the_token_row_names_the_client_authentication_that_worked(
    accepted: list[str],
    configured: str | None,
    named: str,
    deployment: Deployment,
    tao: TaoEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tao.configure(token_auth_methods=accepted)
    if configured:
        monkeypatch.setenv("TAO_TOKEN_AUTH_METHOD", configured)

    report = doctor(full_args(deployment), capsys)

    assert report.status == 0, report.output
    assert f"client authentication {named};" in report.rows["token"][1]


def test_a_pinned_client_authentication_the_endpoint_refuses_fails_the_token_check(
    deployment: Deployment,
    tao: TaoEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tao.configure(token_auth_methods=["multipart"])
    monkeypatch.setenv("TAO_TOKEN_AUTH_METHOD", "client_secret_post")

    report = doctor(full_args(deployment), capsys)

    assert report.status == 1
    assert report.failing() == {"token"}, report.output
    assert report.rows["token"][1].startswith("credentials_rejected"), report.output


def test_a_versioned_bucket_keeps_no_trace_of_the_probe(
    deployment: Deployment, moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = aws_client("s3", moto.endpoint_url)
    versioning = {"Status": "Enabled"}
    s3.put_bucket_versioning(Bucket=deployment.resources.bucket, VersioningConfiguration=versioning)

    report = doctor(full_args(deployment), capsys)

    assert report.rows["bucket-write"] == ("PASS", report.rows["bucket-write"][1])
    assert report.rows["bucket-write"][1].endswith("written and deleted")
    assert probe_objects(moto, deployment.resources) == []  # no version, no delete marker


def test_the_stack_names_the_function_and_its_environment_the_settings(
    deployment: Deployment,
    moto: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs = {
        "SourceQueueUrl": deployment.resources.queue_url,
        "DeadLetterQueueUrl": deployment.resources.dead_letter_queue_url,
        "FunctionName": deployment.function_name,
    }
    template_outputs = load_cfn_yaml(TEMPLATE)["Outputs"]
    assert set(outputs) <= set(template_outputs)  # the doctor reads what the real stack exposes
    stack = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    aws_client("cloudformation", moto.endpoint_url).create_stack(
        StackName="tao-results", TemplateBody=json.dumps(stack)
    )
    for variable in deployment.function_env:  # only the function's environment holds the settings
        monkeypatch.delenv(variable)

    report = doctor(["--stack-name", "tao-results", "--reference-id", READY], capsys)

    assert report.status == 0, report.output
    assert list(report.rows) == ["stack", *ALL_CHECKS]
    assert {verdict for verdict, _ in report.rows.values()} == {"PASS"}, report.output
    assert deployment.function_name in report.rows["stack"][1]
    assert f"the environment of function {deployment.function_name}" in report.rows["settings"][1]


def test_without_reference_id_the_tao_download_checks_skip_and_the_queue_is_found_from_the_function(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    report = doctor(["--function-name", deployment.function_name], capsys)

    assert report.status == 0, report.output
    assert report.rows["download-api"][0] == "SKIP"
    assert "--reference-id" in report.rows["download-api"][1]
    assert report.rows["signed-url-policy"] == ("SKIP", "needs a signed URL")
    assert report.rows["visibility-timeout"][0] == "PASS"  # queue from the event source mapping
    assert report.rows["batch-item-failures"][0] == "PASS", report.output
    assert report.verdict == "doctor: PASS (7 passed, 0 failed, 2 skipped)"


def test_the_function_is_found_from_the_queue(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    report = doctor(["--source-queue-url", deployment.resources.queue_url], capsys)
    assert report.rows["visibility-timeout"][0] == "PASS", report.output
    assert report.rows["batch-item-failures"][0] == "PASS", report.output


def test_without_function_or_queue_the_queue_checks_skip(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    report = doctor([], capsys)
    assert report.status == 0
    for check in ("visibility-timeout", "batch-item-failures"):
        verdict, note = report.rows[check]
        assert verdict == "SKIP"
        assert "--source-queue-url" in note and "--function-name" in note


# ----------------------------------------------------------------------------------- failures


def break_settings(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("PART_SIZE_BYTES", "1024")


def remove_secret(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("TAO_CREDENTIALS_SECRET_ID", "no/such/secret")


def garble_secret(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    secrets = aws_client("secretsmanager", moto.endpoint_url)
    secrets.put_secret_value(SecretId=d.resources.secret_id, SecretString='{"client_id": "only-the-id"}')


def rotate_secret(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    tao.rotate_secret("a-secret-the-deployment-does-not-know")


def forget_result(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    tao.remove_result(READY)


def sign_foreign_host(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    # 127.0.0.2 stands for a host outside SIGNED_URL_ALLOWED_HOSTS; the doctor never connects to it.
    tao.add_fault(Fault("download", "signed_url", url="http://127.0.0.2:9{signed_path}"))


def remove_bucket(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("RESULTS_BUCKET", f"{d.resources.bucket}-missing")


def remove_dlq(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    aws_client("sqs", moto.endpoint_url).delete_queue(QueueUrl=d.resources.dead_letter_queue_url)


def shorten_visibility(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    sqs = aws_client("sqs", moto.endpoint_url)
    sqs.set_queue_attributes(QueueUrl=d.resources.queue_url, Attributes={"VisibilityTimeout": "59"})


def drop_batch_item_failures(
    d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch
) -> None:
    lambda_client = aws_client("lambda", moto.endpoint_url)
    lambda_client.delete_event_source_mapping(UUID=d.mapping_uuid)
    lambda_client.create_event_source_mapping(
        EventSourceArn=d.resources.queue_arn, FunctionName=d.function_name, BatchSize=10
    )


def remove_mapping(d: Deployment, moto: MotoServer, tao: TaoEmulator, mp: pytest.MonkeyPatch) -> None:
    aws_client("lambda", moto.endpoint_url).delete_event_source_mapping(UUID=d.mapping_uuid)


Breaker = Callable[[Deployment, MotoServer, TaoEmulator, pytest.MonkeyPatch], None]


@pytest.mark.parametrize(
    ("breaker", "check", "detail"),
    [
        (break_settings, "settings", "PART_SIZE_BYTES must be between"),
        (
            remove_secret,
            "secret",
            "credentials_unavailable (HTTP 404): GetSecretValue failed: ResourceNotFound",
        ),
        (garble_secret, "secret", "credentials_invalid"),
        (rotate_secret, "token", "credentials_rejected (HTTP 401)"),
        (forget_result, "download-api", "not_found (HTTP 404)"),
        (
            sign_foreign_host,
            "signed-url-policy",
            "host '127.0.0.2' is an IP address not listed in SIGNED_URL_ALLOWED_HOSTS",
        ),
        (remove_bucket, "bucket-write", "NoSuchBucket"),
        (remove_dlq, "dead-letter-queue", "queue does not exist"),
        (shorten_visibility, "visibility-timeout", "VisibilityTimeout 59 s vs 6 x Timeout 10 s"),
        (drop_batch_item_failures, "batch-item-failures", "lacks ReportBatchItemFailures"),
        (remove_mapping, "batch-item-failures", "no event source mapping"),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_each_broken_part_fails_its_own_check(
    breaker: Breaker,
    check: str,
    detail: str,
    deployment: Deployment,
    moto: MotoServer,
    tao: TaoEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    breaker(deployment, moto, tao, monkeypatch)

    report = doctor(full_args(deployment), capsys)

    assert report.status == 1, report.output
    assert report.failing() == {check}, report.output
    assert detail in report.rows[check][1], report.output
    assert report.verdict.startswith(f"doctor: FAIL: {check} (")
    assert_nothing_secret(report.output, tao)


def test_checks_that_need_a_failed_one_are_skipped(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TAO_BASE_URL")

    report = doctor(full_args(deployment), capsys)

    assert report.rows["settings"] == (
        "FAIL",
        "TAO_BASE_URL is required but not set (read from this environment)",
    )
    for check in ALL_CHECKS[1:7]:
        assert report.rows[check] == ("SKIP", "needs settings"), check
    assert report.rows["visibility-timeout"][0] == "PASS"  # independent of the settings


def test_a_function_that_does_not_exist_fails_the_queue_checks(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    report = doctor(
        ["--function-name", "no-such-function", "--source-queue-url", deployment.resources.queue_url], capsys
    )
    assert report.status == 1
    assert report.rows["visibility-timeout"] == ("FAIL", "function does not exist: no-such-function")


# ------------------------------------------------------------------------- reads we may not make


class Denied:
    """A client whose every call is refused as IAM refuses it (no IAM in moto to deny with)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            message = "User: arn:aws:iam::123456789012:user/operator is not authorized"
            error = {"Error": {"Code": self.code, "Message": message}}
            raise ClientError(error, name)  # type: ignore[arg-type]

        if name == "get_paginator":
            return lambda operation: type("Pages", (), {"paginate": refuse})()
        return refuse


@pytest.mark.parametrize("service", ["lambda", "sqs"])
def test_denied_lambda_and_source_queue_reads_are_skipped_with_a_note(
    deployment: Deployment, service: str
) -> None:
    denied = Denied("AccessDeniedException" if service == "lambda" else "AccessDenied")
    if service == "lambda":
        clients = DoctorClients(lambda_=lambda: denied)  # type: ignore[arg-type,return-value]
    else:  # the doctor's own SQS client (the source queue); the function's DLQ client is not denied
        clients = DoctorClients(sqs=lambda: denied)  # type: ignore[arg-type,return-value]
    options = DoctorOptions(
        function_name=deployment.function_name,
        source_queue_url=deployment.resources.queue_url,
        reference_id=READY,
    )

    results = {r.name: r for r in Doctor(options, os.environ, clients).run()}

    for check in ("visibility-timeout", "batch-item-failures"):
        assert results[check].verdict is Verdict.SKIP, results[check]
        assert "may not read" in results[check].detail
        assert f"({denied.code})" in results[check].detail
    assert {r.verdict for name, r in results.items() if name in ALL_CHECKS[:7]} == {Verdict.PASS}
    assert denied.calls  # the doctor did ask


def test_a_denied_stack_read_falls_back_to_this_environment(deployment: Deployment) -> None:
    clients = DoctorClients(cloudformation=lambda: Denied("AccessDenied"))  # type: ignore[arg-type,return-value]
    options = DoctorOptions(
        stack_name="tao-results",
        function_name=deployment.function_name,
        source_queue_url=deployment.resources.queue_url,
    )

    results = {r.name: r for r in Doctor(options, os.environ, clients).run()}

    assert results["stack"].verdict is Verdict.SKIP
    assert "may not read stack tao-results (AccessDenied)" in results["stack"].detail
    assert results["settings"].verdict is Verdict.PASS
    assert "this environment" in results["settings"].detail
    assert results["batch-item-failures"].verdict is Verdict.PASS


def test_a_stack_that_is_not_settled_fails(deployment: Deployment) -> None:
    class RolledBack:
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            return {"Stacks": [{"StackName": StackName, "StackStatus": "ROLLBACK_COMPLETE", "Outputs": []}]}

    clients = DoctorClients(cloudformation=RolledBack)  # type: ignore[arg-type,return-value]
    results = Doctor(DoctorOptions(stack_name="tao-results"), os.environ, clients).run()
    assert results[0].name == "stack"
    assert results[0].verdict is Verdict.FAIL
    assert "ROLLBACK_COMPLETE" in results[0].detail


# ------------------------------------------------------------------------------ usage and help


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["doctor", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tao-results doctor")
    for option in ("--stack-name", "--function-name", "--source-queue-url", "--reference-id"):
        assert option in out
    assert "TAO_CREDENTIALS_SECRET_ID" in out


def one_line_error(status: int, err: str) -> str:
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_an_unknown_stack_is_a_usage_error(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["doctor", "--stack-name", "no-such-stack"])
    assert "stack does not exist: no-such-stack" in one_line_error(status, capsys.readouterr().err)


def test_a_bad_reference_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["doctor", "--reference-id", "not a reference"])
    assert "invalid --reference-id 'not a reference'" in one_line_error(status, capsys.readouterr().err)


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(ROOT / "layers" / "tao_results")
    return subprocess.run(
        [sys.executable, "-m", "tao_results_cli.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_credentials_is_a_usage_error(tmp_path: Path) -> None:
    env = {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = run_cli(["doctor"], env)
    assert "no AWS credentials" in one_line_error(result.returncode, result.stderr)


def test_through_the_console_module(deployment: Deployment, tao: TaoEmulator) -> None:
    env = {key: value for key, value in os.environ.items() if key.startswith("AWS_")}
    result = run_cli(["doctor", *full_args(deployment)], {**env, **deployment.function_env})

    assert result.returncode == 0, result.stdout + result.stderr
    report = parse(result.returncode, result.stdout)
    assert list(report.rows) == ALL_CHECKS
    assert report.verdict.startswith("doctor: PASS")
    assert_nothing_secret(result.stdout + result.stderr, tao)

    tao.rotate_secret("rotated-elsewhere")
    result = run_cli(["doctor", *full_args(deployment)], {**env, **deployment.function_env})
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1].startswith("doctor: FAIL: token (")


def test_an_allowed_name_on_an_unlisted_private_address_fails_the_policy_check(
    deployment: Deployment, tao: TaoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function refuses this at connect time (every message would be dead-lettered), so the
    # doctor must too: it resolves the name (here through a table, never DNS) and admits addresses.
    port = tao.port
    tao.add_fault(Fault("download", "signed_url", url=f"http://files.tao.test:{port}{{signed_path}}"))
    monkeypatch.setenv("SIGNED_URL_ALLOWED_HOSTS", f"files.tao.test:{port},amazon-s3")
    resolver = TableResolver({"files.tao.test": ["127.0.0.1"]})
    options = DoctorOptions(
        function_name=deployment.function_name,
        source_queue_url=deployment.resources.queue_url,
        reference_id=READY,
    )

    results = {r.name: r for r in Doctor(options, os.environ, resolver=resolver).run()}

    check = results["signed-url-policy"]
    assert check.verdict is Verdict.FAIL, check
    assert "resolved to 127.0.0.1 (loopback), not allowed" in check.detail
    assert resolver.lookups == ["files.tao.test"]

    monkeypatch.setenv("SIGNED_URL_ALLOWED_HOSTS", f"files.tao.test:{port},127.0.0.1,amazon-s3")
    results = {r.name: r for r in Doctor(options, os.environ, resolver=resolver).run()}
    assert results["signed-url-policy"].verdict is Verdict.PASS, results["signed-url-policy"]
