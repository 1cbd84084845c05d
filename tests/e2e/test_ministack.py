"""The function built by ``sam build``, run by MiniStack's own SQS event source mapping.

Each scenario is enqueued while the mapping is disabled, the mapping is enabled, and the test waits
(bounded) until the source queue is empty with nothing in flight. Then every message must be in
exactly one right place: S3 byte-exact (sha256 against the emulator's ``result_info``), the DLQ
with the right ``reason`` and its original body, or -- for the stalled S3 call only -- still in
flight. Each runtime (MiniStack's Python executor, ``awslambdaric`` behind MiniStack's Runtime
API) runs the same scenarios; the tables are printed at the end of the run.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from tao_emulator import Fault
from tests.e2e.conftest import E2EWorld, MiB
from tests.e2e.stack import RUNTIMES, Deployment, set_mapping

pytestmark = pytest.mark.e2e

TABLES: list[str] = []


@dataclass
class Case:
    label: str
    expect: str  # "S3" or "DLQ <reason>"
    ref: str | None
    body: str
    calls: int | None = None  # Download API calls expected for its referenceId (None: not checked)
    may_be_in_flight: bool = False
    # Seconds within which it must land: a redelivery after the function's own backoff, set with
    # ChangeMessageVisibility on the queue URL it derives from the record, not the queue's timeout.
    within: float | None = None
    message_id: str = ""
    sent_at: float = 0.0


@dataclass
class Landings:
    objects: dict[str, tuple[str, float]] = field(default_factory=dict)  # ref -> (sha256, modified)
    dead_letters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # messageId -> letters
    on_source: set[str] = field(default_factory=set)  # message ids received back from the source queue
    in_flight: int = 0


def _body(ref: str) -> str:
    return json.dumps({"referenceId": ref})


def _main_cases(world: E2EWorld, tag: str) -> list[Case]:
    emulator = world.emulator
    p = f"{tag}-{uuid.uuid4().hex[:6]}"
    foreign = f"http://127.0.0.2:{emulator.port}{{signed_path}}"
    cases = []

    def good(label: str, size: int, calls: int | None = 1) -> str:
        ref = f"{p}-{label}"
        emulator.add_result(ref, size=size, filename=f"{label}.csv")
        cases.append(Case(label, "S3", ref, _body(ref), calls))
        return ref

    good("small", 2_048)
    good("single-1mib", MiB + 3)
    good("multipart-12mib", 12 * MiB + 5)  # three parts at PART_SIZE_BYTES = 5 MiB
    ref = good("dup", 4_096, calls=2)  # the same referenceId twice: one object, both messages there
    cases.append(Case("dup-again", "S3", ref, _body(ref), calls=2))

    ref = f"{p}-missing"
    cases.append(Case("404", "DLQ not_found", ref, _body(ref), calls=1))
    ref = f"{p}-forbidden"
    emulator.add_result(ref, size=100)
    emulator.add_fault(Fault("download", "status", reference_id=ref, times=None, status=403))
    cases.append(Case("403", "DLQ insufficient_scope", ref, _body(ref), calls=1))
    cases.append(Case("malformed-json", "DLQ malformed_message", None, "{not json"))
    cases.append(Case("malformed-id", "DLQ malformed_message", None, json.dumps({"referenceId": "../etc"})))
    ref = f"{p}-foreign"
    emulator.add_result(ref, size=100)
    emulator.add_fault(Fault("download", "signed_url", reference_id=ref, times=None, url=foreign))
    cases.append(Case("foreign-host", "DLQ signed_url_rejected", ref, _body(ref), calls=1))

    # Transient: more 503s than MAX_ATTEMPTS_PER_INVOCATION (2), so the record goes back through
    # batchItemFailures and the mapping delivers it again; a reset and a 429 with Retry-After.
    ref = good("transient-503x3", 3_000, calls=4)
    emulator.add_fault(Fault("download", "status", reference_id=ref, times=3, status=503))
    cases[-1].within = world.settings.visibility_timeout
    ref = good("transient-reset", 3_000, calls=None)
    emulator.add_fault(Fault("storage", "reset", reference_id=ref, times=1))
    ref = good("transient-429", 3_000, calls=None)
    emulator.add_fault(
        Fault("download", "status", reference_id=ref, times=2, status=429, headers={"Retry-After": "1"})
    )
    cases[-1].within = world.settings.visibility_timeout
    return cases


def _stall_cases(world: E2EWorld, deployment: Deployment, tag: str) -> list[Case]:
    p = f"{tag}-{uuid.uuid4().hex[:6]}"
    cases = []
    for label in ("neighbour-1", "stalled-put", "neighbour-2"):
        ref = f"{p}-{label}"
        world.emulator.add_result(ref, size=2_048)
        cases.append(Case(label, "S3", ref, _body(ref), calls=1 if label != "stalled-put" else None))
    stalled = cases[1]
    stalled.may_be_in_flight = True  # a transient failure: it lands on a later delivery, or is pending
    # Longer than the function's timeout: the PUT hangs, then its connection closes unanswered.
    world.proxy.stall(f"{world.settings.prefix}{stalled.ref}/", seconds=world.settings.timeout + 5)
    return cases


def _send(world: E2EWorld, deployment: Deployment, cases: list[Case]) -> None:
    sqs = world.stack.client("sqs")
    for start in range(0, len(cases), 10):
        chunk = cases[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": case.body} for i, case in enumerate(chunk)]
        answer = sqs.send_message_batch(QueueUrl=deployment.queue_url, Entries=entries)
        assert not answer.get("Failed"), answer
        now = time.time()
        for entry in answer["Successful"]:
            chunk[int(entry["Id"])].message_id = entry["MessageId"]
            chunk[int(entry["Id"])].sent_at = now


def _queue_depth(world: E2EWorld, queue_url: str) -> tuple[int, int]:
    attributes = world.stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _drain(world: E2EWorld, deployment: Deployment, max_seconds: float) -> float:
    """Enable the mapping, wait until the source queue is empty with nothing in flight, disable it."""
    started = time.monotonic()
    set_mapping(world.stack, deployment, True)
    try:
        time.sleep(1.0)  # let the poller take the first batch before the first look
        while time.monotonic() - started < max_seconds:
            if _queue_depth(world, deployment.queue_url) == (0, 0):
                break
            time.sleep(0.5)
    finally:
        set_mapping(world.stack, deployment, False)
    return time.monotonic() - started


def _landings(world: E2EWorld, deployment: Deployment) -> Landings:
    s3, sqs = world.stack.client("s3"), world.stack.client("sqs")
    found = Landings()
    prefix = world.settings.prefix
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=deployment.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            ref = item["Key"][len(prefix) :].split("/", 1)[0]
            data = s3.get_object(Bucket=deployment.bucket, Key=item["Key"])["Body"].read()
            found.objects[ref] = (hashlib.sha256(data).hexdigest(), item["LastModified"].timestamp())
            s3.delete_object(Bucket=deployment.bucket, Key=item["Key"])  # the next scenario starts empty
    while True:
        messages = sqs.receive_message(
            QueueUrl=deployment.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            try:
                letter = json.loads(message["Body"])
            except ValueError:
                letter = None
            if not isinstance(letter, dict) or "reason" not in letter:  # moved by SQS's redrive
                letter = {
                    "reason": "(redrive)",
                    "originalBody": message["Body"],
                    "messageId": message["MessageId"],
                }
            letter["_sent"] = int(message["Attributes"]["SentTimestamp"]) / 1000
            found.dead_letters.setdefault(str(letter.get("messageId")), []).append(letter)
            sqs.delete_message(QueueUrl=deployment.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    visible, found.in_flight = _queue_depth(world, deployment.queue_url)
    if visible:
        for message in sqs.receive_message(
            QueueUrl=deployment.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", []):
            found.on_source.add(message["MessageId"])
    return found


def _download_calls(world: E2EWorld) -> Counter[str]:
    return Counter(
        str(entry["reference_id"])
        for entry in world.emulator.requests_log()
        if entry["stage"] == "download" and entry["reference_id"]
    )


def _judge(world: E2EWorld, case: Case, found: Landings, calls: Counter[str]) -> tuple[bool, str, str, str]:
    """(ok, actual place, why, time) for one message."""
    places, landed = [], None
    if case.ref is not None and case.ref in found.objects:
        places.append("S3")
        landed = found.objects[case.ref][1]
    for letter in found.dead_letters.get(case.message_id, []):
        places.append(f"DLQ {letter['reason']}")
        landed = letter["_sent"]
    if case.message_id in found.on_source:
        places.append("source queue")
    if not places and found.in_flight:
        places.append("in flight?")
    actual = " + ".join(places) or "nowhere"
    took = "-" if landed is None else f"{max(landed - case.sent_at, 0.0):.1f}s"
    problems = []
    allowed = [[case.expect]] + ([["in flight?"]] if case.may_be_in_flight else [])
    if places not in allowed:
        problems.append(f"expected exactly {case.expect}")
    if places == ["S3"] and case.ref is not None:
        info = world.emulator.result_info(case.ref)
        if info is None or found.objects[case.ref][0] != info.sha256:
            problems.append("sha256 differs from the emulator's")
    for letter in found.dead_letters.get(case.message_id, []):
        if letter.get("originalBody") != case.body:
            problems.append("dead letter lost the original body")
    if case.within is not None and landed is not None and landed - case.sent_at >= case.within:
        problems.append(f"landed after {case.within:.0f}s: the visibility backoff did not take effect")
    if case.calls is not None and case.ref is not None and calls[case.ref] != case.calls:
        problems.append(f"{calls[case.ref]} Download API calls, expected {case.calls}")
    return not problems, actual, "; ".join(problems) or "ok", took


def _run(world: E2EWorld, runtime: str, phase: str, cases: list[Case], max_seconds: float) -> list[str]:
    deployment = world.deployments[runtime]
    _send(world, deployment, cases)
    waited = _drain(world, deployment, max_seconds)
    found = _landings(world, deployment)
    calls = _download_calls(world)
    header = ("", "MESSAGE", "EXPECTED", "ACTUAL", "ATTEMPTS", "TIME", "CHECK")
    rows, failures = [], []
    for case in cases:
        ok, actual, why, took = _judge(world, case, found, calls)
        attempts = str(calls[case.ref]) if case.ref else "-"
        rows.append(("✓" if ok else "✗", case.label, case.expect, actual, attempts, took, why))
        if not ok:
            failures.append(f"{case.label}: {actual} ({why})")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"{runtime} / {phase}: drained in {waited:.1f}s (attempts = TAO Download API calls)"]
    lines += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    if found.in_flight:
        lines.append(f"  still in flight on the source queue: {found.in_flight}")
    TABLES.append("\n".join(lines))
    print("\n" + TABLES[-1])
    return failures


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_message_ends_in_exactly_one_right_place(world: E2EWorld, runtime: str) -> None:
    cases = _main_cases(world, runtime[:3])
    failures = _run(world, runtime, "scenario", cases, max_seconds=60)
    assert not failures, failures
    # The invocations ran where this runtime says: MiniStack's Python worker, or its Runtime API
    # serving the bootstrap that execs awslambdaric.
    spawned = {
        "executor": "Lambda worker spawned for tao-e2e-executor (python3.12",
        "awslambdaric": "Lambda provided-runtime environment spawned for tao-e2e-awslambdaric",
    }
    assert spawned[runtime] in world.stack.log_path.read_text(errors="replace")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_stalled_s3_call_comes_back_and_its_neighbours_are_not_repeated(
    world: E2EWorld, runtime: str
) -> None:
    deployment = world.deployments[runtime]
    cases = _stall_cases(world, deployment, runtime[:3])
    bound = world.settings.visibility_timeout + 3 * world.settings.timeout
    failures = _run(world, runtime, "stalled S3 call", cases, max_seconds=bound)
    assert not failures, failures


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_nothing_left_loopback_and_the_foreign_host_was_never_contacted(world: E2EWorld) -> None:
    """Every connect and lookup of MiniStack, its workers and awslambdaric, over the whole run."""
    lines = world.stack.audit_log.read_text().splitlines()
    connects = [line.split()[2:4] for line in lines if line.split()[1] == "connect"]
    lookups = {line.split()[2] for line in lines if line.split()[1] == "lookup"}
    assert connects, "the audit hook recorded nothing: it is not loaded"
    assert all(_is_loopback(host) for host, _ in connects), sorted({host for host, _ in connects})
    assert all(_is_loopback(host) or host == "localhost" for host in lookups), sorted(lookups)
    assert "127.0.0.2" not in {host for host, _ in connects}, "the foreign signed-URL host was contacted"
