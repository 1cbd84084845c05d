"""Two containers receive the same message at once (its visibility timeout lapsed mid-copy).

Each "container" is its own cold start of the handler (own clients, token cache, thread pools).
Both copy the same result to the same key at the same time: the end state must be one object with
the emulator's bytes, no open multipart upload, no dead letter, and neither invocation may report
an error that would send the message towards the DLQ.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from tao_emulator import TaoEmulator
from tao_results_cli.local.context import FunctionSettings, new_context
from tests.support.harness import HarnessFactory, load_handler_module

MiB = 1024 * 1024


@pytest.mark.parametrize("size", [300 * 1024, 23 * MiB + 5], ids=["single-put", "multipart"])
def test_two_containers_same_message_one_correct_object(
    harness: HarnessFactory, tao: TaoEmulator, size: int
) -> None:
    info = tao.add_result("twice", size=size, filename="twice.csv")
    h = harness(PART_SIZE_BYTES=str(5 * MiB))
    second_container = load_handler_module(h.environment)
    [message_id] = h.send({"referenceId": "twice"})
    first_event = h.receive_event(1)
    h.make_visible_again([message_id])  # what a lapsed visibility timeout does
    second_event = h.receive_event(1)
    assert first_event["Records"][0]["receiptHandle"] != second_event["Records"][0]["receiptHandle"]

    answers: dict[str, Any] = {}
    start = threading.Barrier(2)

    def invoke(name: str, app: Any, event: dict[str, Any]) -> None:
        start.wait()
        context = new_context(FunctionSettings(timeout_seconds=60), "eu-west-1", "123456789012", name)
        answers[name] = app.lambda_handler(event, context)

    threads = [
        threading.Thread(target=invoke, args=("first", h.app, first_event)),
        threading.Thread(target=invoke, args=("second", second_container, second_event)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert answers == {"first": {"batchItemFailures": []}, "second": {"batchItemFailures": []}}
    assert h.keys() == ["tao-results/twice/twice.csv"]
    assert hashlib.sha256(h.object_bytes("tao-results/twice/twice.csv")).hexdigest() == info.sha256
    assert h.open_uploads() == []
    assert h.dead_letters() == []
    assert sum(tao.stats()["storage_gets"].values()) == 2  # both really copied, concurrently
