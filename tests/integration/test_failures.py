"""Permanent errors go to the DLQ with a reason; transient ones are retried; nothing is lost."""

import hashlib
import json
import socket
import threading
import time

import pytest

from tao_emulator import Fault

NOT_FOUND_MESSAGE = "Reference ID not found. File not found in pending bucket."


def only(items):
    assert len(items) == 1, items
    return items[0]


def test_unknown_reference_is_dead_lettered_with_the_api_message(harness):
    h = harness()
    body = '{"referenceId": "missing-1", "note": "kept verbatim"}'
    ids, failed = h.run(body)
    assert failed == []  # done: it is in the DLQ
    letter = only(h.dead_letters())
    assert letter["referenceId"] == "missing-1"
    assert letter["reason"] == "not_found"
    assert letter["httpStatus"] == 404
    assert letter["detail"] == NOT_FOUND_MESSAGE
    assert letter["originalBody"] == body
    assert letter["messageId"] == ids[0]
    assert letter["failedAt"].endswith("Z")
    assert letter["attempts"] == 1
    assert letter["_attributes"] == {
        "reason": "not_found",
        "referenceId": "missing-1",
        "httpStatus": "404",
        "schemaVersion": "1",
    }
    assert h.keys() == []


def test_insufficient_scope_is_dead_lettered(harness, tao):
    tao.add_result("ref-scope", size=10)
    tao.set_scopes([])
    h = harness()
    _, failed = h.run({"referenceId": "ref-scope"})
    assert failed == []
    letter = only(h.dead_letters())
    assert (letter["reason"], letter["httpStatus"], letter["detail"]) == (
        "insufficient_scope",
        403,
        "Insufficient scope",
    )


@pytest.mark.parametrize(
    "body",
    ["not json", "", "[1,2]", '{"referenceId": -42}', '{"referenceId": "../../etc"}', '{"ref": "x"}'],
)
def test_malformed_messages_are_dead_lettered_verbatim(harness, body):
    h = harness()
    _, failed = h.run(body)
    assert failed == []
    letter = only(h.dead_letters())
    assert letter["reason"] == "malformed_message"
    assert letter["referenceId"] is None
    assert letter["httpStatus"] is None
    assert letter["originalBody"] == body
    assert "referenceId" not in letter["_attributes"]


def test_server_error_once_is_retried_within_the_invocation(harness, tao):
    info = tao.add_result("ref-flaky", size=100)
    tao.add_fault(
        Fault(
            stage="download",
            kind="status",
            reference_id="ref-flaky",
            status=500,
            body='{"message": "boom"}',
            content_type="application/json",
        )
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-flaky"})
    assert failed == []
    assert hashlib.sha256(h.object_bytes("tao-results/ref-flaky/result.csv")).hexdigest() == info.sha256
    assert tao.stats()["download_calls"]["ref-flaky"] == 2


def test_persistent_server_error_goes_back_to_the_queue_not_the_dlq(harness, tao):
    tao.add_result("ref-down", size=100)
    tao.add_fault(
        Fault(
            stage="download",
            kind="status",
            reference_id="ref-down",
            status=503,
            times=None,
            body='{"message": "maintenance"}',
            content_type="application/json",
        )
    )
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="3")
    ids, failed = h.run({"referenceId": "ref-down"})
    assert failed == ids
    assert h.dead_letters() == []
    assert h.keys() == []
    assert tao.stats()["download_calls"]["ref-down"] == 3
    assert h.queue_counts() == (0, 1)  # in flight, SQS will deliver it again


def test_429_with_short_retry_after_is_honoured_in_the_invocation(harness, tao):
    tao.add_result("ref-429", size=100)
    tao.add_fault(
        Fault(
            stage="download",
            kind="status",
            reference_id="ref-429",
            status=429,
            headers={"Retry-After": "1"},
            body='{"message": "slow down"}',
            content_type="application/json",
        )
    )
    h = harness()
    started = time.monotonic()
    _, failed = h.run({"referenceId": "ref-429"})
    assert failed == []
    calls = [e for e in tao.requests_log() if e["stage"] == "download"]
    assert calls[1]["time"] - calls[0]["time"] >= 0.95
    assert time.monotonic() - started < 10


