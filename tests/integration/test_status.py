"""``tao-results status`` against moto's server: stack outputs, queue depths, DLQ reasons, CloudWatch.

The stack is a real CloudFormation stack in moto (its queues made by moto's CloudFormation), the
metrics are real PutMetricData points, and the caller that may not read CloudWatch is a real IAM
user whose policy moto enforces.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tao_results_cli.cli import main
from tests.support.aws_stack import FAKE_CREDENTIALS, REGION, MotoServer, aws_client

SERVICE = "tao-results-to-s3"
NAMESPACE = "TaoResultsToS3"
STACK_TEMPLATE = {
    "Resources": {
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "SourceQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 3,
                }
            },
        },
    },
    "Outputs": {
        "SourceQueueUrl": {"Value": {"Ref": "SourceQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
    },
}


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    moto_server.reset()
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server


def create_stack(cloudformation: Any) -> tuple[str, str, str]:
    name = f"s{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(STACK_TEMPLATE))
    outputs = {
        output["OutputKey"]: output["OutputValue"]
        for output in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    return name, outputs["SourceQueueUrl"], outputs["DeadLetterQueueUrl"]


def envelope(reason: str) -> str:
    """A dead letter as the function writes it (the fields ``tao_results.message.is_dead_letter`` reads)."""
    letter = {
        "referenceId": "r",
        "reason": reason,
        "originalBody": '{"referenceId": "r"}',
        "messageId": str(uuid.uuid4()),
        "failedAt": "2024-01-01T00:00:00.000Z",
    }
    return json.dumps(letter)


def put_copies(cloudwatch: Any, when: datetime, copied: int, size: int) -> None:
    dimensions = [{"Name": "service", "Value": SERVICE}]
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {"MetricName": "ResultsCopied", "Dimensions": dimensions, "Value": copied, "Timestamp": when},
            {"MetricName": "BytesCopied", "Dimensions": dimensions, "Value": size, "Timestamp": when},
        ],
    )


def test_status_reads_outputs_depths_reasons_and_last_hours_copies(
    moto: MotoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    name, source, dlq = create_stack(aws_client("cloudformation", moto.endpoint_url))
    sqs = aws_client("sqs", moto.endpoint_url)
    for index in range(4):
        sqs.send_message(QueueUrl=source, MessageBody=json.dumps({"referenceId": f"r{index}"}))
    sqs.send_message(QueueUrl=source, MessageBody='{"referenceId": "later"}', DelaySeconds=600)
    sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=1, VisibilityTimeout=600)  # one in flight
    for reason in ("not_found", "not_found", "insufficient_scope"):
        sqs.send_message(QueueUrl=dlq, MessageBody=envelope(reason))
    sqs.send_message(QueueUrl=dlq, MessageBody='{"referenceId": "raw"}')  # moved by SQS's redrive
    cloudwatch = aws_client("cloudwatch", moto.endpoint_url)
    now = datetime.now(UTC)
    put_copies(cloudwatch, now - timedelta(minutes=10), 2, 3 * 1024 * 1024)
    put_copies(cloudwatch, now - timedelta(minutes=40), 1, 1024 * 1024)
    put_copies(cloudwatch, now - timedelta(hours=3), 50, 1 << 30)  # older than the hour

    assert main(["status", "--stack-name", name]) == 0

    out = capsys.readouterr().out
    assert f"stack {name}" in out
    assert f"source       3 visible, 1 in flight, 1 delayed   {source}" in out
    assert f"dead-letter  4 visible, 0 in flight, 0 delayed   {dlq}" in out
    assert (
        "dead letters by reason (peeked 4): not_found 2, insufficient_scope 1, max_receive_count_exceeded 1"
        in out
    )
    assert "last hour: 3 result(s) copied, 4.0 MiB" in out
    depth = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "4"  # peeked, not consumed


def test_status_of_a_missing_stack_is_one_line(moto: MotoServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--stack-name", "no-such-stack"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tao-results: error: no stack named 'no-such-stack' in this account and region"]


def test_status_default_stack_name_is_samconfigs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    assert "default: tao-results-to-s3" in capsys.readouterr().out


@pytest.fixture
def enforcing_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A moto server that enforces IAM policies after the three calls that create the test's user."""
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")
    server = MotoServer().start()
    monkeypatch.delenv("INITIAL_NO_AUTH_ACTION_COUNT")
    try:
        yield server
    finally:
        server.stop()


def test_status_without_cloudwatch_access_shows_the_queues_and_a_note(
    enforcing_moto: MotoServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    iam = aws_client("iam", enforcing_moto.endpoint_url)
    iam.create_user(UserName="operator")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sqs:*", "cloudformation:*"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName="operator", PolicyName="no-cloudwatch", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    for name, value in {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": enforcing_moto.endpoint_url,
    }.items():
        monkeypatch.setenv(name, value)
    cloudformation = boto3.session.Session().client("cloudformation")  # this user's keys
    name, source, _ = create_stack(cloudformation)

    assert main(["status", "--stack-name", name]) == 0

    out = capsys.readouterr().out
    assert f"source       0 visible, 0 in flight, 0 delayed   {source}" in out
    assert "last hour's copies not shown: CloudWatch refused" in out
    assert "last hour:" not in out
