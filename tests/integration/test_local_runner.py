"""The local SQS event source mapping against moto's server, with tiny handlers of our own.

Checks that it behaves like Lambda's poller: the event's shape, deleting only what succeeded,
keeping the whole batch when the handler raises, times out or answers nonsense, leaving visibility
and the redrive policy to SQS, and stopping when asked.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from typing import Any

import pytest

from tao_results_cli.local.context import FunctionSettings
from tao_results_cli.local.events import read_batch_answer
from tao_results_cli.local.loader import HandlerLoadError, load_handler
from tao_results_cli.local.runner import LocalEventSourceMapping, RunnerConfig
from tao_results_cli.local.stats import InvocationOutcome, MessageEvent, RunStats
from tests.support.aws_stack import MotoServer, StackResources, aws_client, create_resources

RECORD_KEYS = [
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "md5OfMessageAttributes",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
]


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server (tests/conftest.py), emptied for each test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def sqs(moto: MotoServer) -> Any:
    return aws_client("sqs", moto.endpoint_url)


def stack(moto: MotoServer, *, visibility: int = 30, max_receive_count: int = 3) -> StackResources:
    return create_resources(
        moto.endpoint_url,
        client_id="id",
        client_secret="secret",
        name=f"t{uuid.uuid4().hex[:8]}",
        visibility_timeout=visibility,
        max_receive_count=max_receive_count,
    )


def config(queue_url: str, **overrides: Any) -> RunnerConfig:
    settings: dict[str, Any] = {
        "queue_url": queue_url,
        "wait_time_seconds": 1,
        "settle_seconds": 0.5,
        "check_interval": 0.1,
        "set_lambda_environment": False,
        "max_seconds": 20.0,
    }
    settings.update(overrides)
    return RunnerConfig(**settings)


def send(sqs: Any, queue_url: str, *refs: str) -> list[str]:
    return [
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"referenceId": ref}))["MessageId"]
        for ref in refs
    ]


def depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def run_one_invocation(mapping: LocalEventSourceMapping) -> RunStats:
    """Run until the first invocation has been settled (the hook runs after deletes)."""
    mapping.on_invocation.append(lambda invocation: mapping.stop())
    stats = mapping.run()
    assert mapping.stop_reason == "stopped"
    return stats


def succeed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"batchItemFailures": []}


# ------------------------------------------------------------------------------------ pure readings


@pytest.mark.parametrize("answer", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_answers_lambda_reads_as_complete_success(answer: object) -> None:
    reading = read_batch_answer(answer, ["a", "b"])
    assert reading.valid
    assert reading.failed_ids == frozenset()


@pytest.mark.parametrize(
    "answer",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "a"}]},
        {"batchItemFailures": ["a"]},
        {"batchItemFailures": "a"},
        [{"itemIdentifier": "a"}],
        "ok",
        {"batchItemFailures": [{"itemIdentifier": "a"}], "when": object()},
    ],
)
def test_answers_lambda_reads_as_complete_failure(answer: object) -> None:
    assert not read_batch_answer(answer, ["a", "b"]).valid


# ------------------------------------------------------------------------------------------ running


def test_event_and_context_have_lambdas_shape(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto)
    body = json.dumps({"referenceId": "ref-1"})
    sqs.send_message(
        QueueUrl=resources.queue_url,
        MessageBody=body,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "request"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    seen: list[tuple[dict[str, Any], Any, int]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        seen.append((event, context, context.get_remaining_time_in_millis()))

    settings = FunctionSettings("fn", "$LATEST", 512, 30.0)
    mapping = LocalEventSourceMapping(
        config(resources.queue_url, until_empty=True, function=settings), handler, sqs=sqs
    )
    mapping.run()

    assert mapping.stop_reason == "until_empty"
    [(event, context, remaining)] = seen
    assert list(event) == ["Records"]
    [record] = event["Records"]
    assert list(record) == RECORD_KEYS
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == resources.queue_arn
    assert record["awsRegion"] == "eu-west-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert set(record["attributes"]) >= {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "request",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert context.function_name == "fn"
    assert context.function_version == "$LATEST"
    assert context.memory_limit_in_mb == "512"
    account = resources.queue_arn.split(":")[4]
    assert context.invoked_function_arn == f"arn:aws:lambda:eu-west-1:{account}:function:fn"
    assert uuid.UUID(context.aws_request_id)
    assert context.log_group_name == "/aws/lambda/fn"
    assert "[$LATEST]" in context.log_stream_name
    assert 25_000 < remaining <= 30_000
    assert depth(sqs, resources.queue_url) == (0, 0)


def test_deletes_only_messages_not_reported_as_failures(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto, visibility=30)
    send(sqs, resources.queue_url, "ok-1", "fail-1", "ok-2", "fail-2", "ok-3")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = [r["messageId"] for r in event["Records"] if "fail" in r["body"]]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}

    mapping = LocalEventSourceMapping(config(resources.queue_url), handler, sqs=sqs)
    stats = run_one_invocation(mapping)

    outcomes = {stats_.reference_id: stats_.outcome for stats_ in stats.messages()}
    assert outcomes == {
        "ok-1": InvocationOutcome.DELETED,
        "ok-2": InvocationOutcome.DELETED,
        "ok-3": InvocationOutcome.DELETED,
        "fail-1": InvocationOutcome.RETRY,
        "fail-2": InvocationOutcome.RETRY,
    }
    assert depth(sqs, resources.queue_url) == (0, 2)  # the failures wait out their visibility timeout


def test_handler_exception_deletes_nothing(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto, visibility=30)
    send(sqs, resources.queue_url, "a", "b", "c")

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    events: list[MessageEvent] = []
    mapping = LocalEventSourceMapping(
        config(resources.queue_url), handler, sqs=sqs, on_message=[events.append]
    )
    stats = run_one_invocation(mapping)

    assert {event.outcome for event in events} == {InvocationOutcome.HANDLER_ERROR}
    assert all(event.detail == "RuntimeError: boom" for event in events)
    assert stats.handler_errors >= 1
    assert depth(sqs, resources.queue_url) == (0, 3)


@pytest.mark.parametrize(
    "answer",
    [
        {"batchItemFailures": [{"itemIdentifier": "some-other-message"}]},
        ["not", "an", "object"],
    ],
)
def test_malformed_answer_deletes_nothing(moto: MotoServer, sqs: Any, answer: object) -> None:
    resources = stack(moto, visibility=30)
    send(sqs, resources.queue_url, "a", "b")
    mapping = LocalEventSourceMapping(config(resources.queue_url), lambda event, context: answer, sqs=sqs)
    stats = run_one_invocation(mapping)

    assert {message.outcome for message in stats.messages()} == {InvocationOutcome.INVALID_ANSWER}
    assert depth(sqs, resources.queue_url) == (0, 2)


def test_timeout_keeps_the_batch(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto, visibility=30)
    send(sqs, resources.queue_url, "slow")
    remaining: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        remaining.append(context.get_remaining_time_in_millis())
        time.sleep(0.4)
        remaining.append(context.get_remaining_time_in_millis())

    settings = FunctionSettings(timeout_seconds=0.3)
    mapping = LocalEventSourceMapping(config(resources.queue_url, function=settings), handler, sqs=sqs)
    stats = run_one_invocation(mapping)

    assert remaining[0] > 200
    assert remaining[1] == 0
    [message] = stats.messages()
    assert message.outcome == InvocationOutcome.TIMEOUT
    assert depth(sqs, resources.queue_url) == (0, 1)


def test_visibility_timeout_decides_when_a_failure_comes_back(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto, visibility=2, max_receive_count=5)
    send(sqs, resources.queue_url, "flaky")
    calls: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
        return {}

    mapping = LocalEventSourceMapping(config(resources.queue_url, until_empty=True), handler, sqs=sqs)
    stats = mapping.run()

    assert len(calls) == 2
    assert calls[1] - calls[0] >= 1.9  # not before the queue's 2 s visibility timeout
    [message] = stats.messages()
    assert (message.attempts, message.invocations, message.outcome) == (2, 2, InvocationOutcome.DELETED)


def test_receive_visibility_override_is_passed_to_sqs(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto, visibility=60, max_receive_count=5)
    send(sqs, resources.queue_url, "flaky")
    calls: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
        return {}

    mapping = LocalEventSourceMapping(
        config(resources.queue_url, until_empty=True, visibility_timeout=1), handler, sqs=sqs
    )
    mapping.run()

    assert len(calls) == 2
    assert 0.9 <= calls[1] - calls[0] < 10


def test_sqs_redrive_moves_a_message_that_keeps_failing_to_the_dlq(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto, visibility=1, max_receive_count=2)
    body = json.dumps({"referenceId": "doomed"})
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}

    mapping = LocalEventSourceMapping(config(resources.queue_url, until_empty=True), handler, sqs=sqs)
    stats = mapping.run()

    assert mapping.stop_reason == "until_empty"
    [message] = stats.messages()
    assert (message.attempts, message.invocations, message.outcome) == (2, 2, InvocationOutcome.RETRY)
    dead = sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, WaitTimeSeconds=1)["Messages"]
    assert [letter["Body"] for letter in dead] == [body]


def test_max_seconds_stops_an_idle_runner(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto)
    started = time.monotonic()
    mapping = LocalEventSourceMapping(config(resources.queue_url, max_seconds=1.0), succeed, sqs=sqs)
    mapping.run()
    assert mapping.stop_reason == "max_seconds"
    assert 0.9 <= time.monotonic() - started < 4


def test_stop_event_finishes_the_current_batch(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto)
    send(sqs, resources.queue_url, "long")
    stop = threading.Event()
    entered = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> None:
        entered.set()
        time.sleep(0.8)

    mapping = LocalEventSourceMapping(config(resources.queue_url), handler, sqs=sqs)
    runner = threading.Thread(target=mapping.run, args=(stop,))
    runner.start()
    assert entered.wait(10)
    stop.set()
    runner.join(10)

    assert not runner.is_alive()
    assert mapping.stop_reason == "stopped"
    [message] = mapping.stats.messages()
    assert message.outcome == InvocationOutcome.DELETED  # finished and settled, not abandoned
    assert depth(sqs, resources.queue_url) == (0, 0)


def test_batching_window_gathers_more_than_ten(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto)
    sqs.send_message_batch(
        QueueUrl=resources.queue_url,
        Entries=[{"Id": str(i), "MessageBody": json.dumps({"referenceId": f"r{i}"})} for i in range(10)],
    )
    sqs.send_message_batch(
        QueueUrl=resources.queue_url,
        Entries=[{"Id": str(i), "MessageBody": json.dumps({"referenceId": f"s{i}"})} for i in range(5)],
    )
    sizes: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        sizes.append(len(event["Records"]))

    mapping = LocalEventSourceMapping(
        config(resources.queue_url, until_empty=True, batch_size=15, batching_window_seconds=1.0),
        handler,
        sqs=sqs,
    )
    mapping.run()
    assert sum(sizes) == 15
    assert max(sizes) > 10


def test_pollers_run_concurrently(moto: MotoServer, sqs: Any) -> None:
    resources = stack(moto)
    send(sqs, resources.queue_url, *[f"c{i}" for i in range(6)])
    lock = threading.Lock()
    active = [0]
    peak = [0]

    def handler(event: dict[str, Any], context: Any) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1

    mapping = LocalEventSourceMapping(
        config(resources.queue_url, until_empty=True, batch_size=1, concurrency=3), handler, sqs=sqs
    )
    stats = mapping.run()
    assert peak[0] >= 2
    assert stats.count(InvocationOutcome.DELETED) == 6


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="batch size"):
        RunnerConfig(queue_url="http://q", batch_size=11).validate()
    RunnerConfig(queue_url="http://q", batch_size=100, batching_window_seconds=1).validate()


def test_handler_spec_is_imported_after_the_environment_is_set(
    moto: MotoServer, sqs: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"handler_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import os\nGREETING = os.environ['LOCAL_RUNNER_GREETING']\n\n"
        "def handle(event, context):\n"
        "    return {'batchItemFailures': [], 'greeting': GREETING}\n"
    )
    monkeypatch.setenv("LOCAL_RUNNER_GREETING", "placeholder")  # restored afterwards
    monkeypatch.syspath_prepend(str(tmp_path))
    handler = load_handler(f"{module}:handle", [tmp_path], {"LOCAL_RUNNER_GREETING": "hello"})
    assert handler({"Records": []}, None)["greeting"] == "hello"

    with pytest.raises(HandlerLoadError, match="module:function"):
        load_handler("no-colon")
    with pytest.raises(HandlerLoadError, match="no callable"):
        load_handler(f"{module}:missing")
    with pytest.raises(HandlerLoadError, match="cannot import"):
        load_handler("surely_not_a_module_here:handle")
