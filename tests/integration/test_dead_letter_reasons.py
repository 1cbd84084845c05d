"""Issue 9 §4: every dead letter says why, and odd events never kill the invocation.

A message that keeps failing transiently, or a reference still unknown, reaches the DLQ on the
queue's last allowed delivery from the function (with a reason), not through SQS's redrive (which
moves the raw body). Everything crosses sockets: moto's SQS counts the receives.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tao_emulator import Fault
from tao_results_cli.local.events import sqs_event
from tests.support.aws_stack import aws_client


def failing_503(reference_id: str) -> Fault:
    return Fault(
        stage="download",
        kind="status",
        reference_id=reference_id,
        status=503,
        times=None,
        body='{"message": "maintenance window"}',
        content_type="application/json",
    )


def deliver_until_done(h, message_id: str, deliveries: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Receive and invoke ``deliveries`` times (as SQS would); the failed ids of each invocation."""
    answers = []
    for delivery in range(1, deliveries + 1):
        if delivery > 1:
            h.make_visible_again([message_id])
        event = h.receive_event(1)
        assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(delivery)
        answer = h.invoke(event)
        answers.append([item["itemIdentifier"] for item in answer["batchItemFailures"]])
    return answers


@pytest.mark.parametrize(
    ("environment", "deliveries"),
    [
        pytest.param({"MAX_RECEIVE_COUNT": "2"}, 2, id="MAX_RECEIVE_COUNT"),
        # Unset: read once from the source queue's RedrivePolicy (the stack's maxReceiveCount is 3).
        pytest.param({}, 3, id="from-RedrivePolicy"),
    ],
)
def test_a_message_failing_on_its_last_delivery_is_dead_lettered_as_retries_exhausted(
    harness, tao, environment: dict[str, str], deliveries: int
) -> None:  # type: ignore[no-untyped-def]
    tao.add_result("ref-down", size=100)
    tao.add_fault(failing_503("ref-down"))
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1", **environment)
    [message_id] = h.send({"referenceId": "ref-down"})
    answers = deliver_until_done(h, message_id, deliveries)
    assert answers == [[message_id]] * (deliveries - 1) + [[]]
    [letter] = h.dead_letters()
    assert letter["reason"] == "retries_exhausted"
    assert letter["lastReason"] == "server_error"
    assert letter["lastHttpStatus"] == 503
    assert letter["lastDetail"] == "maintenance window"
    assert letter["attempts"] == deliveries
    assert letter["originalBody"] == json.dumps({"referenceId": "ref-down"})
    assert letter["_attributes"]["reason"] == "retries_exhausted"


def test_an_unknown_reference_within_its_grace_on_the_last_delivery_ends_as_not_found(harness) -> None:  # type: ignore[no-untyped-def]
    h = harness(NOT_FOUND_GRACE_SECONDS="600", MAX_RECEIVE_COUNT="2", MAX_ATTEMPTS_PER_INVOCATION="1")
    [message_id] = h.send({"referenceId": "still-unknown"})
    assert deliver_until_done(h, message_id, 2) == [[message_id], []]
    [letter] = h.dead_letters()
    assert letter["reason"] == "not_found"
    assert letter["httpStatus"] == 404


def test_a_body_too_large_to_dead_letter_verbatim_is_truncated_with_its_digest(harness, aws) -> None:  # type: ignore[no-untyped-def]
    # A malformed message (not JSON) of 200 KiB of quotes: JSON escaping doubles it past 256 KiB.
    body = '"' * (200 * 1024)
    h = harness()
    ids, failed = h.run(body)
    assert failed == []
    [letter] = h.dead_letters()
    assert letter["reason"] == "malformed_message"
    assert letter["originalBodyTruncated"] is True
    assert letter["originalBodyBytes"] == len(body)
    assert letter["originalBodySha256"] == hashlib.sha256(body.encode()).hexdigest()
    assert body.startswith(letter["originalBody"]) and len(letter["originalBody"]) > 100 * 1024
    assert letter["messageId"] == ids[0]


def test_a_small_body_is_dead_lettered_verbatim_without_truncation_fields(harness) -> None:  # type: ignore[no-untyped-def]
    h = harness()
    h.run("not json")
    [letter] = h.dead_letters()
    assert letter["originalBody"] == "not json"
    assert "originalBodyTruncated" not in letter
    assert letter["referenceId"] is None


def test_a_malformed_request_with_a_valid_reference_id_is_dead_lettered_under_that_id(harness) -> None:  # type: ignore[no-untyped-def]
    h = harness()
    body = json.dumps({"referenceId": "ref-7", "passthrough": "x" * 5000})
    h.run(body)
    [letter] = h.dead_letters()
    assert (letter["reason"], letter["referenceId"], letter["originalBody"]) == (
        "malformed_message",
        "ref-7",
        body,
    )
    assert "passthrough" in letter["detail"]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="empty-object"),
        pytest.param({"Records": None}, id="null-records"),
        pytest.param({"detail-type": "Scheduled Event", "source": "aws.events"}, id="eventbridge"),
        pytest.param([1, 2], id="a-list"),
        pytest.param(None, id="null"),
        pytest.param("text", id="a-string"),
    ],
)
def test_an_event_that_is_not_an_sqs_batch_is_logged_and_answered_empty(harness, event: Any) -> None:  # type: ignore[no-untyped-def]
    h = harness()
    assert h.invoke(event) == {"batchItemFailures": []}


