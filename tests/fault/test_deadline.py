"""Time: a copy that cannot finish before the Lambda deadline stops cleanly, with margin.

"Cleanly" means: the multipart upload is aborted (no open upload, no object), the record is
reported in ``batchItemFailures`` (not dead-lettered: a later delivery may well succeed), and the
handler has returned before the context's deadline, so Lambda never kills it mid-write.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tao_emulator import Fault, TaoEmulator
from tests.support.faulty_s3_proxy import FaultyS3Proxy
from tests.support.harness import HarnessFactory

MiB = 1024 * 1024


def assert_stopped_cleanly(h, message_id: str, failed: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert failed == [message_id]
    assert h.open_uploads() == []
    assert h.keys() == []
    assert h.dead_letters() == []


def test_multipart_copy_too_slow_for_the_deadline_is_aborted_with_margin(
    harness: HarnessFactory, tao: TaoEmulator, aws
) -> None:  # type: ignore[no-untyped-def]
    tao.add_result("slow-big", size=60 * MiB)
    timeout, margin = 5.0, 3.0
    # Each UploadPart takes 1.5 s: 12 parts, 4 at a time, need ~4.5 s; the deadline leaves 2 s.
    with FaultyS3Proxy(aws.endpoint_url, part_delay_seconds=1.5) as proxy:
        h = harness(AWS_ENDPOINT_URL_S3=proxy.endpoint_url, DEADLINE_MARGIN_SECONDS=str(margin))
        [message_id] = h.send({"referenceId": "slow-big"})
        event = h.receive_event(1)
        started = time.monotonic()
        answer = h.invoke(event, timeout_seconds=timeout)
        elapsed = time.monotonic() - started
        assert 0 < proxy.counts()["upload_parts"] < 12  # it started, and it did not finish
    assert elapsed < timeout - 0.5, f"returned {elapsed:.2f}s into a {timeout}s invocation"
    assert_stopped_cleanly(h, message_id, [item["itemIdentifier"] for item in answer["batchItemFailures"]])


@contextlib.contextmanager
def trickling_storage(fast_bytes: int, declared: int, stop_after: float) -> Iterator[int]:
    """A storage on 127.0.0.1 that sends ``fast_bytes`` at once, then 1 KiB every 100 ms.

    It never pauses long enough for a read timeout, and never finishes; it hangs up after
    ``stop_after`` seconds so that a test of a function that does not stop still ends.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    done = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nContent-Type: text/csv\r\n\r\n"
                connection.sendall(head.encode() + b"a" * fast_bytes)
                ends = time.monotonic() + stop_after
                while time.monotonic() < ends and not done.is_set():
                    connection.sendall(b"b" * 1024)
                    time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        done.set()
        server.close()
        thread.join(timeout=2)


@pytest.mark.parametrize(
    "fast_mib", [pytest.param(0, marks=pytest.mark.soak, id="single-put"), pytest.param(6, id="multipart")]
)
def test_trickling_download_stops_at_the_deadline(
    harness: HarnessFactory, tao: TaoEmulator, fast_mib: int
) -> None:
    """A storage that trickles bytes (never idle long enough for a read timeout) must not keep
    the function reading past its deadline: with ``fast_mib=6`` a multipart upload is already
    open when the trickle starts, and being killed there would orphan it."""
    timeout, margin = 4.0, 2.0
    with trickling_storage(fast_mib * MiB, declared=64 * MiB, stop_after=timeout + 2) as port:
        tao.add_result("trickle", size=10)
        url = f"http://127.0.0.1:{port}/storage/results/trickle/result.csv"
        tao.add_fault(Fault("download", "signed_url", reference_id="trickle", times=None, url=url))
        h = harness(DEADLINE_MARGIN_SECONDS=str(margin), MAX_ATTEMPTS_PER_INVOCATION="1")
        [message_id] = h.send({"referenceId": "trickle"})
        event = h.receive_event(1)
        started = time.monotonic()
        answer = h.invoke(event, timeout_seconds=timeout)
        elapsed = time.monotonic() - started
    assert_stopped_cleanly(h, message_id, [item["itemIdentifier"] for item in answer["batchItemFailures"]])
    assert elapsed < timeout, (
        f"still reading {elapsed:.2f}s into a {timeout}s invocation: Lambda kills it here"
    )


# --- §3: nothing outlives the invocation --------------------------------------------------------

STALL_SECONDS = 60.0  # longer than the function: only the deadline can end the call
STALL_TIMEOUT, STALL_MARGIN = 8.0, 3.0


