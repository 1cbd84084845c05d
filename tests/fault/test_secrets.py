"""Secrets in what a hostile or careless API answers: they must not travel on into the DLQ.

Log lines are scrubbed by the function's formatter (see test_conservation's DEBUG run); a dead
letter is another way out of the function, read by people and tools, and must be just as clean.
"""

from __future__ import annotations

import json

from tests.conftest import CLIENT_SECRET
from tests.support.harness import HarnessFactory
from tests.support.tao_emulator import Fault, TaoEmulator


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