def test_records_without_message_id_are_skipped_and_the_others_processed(harness, tao) -> None:  # type: ignore[no-untyped-def]
    tao.add_result("ref-ok", size=100)
    tao.add_result("ref-orphan", size=100)
    h = harness()
    h.send({"referenceId": "ref-ok"})
    event = h.receive_event(1)
    orphan = dict(event["Records"][0], body=json.dumps({"referenceId": "ref-orphan"}))
    del orphan["messageId"]
    event["Records"] += [orphan, "not a record", {"eventSource": "aws:s3", "s3": {}}]
    assert h.invoke(event) == {"batchItemFailures": []}
    assert h.keys() == ["tao-results/ref-ok/result.csv"]


def test_a_fifo_batch_stops_at_the_first_failure_and_reports_the_rest_unprocessed(harness, tao, aws) -> None:  # type: ignore[no-untyped-def]
    for reference_id in ("fifo-1", "fifo-2", "fifo-3", "fifo-4"):
        tao.add_result(reference_id, size=100)
    tao.add_fault(failing_503("fifo-2"))
    sqs = aws_client("sqs", aws.endpoint_url)
    queue_url = sqs.create_queue(
        QueueName="tao-results-requests.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for reference_id in ("fifo-1", "fifo-2", "fifo-3", "fifo-4"):
        sqs.send_message(
            QueueUrl=queue_url, MessageBody=json.dumps({"referenceId": reference_id}), MessageGroupId="g"
        )
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert len(messages) == 4
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    answer = h.invoke(sqs_event(messages, queue_arn))
    ids = [message["MessageId"] for message in messages]
    assert [item["itemIdentifier"] for item in answer["batchItemFailures"]] == ids[1:]
    assert h.keys() == ["tao-results/fifo-1/result.csv"]  # fifo-3 and fifo-4 were never started
    assert "fifo-3" not in tao.stats()["download_calls"]


EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_the_sample_events_for_fifo_and_non_sqs_invocations(harness, tao) -> None:  # type: ignore[no-untyped-def]
    """``events/sqs-fifo-batch.json`` and ``events/not-sqs.json`` (for ``sam local invoke -e``)."""
    for reference_id in ("fifo-ref-1", "fifo-ref-2", "fifo-ref-3"):
        tao.add_result(reference_id, size=100)
    tao.add_fault(failing_503("fifo-ref-1"))
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    fifo = json.loads((EVENTS / "sqs-fifo-batch.json").read_text(encoding="utf-8"))
    answer = h.invoke(fifo)
    assert [item["itemIdentifier"] for item in answer["batchItemFailures"]] == [
        record["messageId"] for record in fifo["Records"]
    ]
    assert h.keys() == []
    assert h.invoke(json.loads((EVENTS / "not-sqs.json").read_text(encoding="utf-8"))) == {
        "batchItemFailures": []
    }


def test_copies_of_a_message_in_one_batch_run_once_and_share_its_outcome(harness, tao) -> None:  # type: ignore[no-untyped-def]
    """SQS delivers at least once, so a batch may hold a message twice (each copy with its own
    receipt handle). Run twice, the copies could end in two places, e.g. two dead letters."""
    tao.add_result("ref-good", size=1000)
    tao.add_result("ref-down", size=10)
    tao.add_fault(failing_503("ref-down"))
    h = harness(MAX_RECEIVE_COUNT="5")
    ids = h.send("not json", {"referenceId": "ref-good"}, {"referenceId": "ref-down"})
    first = h.receive_event(3)["Records"]
    h.make_visible_again(ids)
    second = h.receive_event(3)["Records"]
    assert {r["receiptHandle"] for r in first}.isdisjoint(r["receiptHandle"] for r in second)

    answer = h.invoke({"Records": first + second})

    down = ids[2]
    assert answer == {"batchItemFailures": [{"itemIdentifier": down}]}
    [letter] = h.dead_letters()
    assert (letter["messageId"], letter["reason"]) == (ids[0], "malformed_message")
    stored = h.keys()
    assert [key.rsplit("/", 2)[-2] for key in stored] == ["ref-good"]
    assert tao.stats()["download_calls"]["ref-good"] == 1
    assert tao.stats()["download_calls"]["ref-down"] >= 1


def test_a_redriven_dead_letter_runs_its_first_request_and_never_nests(harness, tao) -> None:  # type: ignore[no-untyped-def]
    """A dead letter moved back to the source queue (dlq redrive) is its first request again."""
    h = harness(NOT_FOUND_GRACE_SECONDS="0")
    first = json.dumps({"referenceId": "ref-later", "passthrough": {"tenant": "t-1"}})
    h.run(first, "not json")
    letters = {letter["originalBody"]: letter for letter in h.dead_letters()}
    assert letters[first]["reason"] == "not_found" and letters["not json"]["reason"] == "malformed_message"

    tao.add_result("ref-later", size=300)  # the import has finished since
    _, failed = h.run(
        *(json.dumps({k: v for k, v in letter.items() if k != "_attributes"}) for letter in letters.values())
    )

    assert failed == []
    stored = h.keys()
    assert [key.rsplit("/", 2)[-2] for key in stored] == ["ref-later"]
    assert h.object(stored[0])["Metadata"]["reference-id"] == "ref-later"
    [again] = h.dead_letters()
    assert (again["reason"], again["originalBody"], again["redriven"]) == (
        "malformed_message",
        "not json",
        True,
    )
