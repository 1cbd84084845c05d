"""``tao-results`` against moto's server: enqueue, dlq list, dlq redrive (both paths), run-local,
``--help`` everywhere, and user errors reported in one line with exit status 2.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tao_results_cli.cli as cli
from tao_emulator import Fault, TaoEmulator
from tao_results_cli.cli import main
from tests.support.aws_stack import (
    FAKE_CREDENTIALS,
    MotoServer,
    StackResources,
    aws_client,
    create_resources,
    free_port,
    function_environment,
)

ROOT = Path(__file__).resolve().parents[2]
URL_VARIABLES = ("SOURCE_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE")


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server (tests/conftest.py), emptied for each test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def resources(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> StackResources:
    for name in URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    return create_resources(
        moto.endpoint_url, client_id="id", client_secret="secret", name=f"c{uuid.uuid4().hex[:8]}"
    )


@pytest.fixture
def sqs(moto: MotoServer) -> Any:
    return aws_client("sqs", moto.endpoint_url)


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive (and delete) everything in a queue."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def visible(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def run_cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    for name in URL_VARIABLES:
        full_env.pop(name, None)
    full_env.update(env)
    full_env["PYTHONPATH"] = str(ROOT / "layers" / "tao_results")
    return subprocess.run(
        [sys.executable, "-m", "tao_results_cli.cli", *args],
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def envelope(reference_id: str | None, reason: str, status: int | None, original: str) -> str:
    return json.dumps(
        {
            "referenceId": reference_id,
            "reason": reason,
            "httpStatus": status,
            "detail": "from the test",
            "originalBody": original,
            "messageId": str(uuid.uuid4()),
            "failedAt": "2024-01-01T00:00:00+00:00",
        }
    )


# ------------------------------------------------------------------------------------------- --help


@pytest.mark.parametrize(
    "command",
    [[], ["enqueue"], ["dlq"], ["dlq", "list"], ["dlq", "redrive"], ["run-local"]],
)
def test_help_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(['tao-results', *command])}")
    assert "--help" in out


def test_help_through_the_console_module() -> None:
    result = run_cli(["--help"], env={})
    assert result.returncode == 0
    for command in ("enqueue", "dlq", "run-local"):
        assert command in result.stdout


# ------------------------------------------------------------------------------------------ enqueue


def test_enqueue_from_arguments_stdin_and_file(
    resources: StackResources,
    sqs: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refs = [f"ref-{index}" for index in range(12)]
    listing = tmp_path / "refs.txt"
    listing.write_text("# a comment\nfile-1\n\nfile-2\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("stdin-1\nstdin.2_x\n"))

    status = main(["enqueue", "--queue-url", resources.queue_url, *refs, "-", "--file", str(listing)])

    assert status == 0
    assert "enqueued 16 of 16" in capsys.readouterr().out
    bodies = sorted(message["Body"] for message in drain(sqs, resources.queue_url))
    expected = [*refs, "stdin-1", "stdin.2_x", "file-1", "file-2"]
    assert bodies == sorted(json.dumps({"referenceId": ref}) for ref in expected)


def test_enqueue_uses_source_queue_url_from_the_environment(
    resources: StackResources, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_QUEUE_URL", resources.queue_url)
    assert main(["enqueue", "-q", "only-one"]) == 0
    assert visible(sqs, resources.queue_url) == 1


def test_enqueue_validates_every_reference_before_sending(
    resources: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["enqueue", "--queue-url", resources.queue_url, "good-1", "bad ref", "_bad", "x" * 129])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "invalid referenceId 'bad ref' (and 2 more)" in err
    assert visible(sqs, resources.queue_url) == 0


def test_enqueue_reports_entries_the_queue_refuses(
    resources: StackResources, sqs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class RefusesOne:
        def __init__(self, client: Any) -> None:
            self.client = client
            self.calls = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls += 1
            refused = [entry for entry in Entries if "refused" in entry["MessageBody"]]
            flaky = [entry for entry in Entries if "flaky" in entry["MessageBody"] and self.calls == 1]
            kept = [entry for entry in Entries if entry not in refused and entry not in flaky]
            answer = self.client.send_message_batch(QueueUrl=QueueUrl, Entries=kept)
            answer.setdefault("Failed", [])
            answer["Failed"] += [
                {"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents", "Message": "no"}
                for e in refused
            ]
            answer["Failed"] += [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in flaky
            ]
            return answer

    monkeypatch.setattr(cli, "sqs_client", lambda *args, **kwargs: RefusesOne(sqs))
    status = main(["enqueue", "--queue-url", resources.queue_url, "a", "refused", "flaky", "b"])

    assert status == 1
    captured = capsys.readouterr()
    assert "not sent: refused: InvalidMessageContents: no" in captured.err
    assert "enqueued 3 of 4" in captured.out
    bodies = sorted(message["Body"] for message in drain(sqs, resources.queue_url))
    assert bodies == sorted(json.dumps({"referenceId": ref}) for ref in ["a", "flaky", "b"])


SHAPES: dict[str, list[str]] = {
    "shape-direct": [],
    "4242": ["--numeric-ids"],
    "shape-token": ["--task-token", "arn-like:token/1"],
    "shape-pass": ["--passthrough", '{"tenant": "north", "n": [1, 2.5]}'],
    "shape-sns": ["--envelope", "sns", "--passthrough", "[1, 2]"],
    "4343": ["--envelope", "sns", "--numeric-ids", "--task-token", "t-2"],
    "shape-eb": ["--envelope", "eventbridge", "--task-token", "t-3", "--passthrough", '"x"'],
    "4444": ["--envelope", "eventbridge", "--numeric-ids", "--event-source", "school.rostering"],
}


def test_enqueue_every_request_shape_and_the_real_function_copies_each(
    resources: StackResources, tao: TaoEmulator, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for reference, options in SHAPES.items():
        assert main(["enqueue", "--queue-url", resources.queue_url, *options, reference]) == 0
        assert "enqueued 1 of 1" in capsys.readouterr().out
    bodies = [json.loads(body) for body in dlq_ids(sqs, resources.queue_url)]  # peeked, visible again
    assert len(bodies) == len(SHAPES)
    requests = [
        json.loads(body["Message"]) if "Type" in body else body.get("detail", body) for body in bodies
    ]
    assert {request["referenceId"] for request in requests} == {
        "shape-direct", 4242, "shape-token", "shape-pass", "shape-sns", 4343, "shape-eb", 4444,
    }  # fmt: skip
    assert sum("Type" in body for body in bodies) == 2
    [event] = [body for body in bodies if body.get("source") == "school.rostering"]
    queue = sqs.get_queue_attributes(QueueUrl=resources.queue_url, AttributeNames=["QueueArn"])
    assert ["arn", "aws", "sqs", event["region"], event["account"]] == queue["Attributes"]["QueueArn"].split(
        ":"
    )[:5]

    tao.configure(client_id="id", client_secret="secret")
    for reference in SHAPES:
        tao.add_result(reference, size=2048, filename="report.csv")
    environment = function_environment(resources, tao.base_url, RESULTS_PREFIX="shapes/")
    result = run_cli(
        [
            "run-local", "--queue-url", resources.queue_url,
            "--function-dir", str(ROOT / "functions" / "download_result"),
            "--layer-dir", str(ROOT / "layers" / "tao_results"),
            "--until-empty", "--settle", "0.5", "--timeout", "30", "--function-logs", "none",
        ],
        env=environment,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert f"{len(SHAPES)} message(s): {len(SHAPES)} → S3" in result.stdout.splitlines()[-1], result.stdout
    s3 = aws_client("s3", resources.endpoint_url)
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=resources.bucket)["Contents"]}
    assert keys == {f"shapes/{reference}/report.csv" for reference in SHAPES}
    assert visible(sqs, resources.dead_letter_queue_url) == 0


# ---------------------------------------------------------------------------------------- dlq list


def fill_dlq(sqs: Any, resources: StackResources) -> dict[str, str]:
    bodies = {
        "envelope": envelope("ref-403", "insufficient_scope", 403, '{"referenceId": "ref-403"}'),
        "malformed": envelope(None, "malformed_message", None, "not json"),
        "raw": json.dumps({"referenceId": "ref-raw"}),
        "garbage": "<<not json>>",
    }
    for kind, body in bodies.items():
        attributes = {"reason": {"DataType": "String", "StringValue": kind}}
        sqs.send_message(
            QueueUrl=resources.dead_letter_queue_url, MessageBody=body, MessageAttributes=attributes
        )
    return bodies


def dlq_ids(sqs: Any, queue_url: str) -> dict[str, str]:
    """body -> the DLQ message's own MessageId (peeked, made visible again)."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    sqs.change_message_visibility_batch(
        QueueUrl=queue_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ],
    )
    return {message["Body"]: message["MessageId"] for message in messages}