def test_429_with_long_retry_after_defers_redelivery_instead_of_waiting(harness, tao):
    tao.add_result("ref-429b", size=100)
    tao.add_fault(
        Fault(
            stage="download",
            kind="status",
            reference_id="ref-429b",
            status=429,
            headers={"Retry-After": "30"},
            content_type="application/json",
            body="{}",
        )
    )
    h = harness(RETRY_BACKOFF_BASE_SECONDS="1")
    started = time.monotonic()
    ids, failed = h.run({"referenceId": "ref-429b"})
    assert failed == ids
    assert time.monotonic() - started < 10  # did not sleep 30 s on Lambda time
    assert tao.stats()["download_calls"]["ref-429b"] == 1
    # Not visible again before Retry-After has passed.
    answer = h.sqs.receive_message(QueueUrl=h.resources.queue_url, WaitTimeSeconds=2)
    assert answer.get("Messages", []) == []


def test_backoff_brings_a_failed_message_back_early(harness, tao):
    tao.add_fault(
        Fault(
            stage="download",
            kind="status",
            reference_id="ref-back",
            status=500,
            times=3,
            body="{}",
            content_type="application/json",
        )
    )
    info = tao.add_result("ref-back", size=100)
    h = harness(RETRY_BACKOFF_BASE_SECONDS="1", RETRY_BACKOFF_MAX_SECONDS="1")
    ids, failed = h.run({"referenceId": "ref-back"})
    assert failed == ids
    # The queue's visibility timeout is 60 s; the backoff makes it visible again after ~1 s.
    event = h.receive_event(1, timeout=8)
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert h.invoke(event) == {"batchItemFailures": []}
    assert hashlib.sha256(h.object_bytes("tao-results/ref-back/result.csv")).hexdigest() == info.sha256


@pytest.mark.parametrize(
    "fault",
    [
        Fault(stage="download", kind="reset"),
        Fault(stage="download", kind="delay", delay_ms=3000),
        Fault(stage="token", kind="status", status=503, body="{}", content_type="application/json"),
        Fault(stage="storage", kind="status", status=500),
        Fault(stage="storage", kind="reset"),
        Fault(stage="storage", kind="truncate", truncate_at=1000),
        Fault(stage="download", kind="expired_url"),
    ],
    ids=["api-reset", "api-timeout", "token-503", "storage-500", "storage-reset", "truncated", "expired-url"],
)
def test_transient_faults_are_retried_and_the_copy_is_exact(harness, tao, fault):
    info = tao.add_result("ref-t", size=6 * 1024 * 1024 + 5)
    tao.add_fault(fault)
    h = harness()
    _, failed = h.run({"referenceId": "ref-t"})
    assert failed == []
    assert hashlib.sha256(h.object_bytes("tao-results/ref-t/result.csv")).hexdigest() == info.sha256
    assert h.open_uploads() == []
    assert h.dead_letters() == []


def test_expired_signed_url_is_resolved_again_not_dead_lettered(harness, tao):
    tao.add_result("ref-exp", size=100)
    tao.add_fault(Fault(stage="download", kind="expired_url", reference_id="ref-exp"))
    h = harness()
    _, failed = h.run({"referenceId": "ref-exp"})
    assert failed == []
    assert tao.stats()["download_calls"]["ref-exp"] == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault(stage="storage", kind="truncate", truncate_at=3 * 1024 * 1024, times=None),
        Fault(stage="storage", kind="truncate", truncate_at=9 * 1024 * 1024, times=None),
        Fault(stage="storage", kind="overlong", extra=4096, times=None),
        Fault(stage="storage", kind="overlong", extra=1, times=None),
    ],
    ids=["short-single", "short-multipart", "long-multipart", "long-by-one"],
)
def test_a_body_that_disagrees_with_content_length_leaves_nothing_behind(harness, tao, fault):
    tao.add_result("ref-len", size=12 * 1024 * 1024)
    tao.add_fault(fault)
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="2")
    ids, failed = h.run({"referenceId": "ref-len"})
    assert failed == ids
    assert h.keys() == []
    assert h.open_uploads() == []
    assert h.dead_letters() == []