def transient_503(reference_id: str) -> Fault:
    return Fault(
        "download",
        "status",
        reference_id=reference_id,
        status=503,
        times=None,
        body='{"message": "maintenance"}',
        content_type="application/json",
    )


# operation(s) to stall, which records stall (a referenceId in the request, None: every request),
# the record that stalls, and whether a multipart upload stays open (only if the abort stalls too).
STALL_CASES = {
    "PutObject": ({"PutObject": STALL_SECONDS}, "stall-me", 1024, False),
    "UploadPart": ({"UploadPart": STALL_SECONDS}, "stall-me", 12 * MiB, False),
    "CompleteMultipartUpload": ({"CompleteMultipartUpload": STALL_SECONDS}, "stall-me", 12 * MiB, False),
    "AbortMultipartUpload": (
        {"UploadPart": STALL_SECONDS, "AbortMultipartUpload": STALL_SECONDS},
        "stall-me",
        12 * MiB,
        True,
    ),
    "SendMessage": ({"SendMessage": STALL_SECONDS}, "stall-me", None, False),
    "ChangeMessageVisibility": ({"ChangeMessageVisibility": STALL_SECONDS}, None, None, False),
}


@pytest.mark.parametrize("case", list(STALL_CASES))
def test_a_stalled_aws_call_costs_its_record_a_transient_failure_and_nothing_more(
    harness: HarnessFactory, tao: TaoEmulator, aws, case: str
) -> None:  # type: ignore[no-untyped-def]
    """One record's AWS call never answers; the function's AWS read timeout is 60 s, its timeout 8 s.

    The handler returns before the timeout, the stalled record is a batchItemFailure, its
    neighbours are copied (and a permanent failure dead-lettered once), nothing is left open
    unless the abort itself stalls (then the bucket's lifecycle rule is the fallback).
    """
    stalls, match, size, upload_left_open = STALL_CASES[case]
    for reference_id in ("ok-1", "ok-2"):
        tao.add_result(reference_id, size=2048)
    if size is not None:
        tao.add_result("stall-me", size=size)
    elif case == "ChangeMessageVisibility":
        tao.add_fault(transient_503("stall-me"))  # fails, so its backoff is set: that call stalls
    # else: an unknown reference, dead-lettered as not_found: SendMessage to the DLQ stalls
    with FaultyS3Proxy(aws.endpoint_url, stalls=stalls, stall_match=match) as proxy:
        h = harness(
            AWS_ENDPOINT_URL_S3=proxy.endpoint_url,
            AWS_ENDPOINT_URL_SQS=proxy.endpoint_url,
            DEADLINE_MARGIN_SECONDS=str(STALL_MARGIN),
            HTTP_READ_TIMEOUT_SECONDS="60",
            MAX_ATTEMPTS_PER_INVOCATION="1",
            RETRY_BACKOFF_BASE_SECONDS="5" if case == "ChangeMessageVisibility" else "0",
        )
        ids = h.send_refs("ok-1", "stall-me", "ok-2", "gone")
        event = h.receive_event(4)
        started = time.monotonic()
        answer = h.invoke(event, timeout_seconds=STALL_TIMEOUT)
        elapsed = time.monotonic() - started
        stalled = proxy.counts()
    print(f"{case}: returned {elapsed:.2f}s into an {STALL_TIMEOUT}s invocation ({stalled})")
    assert any(name.startswith("stalled_") for name in stalled), stalled  # the fault really fired
    # By the cleanup deadline (half the margin left), not the handler's backstop three quarters in:
    # every call ended by itself.
    cleanup_ends = STALL_TIMEOUT - STALL_MARGIN / 2
    assert elapsed < cleanup_ends + 0.5, f"returned {elapsed:.2f}s into a {STALL_TIMEOUT}s invocation"
    failed = [item["itemIdentifier"] for item in answer["batchItemFailures"]]
    assert failed == [ids[1]]
    assert h.keys() == ["tao-results/ok-1/result.csv", "tao-results/ok-2/result.csv"]
    time.sleep(1.0)  # a thread that outlived the handler would send its dead letter now
    letters = h.dead_letters()
    assert [letter["referenceId"] for letter in letters] == ["gone"]
    assert [upload["Key"] for upload in h.open_uploads()] == (
        ["tao-results/stall-me/result.csv"] if upload_left_open else []
    )