def test_dlq_list_shows_dead_letters_without_consuming_them(
    resources: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_dlq(sqs, resources)

    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["REASON", "HTTP", "REFERENCE", "ID", "AGE", "MESSAGE", "ID"]
    assert "insufficient_scope" in table
    assert "ref-403" in table
    assert "malformed_message" in table
    assert table.count("max_receive_count_exceeded") == 2
    assert "ref-raw" in table
    assert "4 dead letter(s)" in table
    assert visible(sqs, resources.dead_letter_queue_url) == 4  # visible again right away

    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url, "--json"]) == 0
    letters = json.loads(capsys.readouterr().out)
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for letter in letters:
        by_reason.setdefault(letter["reason"], []).append(letter)
    assert by_reason["insufficient_scope"][0]["httpStatus"] == 403
    assert by_reason["insufficient_scope"][0]["referenceId"] == "ref-403"
    assert by_reason["malformed_message"][0]["referenceId"] is None
    raw_refs = sorted(str(letter["referenceId"]) for letter in by_reason["max_receive_count_exceeded"])
    assert raw_refs == ["None", "ref-raw"]
    assert len({letter["messageId"] for letter in letters}) == 4
    assert visible(sqs, resources.dead_letter_queue_url) == 4


def test_dlq_list_names_the_failed_message_not_the_dead_letter(
    resources: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator greps the function's logs (message_id) and the source side for the id of the
    message that failed: the dead letter's ``messageId``. The DLQ's own id stays in --json."""
    bodies = fill_dlq(sqs, resources)
    own_ids = dlq_ids(sqs, resources.dead_letter_queue_url)
    original_id = json.loads(bodies["envelope"])["messageId"]

    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url]) == 0
    table = capsys.readouterr().out
    [row] = [line for line in table.splitlines() if line.startswith("insufficient_scope")]
    assert row.split()[-1] == original_id
    assert own_ids[bodies["envelope"]] not in table

    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url, "--json"]) == 0
    letters = {letter["body"]: letter for letter in json.loads(capsys.readouterr().out)}
    assert letters[bodies["envelope"]]["messageId"] == original_id
    assert letters[bodies["envelope"]]["dlqMessageId"] == own_ids[bodies["envelope"]]
    # a raw message SQS moved itself carries no other id than its own
    assert (
        letters[bodies["raw"]]["messageId"]
        == letters[bodies["raw"]]["dlqMessageId"]
        == own_ids[bodies["raw"]]
    )
    assert {letter["dlqMessageId"] for letter in letters.values()} == set(own_ids.values())


def test_dlq_list_after_the_real_function_shows_each_failed_messages_id_reference_and_reason(
    resources: StackResources, tao: TaoEmulator, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_local_with_the_real_function(resources, tao, sqs, ["--function-logs", "none"])
    assert result.returncode == 0, result.stderr
    # run-local's lines name each message by the first 8 characters of its id
    line_format = re.compile(r"\d\d:\d\d:\d\d (.+?) \[([0-9a-f-]{8})\] .*→ DLQ")
    prefixes = dict(match.groups() for match in map(line_format.match, result.stdout.splitlines()) if match)
    assert set(prefixes) == {"cli-denied", "<no referenceId>"}

    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url, "--json"]) == 0
    letters = {letter["reason"]: letter for letter in json.loads(capsys.readouterr().out)}
    denied = letters["insufficient_scope"]
    assert (denied["referenceId"], denied["httpStatus"], denied["attempts"]) == ("cli-denied", 403, 1)
    assert denied["messageId"].startswith(prefixes["cli-denied"])
    assert letters["malformed_message"]["messageId"].startswith(prefixes["<no referenceId>"])
    assert denied["dlqMessageId"] != denied["messageId"]

    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("insufficient_scope")]
    assert row.split()[:3] == ["insufficient_scope", "403", "cli-denied"]
    assert row.split()[-1] == denied["messageId"]


def test_dlq_list_respects_max_and_empty_queue(
    resources: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url]) == 0
    assert "(no dead letters)" in capsys.readouterr().out
    fill_dlq(sqs, resources)
    assert main(["dlq", "list", "--dlq-url", resources.dead_letter_queue_url, "--max", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert visible(sqs, resources.dead_letter_queue_url) == 4


# ------------------------------------------------------------------------------------- dlq redrive


def test_redrive_falls_back_to_copying_when_the_endpoint_lacks_move_tasks(
    resources: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = fill_dlq(sqs, resources)
    started = time.monotonic()

    status = main(
        [
            "dlq",
            "redrive",
            "--dlq-url",
            resources.dead_letter_queue_url,
            "--to-queue-url",
            resources.queue_url,
        ]
    )

    assert status == 0
    assert time.monotonic() - started < 10  # the unsupported call is not retried for long
    captured = capsys.readouterr()
    assert "not supported by this endpoint; copying instead" in captured.err
    assert "moved 4 message(s)" in captured.out
    moved = drain(sqs, resources.queue_url)
    assert sorted(message["Body"] for message in moved) == sorted(bodies.values())  # verbatim
    reasons = {message["MessageAttributes"]["reason"]["StringValue"] for message in moved}
    assert reasons == set(bodies)  # attributes travel too
    assert drain(sqs, resources.dead_letter_queue_url) == []


def test_redrive_copy_flag_and_max(
    resources: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_dlq(sqs, resources)
    args = ["dlq", "redrive", "--dlq-url", resources.dead_letter_queue_url]
    status = main([*args, "--to-queue-url", resources.queue_url, "--copy", "--max", "3"])
    assert status == 0
    captured = capsys.readouterr()
    assert "not supported" not in captured.err
    assert "moved 3 message(s)" in captured.out
    assert len(drain(sqs, resources.queue_url)) == 3
    assert len(drain(sqs, resources.dead_letter_queue_url)) == 1


def test_redrive_copy_never_deletes_what_was_not_sent(
    resources: StackResources, sqs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = fill_dlq(sqs, resources)

    class DestinationRefuses:
        def __getattr__(self, name: str) -> Any:
            return getattr(sqs, name)

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            first, *rest = Entries
            answer: dict[str, Any] = sqs.send_message_batch(QueueUrl=QueueUrl, Entries=[first])
            answer["Failed"] = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in rest]
            return answer

    monkeypatch.setattr(cli, "sqs_client", lambda *args, **kwargs: DestinationRefuses())
    args = [
        "dlq",
        "redrive",
        "--dlq-url",
        resources.dead_letter_queue_url,
        "--to-queue-url",
        resources.queue_url,
    ]
    assert main([*args, "--copy"]) == 1
    assert "moved 1 message(s)" in capsys.readouterr().out
    in_source = [message["Body"] for message in drain(sqs, resources.queue_url)]
    in_dlq = [message["Body"] for message in drain(sqs, resources.dead_letter_queue_url)]  # visible again
    assert sorted(in_source + in_dlq) == sorted(bodies.values())


def test_redrive_copy_needs_a_destination(
    resources: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "redrive", "--dlq-url", resources.dead_letter_queue_url, "--copy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--to-queue-url" in err


class MoveTasks:
    """StartMessageMoveTask/ListMessageMoveTasks as SQS answers them, on top of moto's client."""

    def __init__(self, client: Any, dlq_url: str, source_url: str) -> None:
        self.client = client
        self.dlq_url = dlq_url
        self.source_url = source_url
        self.requests: list[dict[str, Any]] = []
        self.listings = 0
        self.moved = 0
        self.started = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def start_message_move_task(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        self.started = int(time.time() * 1000)
        for message in drain(self.client, self.dlq_url):
            self.client.send_message(QueueUrl=self.source_url, MessageBody=message["Body"])
            self.moved += 1
        return {"TaskHandle": "handle-1"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        self.listings += 1
        task: dict[str, Any] = {
            "SourceArn": SourceArn,
            "StartedTimestamp": self.started,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.moved,
        }
        if self.listings == 1:
            return {"Results": [{**task, "Status": "RUNNING", "TaskHandle": "handle-1"}]}
        return {"Results": [{**task, "Status": "COMPLETED"}]}  # finished tasks have no handle


@pytest.mark.parametrize("with_destination", [True, False])
def test_redrive_uses_the_native_move_task_when_available(
    resources: StackResources,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    with_destination: bool,
) -> None:
    bodies = fill_dlq(sqs, resources)
    tasks = MoveTasks(sqs, resources.dead_letter_queue_url, resources.queue_url)
    monkeypatch.setattr(cli, "sqs_client", lambda *args, **kwargs: tasks)
    monkeypatch.setattr("tao_results_cli.queues.time.sleep", lambda seconds: None)
    args = ["dlq", "redrive", "--dlq-url", resources.dead_letter_queue_url]
    if with_destination:
        args += ["--to-queue-url", resources.queue_url]

    assert main(args) == 0

    expected = {"SourceArn": resources.dead_letter_queue_arn}
    if with_destination:
        expected["DestinationArn"] = resources.queue_arn
    assert tasks.requests == [expected]
    assert "message move task COMPLETED: moved 4 of 4 message(s)" in capsys.readouterr().out
    assert sorted(message["Body"] for message in drain(sqs, resources.queue_url)) == sorted(bodies.values())


# --------------------------------------------------------------------------------------- run-local


def test_run_local_processes_the_queue_until_empty(
    resources: StackResources,
    sqs: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # sys.path is restored afterwards
    function_dir = tmp_path / "function"
    function_dir.mkdir()
    module = f"fn_{uuid.uuid4().hex[:8]}"
    (function_dir / f"{module}.py").write_text(
        "import json, os\nMARK = os.environ['CLI_TEST_MARK']\n\n"
        "def handler(event, context):\n"
        "    bad = [r['messageId'] for r in event['Records'] if 'fail' in r['body']]\n"
        "    return {'batchItemFailures': [{'itemIdentifier': i} for i in bad]}\n"
    )
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps({"referenceId": "fine"}))
    saved_environment = dict(os.environ)  # run-local sets the function's and AWS_LAMBDA_* variables
    os.environ["CLI_TEST_MARK"] = "x"
    try:
        status = main([
            "run-local",
            "--queue-url", resources.queue_url,
            "--function-dir", str(function_dir),
            "--layer-dir", str(tmp_path),
            "--handler", f"{module}:handler",
            "--until-empty", "--settle", "0.5", "--wait-time", "1", "--timeout", "30",
            "--env", "CLI_TEST_MARK=set-by-flag",
        ])  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)
    assert status == 0
    out = capsys.readouterr().out
    assert "fine" in out
    # this handler logs nothing, so nothing says where the message went; the line says so
    assert "→ done (the function logged no destination" in out
    assert "stopped (until_empty)" in out
    assert "1 destination unknown" in out
    assert sys.modules[module].MARK == "set-by-flag"
    assert visible(sqs, resources.queue_url) == 0


def run_local_with_the_real_function(
    resources: StackResources, tao: TaoEmulator, sqs: Any, extra: list[str]
) -> subprocess.CompletedProcess[str]:
    """The real handler via ``python -m tao_results_cli.cli run-local``: one copy, two dead letters."""
    tao.configure(client_id="id", client_secret="secret")  # what the resources fixture's secret holds
    tao.add_result("cli-ok", size=70 * 1024, filename="report.csv")
    tao.add_result("cli-denied", size=10)
    tao.add_fault(
        Fault(
            "download", "status", "cli-denied", times=None, status=403,
            body='{"message": "Insufficient scope"}', content_type="application/json",
        )
    )  # fmt: skip
    for reference in ("cli-ok", "cli-denied"):
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps({"referenceId": reference}))
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody="not json")
    environment = function_environment(resources, tao.base_url, RESULTS_PREFIX="cli/")
    environment.pop("POWERTOOLS_METRICS_DISABLED", None)
    args = [
        "run-local",
        "--queue-url", resources.queue_url,
        "--function-dir", str(ROOT / "functions" / "download_result"),
        "--layer-dir", str(ROOT / "layers" / "tao_results"),
        "--until-empty", "--settle", "0.5", "--timeout", "30",
    ]  # fmt: skip
    return run_cli([*args, *extra], env=environment)