def test_overlong_small_body_is_rejected(harness, tao):
    tao.add_result("ref-small-long", size=1000)
    tao.add_fault(Fault(stage="storage", kind="overlong", extra=10, times=None))
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    ids, failed = h.run({"referenceId": "ref-small-long"})
    assert failed == ids
    assert h.keys() == []


def test_records_are_independent(harness, tao):
    good = tao.add_result("ref-good", size=5000)
    tao.add_result("ref-bad", size=100)
    tao.add_fault(
        Fault(
            stage="download",
            kind="status",
            reference_id="ref-bad",
            status=500,
            times=None,
            body="{}",
            content_type="application/json",
        )
    )
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="2")
    ids, failed = h.run(
        {"referenceId": "ref-good"}, {"referenceId": "nope"}, "garbage", {"referenceId": "ref-bad"}
    )
    assert failed == [ids[3]]
    assert h.keys() == ["tao-results/ref-good/result.csv"]
    assert hashlib.sha256(h.object_bytes("tao-results/ref-good/result.csv")).hexdigest() == good.sha256
    reasons = sorted(letter["reason"] for letter in h.dead_letters())
    assert reasons == ["malformed_message", "not_found"]


def test_when_the_dlq_is_unreachable_the_record_is_retried_not_lost(harness, aws):
    h = harness(DEAD_LETTER_QUEUE_URL=aws.dead_letter_queue_url.replace("tao-results-dlq", "does-not-exist"))
    ids, failed = h.run({"referenceId": "missing"}, "garbage")
    assert sorted(failed) == sorted(ids)
    assert h.queue_counts() == (0, 2)


def test_all_records_failing_is_still_a_partial_response_not_an_exception(harness, tao):
    tao.add_fault(
        Fault(
            stage="token", kind="status", status=500, times=None, body="{}", content_type="application/json"
        )
    )
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    ids, failed = h.run({"referenceId": "a"}, {"referenceId": "b"})
    assert sorted(failed) == sorted(ids)


class _Listener:
    """A server on a 'foreign' loopback address that records whether anyone connected."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


@pytest.mark.parametrize("kind", ["signed_url", "redirect"])
def test_a_signed_url_to_a_foreign_host_is_dead_lettered_and_never_contacted(harness, tao, kind):
    foreign = _Listener("127.0.0.2")
    try:
        tao.add_result("ref-foreign", size=100)
        url = f"http://127.0.0.2:{foreign.port}/{{signed_path}}"
        if kind == "signed_url":
            tao.add_fault(Fault(stage="download", kind="signed_url", reference_id="ref-foreign", url=url))
        else:
            tao.add_fault(
                Fault(stage="storage", kind="redirect", reference_id="ref-foreign", status=302, location=url)
            )
        h = harness()
        _, failed = h.run({"referenceId": "ref-foreign"})
        assert failed == []
        letter = only(h.dead_letters())
        assert letter["reason"] == "signed_url_rejected"
        assert "127.0.0.2" in letter["detail"]
        assert "X-Amz-Signature" not in json.dumps(letter)
        time.sleep(0.3)
        assert foreign.accepted == 0
    finally:
        foreign.close()


def test_not_found_grace_retries_while_an_import_may_still_run(harness, tao):
    info = tao.add_result("ref-pending", size=100, ready_after_calls=1)
    h = harness(NOT_FOUND_GRACE_SECONDS="600")
    ids, failed = h.run({"referenceId": "ref-pending"})
    assert failed == ids  # 404 within the grace period: retried later, not dead-lettered
    assert h.dead_letters() == []
    h.make_visible_again(ids)
    assert h.invoke(h.receive_event(1)) == {"batchItemFailures": []}
    assert hashlib.sha256(h.object_bytes("tao-results/ref-pending/result.csv")).hexdigest() == info.sha256


def test_not_found_after_the_grace_period_is_dead_lettered(harness):
    h = harness(NOT_FOUND_GRACE_SECONDS="0.5")
    h.send({"referenceId": "never"})
    time.sleep(1.0)
    assert h.invoke(h.receive_event(1)) == {"batchItemFailures": []}
    assert only(h.dead_letters())["reason"] == "not_found"
