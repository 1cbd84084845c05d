"""Token and secret handling: cached, refreshed on 401, rotation picked up without a redeploy."""

import io
import json
import logging
import os
import time

import pytest

from tao_emulator import Fault
from tao_results.config import ConfigError
from tests.conftest import CLIENT_SECRET
from tests.support.aws_stack import aws_client
from tests.support.harness import load_handler_module


def test_token_is_cached_across_records_and_invocations(harness, tao):
    for n in range(3):
        tao.add_result(f"r{n}", size=10)
    h = harness()
    assert h.run({"referenceId": "r0"}, {"referenceId": "r1"})[1] == []
    assert h.run({"referenceId": "r2"})[1] == []
    assert tao.stats()["token_requests"] == 1


def test_an_expired_token_is_refreshed_once_and_the_call_retried(harness, tao):
    tao.configure(token_expires_in=3600)
    tao.add_result("a", size=10)
    tao.add_result("b", size=10)
    h = harness()
    assert h.run({"referenceId": "a"})[1] == []
    tao.advance_clock(4000)  # the server now considers our cached token expired
    assert h.run({"referenceId": "b"})[1] == []
    assert tao.stats()["token_requests"] == 2
    download_statuses = [e["status"] for e in tao.requests_log() if e["stage"] == "download"]
    assert download_statuses == [200, 401, 200]


def test_token_refreshed_before_expiry_without_a_401(harness, tao):
    tao.configure(token_expires_in=1)
    tao.add_result("a", size=10)
    tao.add_result("b", size=10)
    h = harness(TOKEN_REFRESH_MARGIN_SECONDS="60")
    assert h.run({"referenceId": "a"})[1] == []
    time.sleep(0.6)  # past half the 1 s lifetime: the margin is capped at half of expires_in
    assert h.run({"referenceId": "b"})[1] == []
    assert tao.stats()["token_requests"] == 2
    assert all(e["status"] == 200 for e in tao.requests_log() if e["stage"] == "download")


def test_a_revoked_token_is_replaced(harness, tao):
    tao.add_result("a", size=10)
    tao.add_fault(Fault(stage="download", kind="revoke", reference_id="a"))
    h = harness()
    assert h.run({"referenceId": "a"})[1] == []
    assert tao.stats()["token_requests"] == 2


def test_two_401_in_a_row_are_transient(harness, tao):
    tao.add_result("a", size=10)
    tao.add_fault(
        Fault(
            stage="download",
            kind="status",
            status=401,
            times=None,
            body="Access Denied",
            content_type="text/plain",
        )
    )
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    ids, failed = h.run({"referenceId": "a"})
    assert failed == ids
    assert h.dead_letters() == []


def test_a_rotated_secret_is_picked_up_by_the_next_delivery(harness, tao, aws):
    tao.add_result("before", size=10)
    tao.add_result("after", size=10)
    h = harness()
    assert h.run({"referenceId": "before"})[1] == []
    # Rotation: TAO accepts only the new secret, Secrets Manager holds it, old tokens are gone.
    tao.rotate_secret("rotated-secret-value-2")
    tao.revoke_tokens()
    aws_client("secretsmanager", aws.endpoint_url).put_secret_value(
        SecretId=aws.secret_id,
        SecretString=json.dumps({"client_id": "demo-client", "client_secret": "rotated-secret-value-2"}),
    )
    assert h.run({"referenceId": "after"})[1] == []
    token_statuses = [e["status"] for e in tao.requests_log() if e["stage"] == "token"]
    assert token_statuses == [200, 401, 200]  # cached secret rejected once, then the re-read one works


def test_wrong_credentials_never_dead_letter(harness, tao):
    tao.rotate_secret("something-else-entirely")
    tao.add_result("a", size=10)
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    ids, failed = h.run({"referenceId": "a"})
    assert failed == ids
    assert h.dead_letters() == []


def test_a_malformed_secret_is_transient(harness, tao, aws):
    aws_client("secretsmanager", aws.endpoint_url).put_secret_value(
        SecretId=aws.secret_id, SecretString="not json"
    )
    h = harness(MAX_ATTEMPTS_PER_INVOCATION="1")
    ids, failed = h.run({"referenceId": "a"})
    assert failed == ids
    assert h.dead_letters() == []


def test_cold_start_fails_fast_naming_the_missing_variable(harness):
    h = harness()
    environment = {k: v for k, v in h.environment.items() if k != "DEAD_LETTER_QUEUE_URL"}
    saved = os.environ.pop("DEAD_LETTER_QUEUE_URL")
    try:
        with pytest.raises(ConfigError, match="DEAD_LETTER_QUEUE_URL"):
            load_handler_module(environment)
    finally:
        os.environ["DEAD_LETTER_QUEUE_URL"] = saved


def test_no_secret_token_or_signature_in_the_logs(harness, tao, capsys):
    tao.add_result("ok", size=7 * 1024 * 1024)
    tao.add_result("expired", size=10)
    tao.add_fault(Fault(stage="download", kind="expired_url", reference_id="expired"))
    tao.add_fault(Fault(stage="download", kind="revoke", reference_id="ok"))
    tao.add_fault(
        Fault(
            stage="download",
            kind="signed_url",
            reference_id="foreign",
            url="http://127.0.0.2:1/{signed_path}",
        )
    )
    tao.add_result("foreign", size=10)
    h = harness(POWERTOOLS_LOG_LEVEL="DEBUG")
    function_log = io.StringIO()
    h.app.logger.registered_handler.setStream(function_log)  # the production handler and formatter
    everything_else = io.StringIO()
    root_handler = logging.StreamHandler(everything_else)
    logging.getLogger().addHandler(root_handler)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        capsys.readouterr()
        _, failed = h.run(
            {"referenceId": "ok"}, {"referenceId": "expired"}, {"referenceId": "foreign"}, "junk"
        )
    finally:
        logging.getLogger().removeHandler(root_handler)
        logging.getLogger().setLevel(logging.WARNING)
    assert failed == []
    logs = function_log.getvalue()
    assert '"level":"DEBUG"' in logs
    assert '"level":"ERROR"' in logs
    text = logs + everything_else.getvalue() + capsys.readouterr().out + json.dumps(h.dead_letters())
    forbidden = [CLIENT_SECRET, *tao.issued_tokens(), *tao.issued_signatures()]
    assert len(forbidden) >= 5
    assert [value for value in forbidden if value in text] == []