def test_run_local_says_where_each_message_went_and_keeps_the_function_logs_apart(
    resources: StackResources, tao: TaoEmulator, sqs: Any, tmp_path: Path
) -> None:
    logs = tmp_path / "logs" / "function.log"
    started = time.monotonic()
    result = run_local_with_the_real_function(resources, tao, sqs, ["--function-logs", str(logs)])

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("{")], result.stdout  # no JSON on stdout
    [ok] = [line for line in lines if " cli-ok " in line]
    assert f"→ s3://{resources.bucket}/cli/cli-ok/report.csv" in ok
    [denied] = [line for line in lines if " cli-denied " in line]
    assert "→ DLQ (insufficient_scope, HTTP 403)" in denied
    [malformed] = [line for line in lines if "<no referenceId>" in line]
    assert "→ DLQ (malformed_message)" in malformed
    assert f"the function's logs go to {logs}" in lines[0]
    assert "3 message(s): 1 → S3, 2 → DLQ" in lines[-1]
    assert time.monotonic() - started < 30  # --until-empty polls briefly: no 20 s long poll at the end
    records = [json.loads(line) for line in logs.read_text().splitlines()]
    assert {"Result copied", "Permanent failure, message dead-lettered"} <= {
        r.get("message") for r in records
    }
    assert any("_aws" in record for record in records)  # the EMF metrics are the function's output too
    assert "{" not in result.stderr


