"""No credential leaves the function, whatever the upstream echoes: logs, traces, dead letters, metrics.

One run of the fault suite's machinery (tests/support/conservation.py: the local event source
mapping, the emulator's random fault mix, the S3 proxy failing part uploads) with everything turned
up: the function at DEBUG, the root logger at DEBUG, tracing on (Lambda's trace environment and a
local X-Ray daemon on a UDP socket that keeps every segment), and the emulator quoting each request's
``Authorization``, query string and form body in its error answers, raw, JSON-escaped,
percent-encoded or JSON-escaped twice (``echo_credentials``). The client secret contains ``"``,
``\\``, ``+``, ``%``, a space and a non-ASCII letter, so each of its forms differs from the others.

The tests then read the run from every side a credential could leave by: each log line and stdout
line, each trace datagram, each dead letter (body and message attributes), each EMF metric line;
none may hold the client secret, any token or any signed-URL credential (signature, X-Amz-Credential,
X-Amz-Security-Token) the emulator handed out, in any form; no request to the TAO API or the storage
carries an ``X-Amzn-Trace-Id`` header.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tao_emulator import Fault, TaoEmulator
from tao_results.redaction import WITHHELD
from tests.conftest import CLIENT_ID
from tests.fault.test_conservation import everything_captured
from tests.support.aws_stack import MotoServer
from tests.support.conservation import Plan, RunResult, run_conservation
from tests.support.xray_daemon import XRayDaemon

HOSTILE_SECRET = 'Tao "quoted" back\\slash+plus%25percent and space-é-Never-Logged'
TRACE_ID = "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


@dataclass
class LeakRun:
    result: RunResult
    output: str  # every log line and stdout/stderr line written during the run
    datagrams: list[str]  # what the X-Ray daemon received
    segments: list[dict[str, Any]]
    requests: list[dict[str, Any]]  # the emulator's request log
    echoed: int  # error answers that quoted the request
    credentials: dict[str, str]  # label → value that must not appear
    windows: dict[str, str] | None = None


def free_loopback_port() -> int:
    """A port nothing listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def lambda_tracing(daemon: XRayDaemon) -> Iterator[None]:
    """Tracing as inside Lambda: the X-Ray SDK in Lambda mode, a sampled trace header, our daemon.

    Powertools keeps the Tracer configuration class-wide and the X-Ray SDK reads LAMBDA_TASK_ROOT
    once per process; earlier tests in this process built disabled tracers, so both are set back to
    what a fresh Lambda container starts with.
    """
    import aws_xray_sdk  # noqa: PLC0415 - only this test traces
    from aws_lambda_powertools import Tracer  # noqa: PLC0415
    from aws_xray_sdk.core import xray_recorder  # noqa: PLC0415
    from aws_xray_sdk.core.context import Context  # noqa: PLC0415
    from aws_xray_sdk.core.lambda_launcher import LambdaContext  # noqa: PLC0415

    saved = dict(os.environ)
    os.environ.update(
        {
            "LAMBDA_TASK_ROOT": str(os.getcwd()),
            "_X_AMZN_TRACE_ID": TRACE_ID,
            "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
    )
    Tracer._reset_config()
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)
    xray_recorder.configure(context=LambdaContext(), daemon_address=daemon.address)
    try:
        yield
    finally:
        aws_xray_sdk.global_sdk_config.set_sdk_enabled(False)
        xray_recorder.configure(context=Context())
        Tracer._reset_config()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def leak_run(moto_server: MotoServer) -> Iterator[LeakRun]:
    moto_server.reset()
    with (
        TaoEmulator(client_id=CLIENT_ID, client_secret=HOSTILE_SECRET) as tao,
        XRayDaemon() as daemon,
        lambda_tracing(daemon),
    ):
        # Only HTTP Basic: the function's first form (client_secret in the body) is refused, with
        # the body quoted, then every token request carries the secret in an Authorization header.
        tao.configure(echo_credentials=True, token_auth_methods=["client_secret_basic"])
        # requests' ConnectionError quotes the whole URL, signature included.
        refused = f"http://127.0.0.1:{free_loopback_port()}/{{signed_path}}"
        tao.add_fault(Fault("download", "signed_url", reference_id="good-00001", url=refused))
        # The storage answers 403 to a signed URL (echoing it): transient, a fresh URL is asked for.
        tao.add_fault(Fault("storage", "status", reference_id="good-00002", status=403))
        # A token endpoint answer that quotes the secret across the 300-character cut of a detail,
        # with a status no table knows: a permanent failure, so the detail reaches a dead letter.
        quoting = "x" * 260 + f" client_secret was {HOSTILE_SECRET}"
        tao.add_fault(Fault("token", "status", status=418, body=quoting, content_type="text/plain"))
        # The Download API answers an unknown status, quoting the request: a dead letter too.
        tao.add_fault(Fault("download", "status", reference_id="good-00003", status=402))
        # Transient answers whose Retry-After is too long to wait in the invocation: the record is
        # logged as a transient failure with the (quoting) detail at once.
        later = {"Retry-After": "10"}
        for stage, status in (("token", 503), ("download", 429), ("storage", 503)):
            tao.add_fault(Fault(stage, "status", status=status, headers=later, times=3))  # type: ignore[arg-type]
        plan = Plan(
            good=24,
            multipart_every=8,
            poisoned=1,
            max_receive_count=2,
            log_level="DEBUG",
            seed=20261129,
            environment=(("POWERTOOLS_TRACE_DISABLED", "false"),),
        )
        buffer = io.StringIO()
        result = run_conservation(
            plan,
            moto_server.endpoint_url,
            tao,
            client_id=CLIENT_ID,
            client_secret=HOSTILE_SECRET,
            name=f"leak{uuid.uuid4().hex[:6]}",
            observe=lambda: everything_captured(buffer),
        )
        print(f"\n{result.table()}")
        credentials = {"client secret": HOSTILE_SECRET}
        credentials |= {f"token {t[:6]}…": t for t in tao.issued_tokens()}
        credentials |= {f"signature {s[:8]}…": s for s in tao.issued_signatures()}
        credentials |= {f"URL credential {c[:8]}…": c.split("/")[0] for c in tao.issued_url_credentials()}
        yield LeakRun(
            result=result,
            output=buffer.getvalue(),
            datagrams=daemon.datagrams(),
            segments=daemon.segments(),
            requests=tao.requests_log(),
            echoed=tao.stats()["echoed_errors"],
            credentials=credentials,
        )