def test_a_stalled_secrets_manager_fails_the_batch_transiently_before_the_timeout(
    harness: HarnessFactory, tao: TaoEmulator, aws
) -> None:  # type: ignore[no-untyped-def]
    tao.add_result("ok-1", size=2048)
    tao.add_result("ok-2", size=2048)
    with FaultyS3Proxy(aws.endpoint_url, stalls={"GetSecretValue": STALL_SECONDS}) as proxy:
        h = harness(
            AWS_ENDPOINT_URL_SECRETS_MANAGER=proxy.endpoint_url,
            DEADLINE_MARGIN_SECONDS=str(STALL_MARGIN),
            MAX_ATTEMPTS_PER_INVOCATION="1",
        )
        ids = h.send_refs("ok-1", "ok-2")
        event = h.receive_event(2)
        started = time.monotonic()
        answer = h.invoke(event, timeout_seconds=STALL_TIMEOUT)
        elapsed = time.monotonic() - started
        assert proxy.counts().get("stalled_GetSecretValue", 0) >= 1
    print(f"GetSecretValue: returned {elapsed:.2f}s into an {STALL_TIMEOUT}s invocation")
    assert elapsed < STALL_TIMEOUT - 0.5
    assert sorted(item["itemIdentifier"] for item in answer["batchItemFailures"]) == sorted(ids)
    assert h.keys() == []
    assert h.dead_letters() == []


def test_a_short_function_with_the_default_margin_still_works_and_warns_once(
    harness: HarnessFactory, tao: TaoEmulator
) -> None:
    """A 15 s function with the default 20 s margin used to stop every record before it started."""
    tao.add_result("short-1", size=100)
    tao.add_result("short-2", size=100)
    h = harness(DEADLINE_MARGIN_SECONDS="")  # empty: the default (20 s)
    assert h.app.batch_handler.settings.deadline_margin_seconds == 20.0
    function_log = io.StringIO()
    h.app.logger.registered_handler.setStream(function_log)  # the production handler and formatter
    for reference_id in ("short-1", "short-2"):
        _, failed = h.run({"referenceId": reference_id}, timeout_seconds=15.0)
        assert failed == []
    assert h.keys() == ["tao-results/short-1/result.csv", "tao-results/short-2/result.csv"]
    warnings = [line for line in function_log.getvalue().splitlines() if "DEADLINE_MARGIN_SECONDS" in line]
    assert len(warnings) == 1
    assert json.loads(warnings[0])["margin_seconds"] <= 7.5


@contextlib.contextmanager
def trickling_api(stop_after: float) -> Iterator[str]:
    """An HTTP endpoint on 127.0.0.1 that answers 200 JSON and trickles its body, 16 bytes per
    100 ms: never idle long enough for a read timeout, done only after ``stop_after`` seconds."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    done = threading.Event()

    def answer(connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection:
            connection.recv(65536)
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
            connection.sendall(head.encode() + b'{"access_token": "')
            ends = time.monotonic() + stop_after
            while time.monotonic() < ends and not done.is_set():
                connection.sendall(b"t" * 16)
                time.sleep(0.1)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while not done.is_set():
                connection, _ = server.accept()
                threading.Thread(target=answer, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        server.close()
        thread.join(timeout=2)


@pytest.mark.parametrize("endpoint", ["token", "download-api"])
def test_a_trickling_api_answer_stops_at_the_deadline(
    harness: HarnessFactory, tao: TaoEmulator, endpoint: str
) -> None:
    """The token endpoint's or the Download API's answer body trickles in (each read well inside
    the 2 s read timeout): reading it must stop at the deadline, not when the server is done."""
    timeout, margin = 4.0, 2.0
    tao.add_result("slow-answer", size=10)
    with trickling_api(stop_after=timeout + 4) as url:
        if endpoint == "token":
            overrides = {"TAO_TOKEN_URL": url + "/oauth2/tokens"}
        else:
            overrides = {
                "TAO_BASE_URL": url,
                "TAO_TOKEN_URL": tao.base_url + "/api/v1/upload/v1/oauth2/tokens",
            }
        h = harness(DEADLINE_MARGIN_SECONDS=str(margin), MAX_ATTEMPTS_PER_INVOCATION="1", **overrides)
        [message_id] = h.send({"referenceId": "slow-answer"})
        event = h.receive_event(1)
        started = time.monotonic()
        answer = h.invoke(event, timeout_seconds=timeout)
        elapsed = time.monotonic() - started
    print(f"{endpoint}: returned {elapsed:.2f}s into a {timeout}s invocation")
    assert [item["itemIdentifier"] for item in answer["batchItemFailures"]] == [message_id]
    assert elapsed < timeout - margin / 4, f"still reading {elapsed:.2f}s into a {timeout}s invocation"
    assert h.dead_letters() == []