def test_run_local_sends_the_function_logs_to_stderr_by_default(
    resources: StackResources, tao: TaoEmulator, sqs: Any
) -> None:
    result = run_local_with_the_real_function(resources, tao, sqs, [])

    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert "Result copied" in {record.get("message") for record in logged}
    assert "the function's logs go to stderr" in result.stdout


RUNNER_LINE = re.compile(r"(polling |\d\d:\d\d:\d\d |stopped \()")
NO_METRICS_WARNING = "No application metrics to publish"


def test_run_local_function_logs_none_drops_the_functions_warnings_too(
    resources: StackResources, tao: TaoEmulator, sqs: Any, tmp_path: Path
) -> None:
    """A redelivery whose result is already stored publishes no metric, so Powertools warns
    (``UserWarning``, on stderr): the function's output, like its log lines."""
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps({"referenceId": "cli-ok"}))
    logs = tmp_path / "function.log"
    kept = run_local_with_the_real_function(
        resources, tao, sqs, ["--function-logs", str(logs), "--batch-size", "1"]
    )
    assert kept.returncode == 0, kept.stderr
    assert NO_METRICS_WARNING in logs.read_text()  # the case this test is about did happen
    assert kept.stderr == ""

    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps({"referenceId": "cli-ok"}))
    dropped = run_local_with_the_real_function(
        resources, tao, sqs, ["--function-logs", "none", "--batch-size", "1"]
    )

    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stderr == ""
    lines = dropped.stdout.splitlines()
    assert [line for line in lines if not RUNNER_LINE.match(line)] == []
    assert sum(" cli-ok " in line for line in lines) == 2
    assert "already stored" in dropped.stdout
    assert "4 message(s): 2 → S3, 2 → DLQ" in lines[-1]