# ---- the forms a credential travels in, written out independently of the library ------------------


def forms(value: str) -> set[str]:
    json_once = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    encoded = {quote(value, safe=""), quote(value), quote_plus(value), html.escape(value)}
    return (
        {value}
        | json_once
        | {json.dumps(form)[1:-1] for form in json_once}
        | encoded
        | {json.dumps(form)[1:-1] for form in encoded}
    )


def basic_values() -> set[tuple[str, int]]:
    """``Authorization: Basic`` values our client may send (RFC 7617, RFC 6749 §2.3.1), each with
    the length of its Base64 that encodes the client id alone."""
    pairs = ((CLIENT_ID, HOSTILE_SECRET), (quote_plus(CLIENT_ID), quote_plus(HOSTILE_SECRET)))
    return {
        (base64.b64encode(f"{user}:{password}".encode()).decode(), (len(user) + 1) * 8 // 6)
        for user, password in pairs
    }


WINDOW = 12
"""A leak is any 12 characters of a form of a credential: a cut-off secret is still a leak."""


def windows(run: LeakRun) -> dict[str, str]:
    """Every WINDOW-long piece of every form of every credential → its label (built once per run)."""
    if run.windows is None:
        found: dict[str, str] = {}
        for label, value in run.credentials.items():
            for form in forms(value):
                for start in range(max(1, len(form) - WINDOW + 1)):
                    found.setdefault(form[start : start + WINDOW], label)
        for basic, client_id_length in basic_values():
            for start in range(client_id_length, len(basic) - WINDOW + 1):  # past the client id
                found.setdefault(basic[start : start + WINDOW], "Basic credentials")
        run.windows = found
    return run.windows


def leaks_in(text: str, run: LeakRun) -> list[str]:
    pieces = windows(run)
    return sorted({pieces[text[i : i + WINDOW]] for i in range(len(text)) if text[i : i + WINDOW] in pieces})


# ---- the run really exercised the leak paths ------------------------------------------------------


def test_the_run_was_hostile_traced_and_conserved(leak_run: LeakRun) -> None:
    result = leak_run.result
    assert result.stop_reason == "until_empty", result.table()
    # Every message in exactly one place (test_conservation checks which; here some good requests
    # are dead-lettered on purpose, with answers that quote credentials).
    assert result.accounting.unplaced() == [], {
        m: (result.sent[m].kind, result.sent[m].reference_id, result.accounting.places[m])
        for m in result.accounting.unplaced()
    }
    assert leak_run.echoed >= 10, "the emulator quoted too few requests to exercise the leak paths"
    token_forms = {entry.get("client_auth") for entry in leak_run.requests if entry["stage"] == "token"}
    assert "client_secret_basic" in token_forms, token_forms
    assert '"level":"DEBUG"' in leak_run.output, "the function logged nothing at DEBUG"
    names = {segment.get("name") for segment in leak_run.segments}
    assert "## lambda_handler" in names, sorted(filter(None, names))
    assert {"sqs", "s3"} & names, f"no AWS SDK subsegment was traced: {sorted(filter(None, names))}"
    # Scrubbing really happened on echoed answers that reached a dead letter.
    details = [json.dumps(letter) for letter in result.accounting.dead_letters]
    # (Masked piece by piece, or withheld whole when the echo used an encoding we do not mask.)
    assert any(
        ("***" in detail and "rejected request" in detail) or WITHHELD in detail for detail in details
    ), details[:3]


# ---- nothing leaks --------------------------------------------------------------------------------


def test_no_log_line_holds_a_credential(leak_run: LeakRun) -> None:
    leaks = {}
    for number, line in enumerate(leak_run.output.splitlines()):
        found = leaks_in(line, leak_run)
        if found:
            leaks[number] = (found, line)
    assert leaks == {}


def test_no_trace_segment_holds_a_credential_or_a_url_query(leak_run: LeakRun) -> None:
    assert leak_run.datagrams, "the X-Ray daemon received nothing: tracing is not on"
    problems = []
    for datagram in leak_run.datagrams:
        problems += [(found, datagram[:600]) for found in leaks_in(datagram, leak_run)]
        if "X-Amz-" in datagram:
            problems.append(("a signed URL's query", datagram[:600]))
    for segment in leak_run.segments:
        problems += [("URL with a query", url) for url in urls_in(segment) if "?" in url]
    assert problems == []


def test_the_tao_api_and_the_storage_are_not_traced(leak_run: LeakRun) -> None:
    """Their URLs are theirs (the signed one holds credentials); only AWS SDK calls are traced."""
    names = {segment.get("name") for segment in leak_run.segments}
    assert not any(name and name.startswith("127.0.0.1") for name in names), sorted(filter(None, names))
    assert not [d for d in leak_run.datagrams if "/storage/results/" in d or "/api/v1/" in d]


def urls_in(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "url" and isinstance(value, str):
                yield value
            yield from urls_in(value)
    elif isinstance(document, list):
        for item in document:
            yield from urls_in(item)


def test_no_trace_header_reaches_the_tao_api_or_the_storage(leak_run: LeakRun) -> None:
    external = [entry for entry in leak_run.requests if entry["stage"] in ("token", "download", "storage")]
    assert {entry["stage"] for entry in external} == {"token", "download", "storage"}
    assert [entry for entry in external if entry["trace_header_present"]] == []


def test_no_dead_letter_or_message_attribute_holds_a_credential(leak_run: LeakRun) -> None:
    letters = leak_run.result.accounting.dead_letters
    assert letters
    for letter in letters:
        text = json.dumps(letter, ensure_ascii=False) + json.dumps(letter)
        assert leaks_in(text, leak_run) == [], letter["Body"][:400]


def test_no_metric_holds_a_credential(leak_run: LeakRun) -> None:
    lines = [line for line in leak_run.output.splitlines() if line.startswith('{"_aws"')]
    assert lines, "no EMF metrics were printed"
    for line in lines:
        assert leaks_in(line, leak_run) == [], line[:400]
