"""Secrets in what a hostile or careless API answers: they must not travel on into the DLQ.

Log lines are scrubbed by the function's formatter (see test_conservation's DEBUG run); a dead
letter is another way out of the function, read by people and tools, and must be just as clean.
"""

from __future__ import annotations

import json

from tao_emulator import Fault, TaoEmulator
from tests.conftest import CLIENT_SECRET
from tests.support.conservation import drain
from tests.support.harness import HarnessFactory


def test_a_token_echoed_in_an_error_answer_is_not_dead_lettered(
    harness: HarnessFactory, tao: TaoEmulator
) -> None:
    tao.add_result("warm-up", size=10)
    tao.add_result("echo", size=10)
    h = harness()
    assert h.run({"referenceId": "warm-up"})[1] == []
    [token] = tao.issued_tokens()  # the one the function has cached and will present next
    # Gateways and WAFs do echo request headers in their error pages.
    echo = {"message": f"Invalid header Authorization: Bearer {token} (client_secret={CLIENT_SECRET})"}
    tao.add_fault(Fault("download", "status", reference_id="echo", status=400, body=json.dumps(echo)))

    [message_id], failed = h.run({"referenceId": "echo"})

    assert failed == []
    [letter] = h.dead_letters()
    assert letter["messageId"] == message_id
    assert letter["reason"] == "bad_request"
    text = json.dumps(letter)
    assert token not in text, f"the access token is in the dead letter: {letter['detail']!r}"
    assert CLIENT_SECRET not in text


def test_the_secret_is_still_masked_after_many_token_refreshes(
    harness: HarnessFactory, tao: TaoEmulator
) -> None:
    """The registry once kept the last 64 values: 64 token refreshes pushed the client secret out."""
    h = harness()
    spinners = [f"spin-{number:02d}" for number in range(12)]
    for reference in spinners:
        tao.add_result(reference, size=10)
        # Every presented token is revoked: each attempt fetches two, three attempts per record.
        tao.add_fault(Fault("download", "revoke", reference_id=reference, times=None))
    for _ in range(8):
        _, failed = h.run(*({"referenceId": reference} for reference in spinners))
        assert len(failed) == len(spinners)
        if len(tao.issued_tokens()) > 64:
            break
    assert len(tao.issued_tokens()) > 64
    drain(h.sqs, h.resources.queue_url)  # the spinners' retries

    tao.add_result("echo", size=10)
    echo = {"message": f"client {CLIENT_SECRET} is not allowed to read this result"}
    tao.add_fault(Fault("download", "status", reference_id="echo", status=400, body=json.dumps(echo)))
    [message_id], failed = h.run({"referenceId": "echo"})

    assert failed == []
    [letter] = [letter for letter in h.dead_letters() if letter["messageId"] == message_id]
    assert "is not allowed" in letter["detail"]
    assert CLIENT_SECRET not in json.dumps(letter), letter["detail"]