NOISY_HANDLER = """
import logging, sys, threading, warnings

def handler(event, context):
    warnings.warn("a library's warning")
    print("a stray line on stderr", file=sys.stderr)
    logging.getLogger("some.library").warning("a library logger without handlers")
    thread = threading.Thread(target=lambda: print("from a thread", file=sys.stderr))
    thread.start()
    thread.join()
    sys.stdout.write("half a stdout line,")
    print("a whole stderr line", file=sys.stderr)
    print(" then its end")
    print('{"message": "a JSON log line"}')
    return {"batchItemFailures": []}
"""


@pytest.mark.parametrize("target", ["none", "file", "-"])
def test_run_local_sends_everything_the_function_writes_where_function_logs_says(
    resources: StackResources, sqs: Any, tmp_path: Path, target: str
) -> None:
    function_dir = tmp_path / "function"
    function_dir.mkdir()
    (function_dir / "noisy_fn.py").write_text(NOISY_HANDLER)
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps({"referenceId": "noisy"}))
    logs = tmp_path / "function.log"
    result = run_cli(
        [
            "run-local", "--queue-url", resources.queue_url,
            "--function-dir", str(function_dir), "--layer-dir", str(tmp_path),
            "--handler", "noisy_fn:handler",
            "--until-empty", "--settle", "0.5", "--timeout", "30", "--verbose",
            "--function-logs", str(logs) if target == "file" else target,
        ],
        env={**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": resources.endpoint_url},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if not RUNNER_LINE.match(line)] == []
    written = {"none": "", "file": logs.read_text() if logs.exists() else "", "-": result.stderr}[target]
    for text in (
        "UserWarning: a library's warning",
        "a stray line on stderr",
        "a library logger without handlers",
        "from a thread",
        "\nhalf a stdout line, then its end\n",
        "\na whole stderr line\n",
        '{"message": "a JSON log line"}',
    ):
        assert (text in written) == (target != "none"), (text, written)
    # the runner's own log lines (--verbose) stay on the terminal's stderr, never in the function's
    runner_lines = [line for line in result.stderr.splitlines() if " tao_results_cli." in line]
    assert runner_lines, result.stderr
    if target == "file":
        assert " tao_results_cli." not in written
    if target == "none":
        assert result.stderr.splitlines() == runner_lines


def test_every_option_has_help_that_shows_its_default() -> None:
    parser = cli.build_parser()
    missing = []
    for path, sub in walk_parsers(parser, ["tao-results"]):
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = action.help or ""
            if "default" not in text:
                missing.append(f"{' '.join(path)} {action.option_strings[-1]}: {text!r}")
    assert not missing, "\n".join(missing)


def test_every_argument_and_command_says_what_it_is_for() -> None:
    """A help string that is only "(default: X)" (or nothing) says nothing: each needs words of its own."""
    parser = cli.build_parser()
    vague = []
    for path, sub in walk_parsers(parser, ["tao-results"]):
        for action in sub._actions:
            if action.dest == "help":
                continue
            if isinstance(action, argparse._SubParsersAction):
                texts = {choice.dest: choice.help for choice in action._choices_actions}
                vague += [
                    f"{' '.join(path)} {name}" for name in action.choices if not own_words(texts.get(name))
                ]
                continue
            if not own_words(action.help):
                name = action.option_strings[-1] if action.option_strings else action.dest
                vague.append(f"{' '.join(path)} {name}: {action.help!r}")
        if len(path) > 1 and not own_words(sub.description):
            vague.append(f"{' '.join(path)}: no description")
    assert not vague, "\n".join(vague)
    assert len(list(walk_parsers(parser, ["tao-results"]))) >= 8  # the walk reached every subcommand


def own_words(text: str | None) -> bool:
    """At least three words once "(default: ...)" and %-placeholders are taken out."""
    bare = re.sub(r"\(default:[^)]*\)|%\([a-z_]+\)s", " ", text or "")
    return len(re.findall(r"[A-Za-z]{2,}", bare)) >= 3


def walk_parsers(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk_parsers(sub, [*path, name])


def test_redrive_never_takes_its_destination_from_the_environment(
    resources: StackResources, sqs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.send_message(
        QueueUrl=resources.dead_letter_queue_url, MessageBody=envelope("r", "not_found", 404, "{}")
    )
    monkeypatch.setenv("SOURCE_QUEUE_URL", resources.queue_url)

    status = main(["dlq", "redrive", "--dlq-url", resources.dead_letter_queue_url, "--copy"])

    assert status == 2
    assert "needs --to-queue-url" in capsys.readouterr().err
    assert visible(sqs, resources.queue_url) == 0
    assert visible(sqs, resources.dead_letter_queue_url) == 1


# ----------------------------------------------------------------------------------- user errors


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def moto_env(moto: MotoServer) -> dict[str, str]:
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto.endpoint_url}


def in_process_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        status = main(args)
    except SystemExit as exited:  # argparse's own usage errors
        status = int(exited.code or 0)
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_missing_queue_url_is_one_line(resources: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["enqueue", "a"], ["dlq", "list"], ["dlq", "redrive"], ["run-local"]):
        assert "no queue URL" in in_process_error(args, capsys)
    assert "must be a queue URL" in in_process_error(["dlq", "list", "--dlq-url", "my-dlq"], capsys)


def test_bad_reference_is_one_line(moto_env: dict[str, str]) -> None:
    line = one_line_error(
        run_cli(["enqueue", "--queue-url", "http://127.0.0.1:1/1/q", "-"], moto_env, "ok\nno way\n")
    )
    assert "invalid referenceId 'no way'" in line


def test_nonexistent_queue_is_one_line(resources: StackResources, moto_env: dict[str, str]) -> None:
    missing = resources.queue_url + "-missing"
    for args in (["enqueue", "--queue-url", missing, "a"], ["dlq", "list", "--dlq-url", missing]):
        assert f"queue does not exist: {missing}" in one_line_error(run_cli(args, moto_env))


def test_unreachable_endpoint_is_one_line() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    line = one_line_error(run_cli(["dlq", "list", "--dlq-url", f"{endpoint}/123456789012/q"], env))
    assert "cannot reach the SQS endpoint" in line


def test_missing_credentials_is_one_line(tmp_path: Path) -> None:
    env = {
        "AWS_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    line = one_line_error(
        run_cli(["dlq", "list", "--dlq-url", "https://sqs.eu-west-1.amazonaws.com/1/q"], env)
    )
    assert "no AWS credentials" in line


def test_usage_errors_are_one_line(resources: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid choice" in in_process_error(["nonsense"], capsys)
    assert "must be at least 1" in in_process_error(["dlq", "list", "--max", "0"], capsys)
    assert "not a directory" in in_process_error(
        ["run-local", "--queue-url", resources.queue_url, "--function-dir", "/nope"], capsys
    )
    assert "KEY=VALUE" in in_process_error(
        [
            "run-local",
            "--queue-url",
            resources.queue_url,
            "--layer-dir",
            ".",
            "--function-dir",
            ".",
            "--env",
            "X",
        ],
        capsys,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--passthrough", "{not json"], "--passthrough is not JSON"),
        (["--passthrough", json.dumps("x" * 5000)], "more than 4096"),
        (["--passthrough", "NaN"], "the request is not JSON"),
        (["--numeric-ids"], "'ref-1' is not a non-negative integer"),
        (["--task-token", ""], "taskToken must be a string of 1-2048 characters"),
        (["--task-token", "t" * 2049], "taskToken must be a string of 1-2048 characters"),
        (["--event-source", "s"], "--event-source applies to --envelope eventbridge only"),
        (["--envelope", "sns", "--detail-type", "d"], "--detail-type applies to --envelope eventbridge only"),
        (["--envelope", "kinesis"], "invalid choice: 'kinesis'"),
    ],
)
def test_enqueue_refuses_what_the_function_would_not_accept_before_any_aws_call(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/123456789012/q"  # reached, it would say so instead
    line = in_process_error(["enqueue", "--queue-url", unreachable, *options, "ref-1"], capsys)
    assert message in line


def test_enqueue_sends_nothing_when_any_request_is_refused(
    resources: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    references = [str(number) for number in range(1, 12)] + ["0123"]  # the bad one in the second batch
    line = in_process_error(
        ["enqueue", "--queue-url", resources.queue_url, "--numeric-ids", *references], capsys
    )
    assert "'0123' has leading zeros" in line
    line = in_process_error(
        ["enqueue", "--queue-url", resources.queue_url, "--task-token", "t", "a", "b"], capsys
    )
    assert "--task-token answers one waiting task: give one referenceId, not 2" in line
    assert visible(sqs, resources.queue_url) == 0
