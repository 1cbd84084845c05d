"""Conservation under random faults, at DEBUG: nothing is lost, nothing leaks, no one gets in.

One run per module (a few dozen messages through the local event source mapping, the emulator
faulting ~30% of TAO/storage calls, the S3 proxy failing ~30% of part uploads) with the function's
log level and the root logger at DEBUG, every log line and stdout line captured, and every
connection attempt of the process audited. The tests then read that one run from several sides.
The soak (tests/soak) is the same run with a thousand messages and more.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tao_emulator import TaoEmulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.support.aws_stack import MotoServer
from tests.support.connection_audit import ConnectionAudit, audited_connections
from tests.support.conservation import Plan, RunResult, assert_conserved, run_conservation

SERVICE = "tao-results-to-s3"
PLAN = Plan(good=36, multipart_every=6, poisoned=1, max_receive_count=2, log_level="DEBUG")


@dataclass
class FaultRun:
    result: RunResult
    output: str  # every log line and stdout/stderr line written during the run
    audit: ConnectionAudit
    tokens: list[str]
    signatures: list[str]


@contextlib.contextmanager
def everything_captured(buffer: io.StringIO) -> Iterator[io.StringIO]:
    """Root logger at DEBUG into ``buffer``, the function's JSON log stream and stdout/stderr too."""
    root = logging.getLogger()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # A Powertools logger configured by an earlier test keeps its handler: point it here too.
    streams = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    # Swapped without setStream: it flushes the old stream, which may be an earlier test's
    # captured stdout, closed since.
    previous_streams = [_swap_stream(h, buffer) for h in streams]
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        for stream_handler, stream in zip(streams, previous_streams, strict=True):
            _swap_stream(stream_handler, stream)
        root.removeHandler(handler)
        root.setLevel(previous_level)


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    with handler.lock or contextlib.nullcontext():
        previous, handler.stream = handler.stream, stream
    return previous


@pytest.fixture(scope="module")
def fault_run(moto_server: MotoServer) -> Iterator[FaultRun]:
    moto_server.reset()
    with TaoEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as tao:
        buffer, audit = io.StringIO(), ConnectionAudit()

        @contextlib.contextmanager
        def observe() -> Iterator[None]:
            nonlocal audit
            with everything_captured(buffer), audited_connections() as audit:
                yield

        result = run_conservation(
            PLAN,
            moto_server.endpoint_url,
            tao,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            name=f"fault{uuid.uuid4().hex[:6]}",
            observe=observe,
        )
        print(f"\n{result.table()}")
        yield FaultRun(result, buffer.getvalue(), audit, tao.issued_tokens(), tao.issued_signatures())


# ---- conservation --------------------------------------------------------------------------------


def test_every_message_is_in_exactly_one_place(fault_run: FaultRun) -> None:
    result = fault_run.result
    assert result.stop_reason == "until_empty", result.table()
    assert len(result.sent) == PLAN.total
    assert_conserved(result)
    landed = sum(1 for places in result.accounting.places.values() if places == ["s3"])
    assert landed >= PLAN.good - 2, result.table()  # random faults delay, they do not lose


def test_faults_were_really_injected(fault_run: FaultRun) -> None:
    result = fault_run.result
    assert result.fault_fraction >= 0.2, result.table()
    assert len(result.random_faults) >= 6, result.random_faults
    assert result.proxy_counts.get("injected_500", 0) + result.proxy_counts.get("injected_503", 0) > 0
    # Several deliveries were needed: the faults were felt, not absorbed before reaching the function.
    assert result.stats.invocations > PLAN.total / PLAN.batch_size


# ---- no one gets in ------------------------------------------------------------------------------


def test_no_connection_or_lookup_beyond_loopback(fault_run: FaultRun) -> None:
    assert fault_run.audit.connects, "the audit saw nothing: it is not recording"
    assert fault_run.audit.non_loopback_connects() == []
    assert fault_run.audit.foreign_lookups() == []


# ---- nothing leaks -------------------------------------------------------------------------------


def secrets_in(text: str, run: FaultRun) -> list[str]:
    found = ["client secret"] if CLIENT_SECRET in text else []
    found += [f"token {token[:6]}…" for token in run.tokens if token in text]
    found += [f"signature {signature[:8]}…" for signature in run.signatures if signature in text]
    return found


def test_debug_logging_really_was_captured(fault_run: FaultRun) -> None:
    lines = fault_run.output.splitlines()
    assert any('"level":"DEBUG"' in line for line in lines), "the function logged nothing at DEBUG"
    assert any('"level":"WARNING"' in line and "Transient failure" in line for line in lines)
    assert any(line.startswith("DEBUG ") for line in lines), "the root handler saw no DEBUG record"
    assert fault_run.tokens and fault_run.signatures


def test_no_log_line_holds_a_secret_token_or_signature(fault_run: FaultRun) -> None:
    leaks = {}
    for number, line in enumerate(fault_run.output.splitlines()):
        found = secrets_in(line, fault_run)
        if found:
            leaks[number] = (found, line[:300])
    assert leaks == {}
    assert not re.search(r"X-Amz-Signature=[0-9a-f]{16}", fault_run.output)


def test_no_dead_letter_holds_a_secret(fault_run: FaultRun) -> None:
    letters = fault_run.result.accounting.dead_letters
    assert letters
    for letter in letters:
        text = json.dumps(letter)
        assert secrets_in(text, fault_run) == [], letter["Body"][:300]
        assert "X-Amz-Signature=" not in text


def metric_documents(output: str) -> list[dict[str, Any]]:
    documents = []
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            documents.append(json.loads(line))
    return documents


def test_no_metric_dimension_holds_a_secret(fault_run: FaultRun) -> None:
    documents = metric_documents(fault_run.output)
    assert documents, "no EMF metrics were printed"
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                for dimension in dimension_set:
                    value = str(document.get(dimension))
                    assert secrets_in(f"{dimension}={value}", fault_run) == []
        assert secrets_in(json.dumps(document), fault_run) == []
