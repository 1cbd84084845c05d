"""Time: a copy that cannot finish before the Lambda deadline stops cleanly, with margin.

"Cleanly" means: the multipart upload is aborted (no open upload, no object), the record is
reported in ``batchItemFailures`` (not dead-lettered: a later delivery may well succeed), and the
handler has returned before the context's deadline, so Lambda never kills it mid-write.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.faulty_s3_proxy import FaultyS3Proxy
from tests.support.harness import HarnessFactory
from tests.support.tao_emulator import Fault, TaoEmulator

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
