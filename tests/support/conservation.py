"""Push many messages through the local event source mapping under random faults, then account for each.

Used by the fast-tier fault suite (a few dozen messages) and the soak (a thousand and more). The
real handler runs in this process behind :class:`LocalEventSourceMapping` (several pollers, SQS's
own visibility timeout and redrive policy), against moto's server (S3 through
:class:`FaultyS3Proxy`, which fails some part uploads) and a :class:`TaoEmulator` that injects its
random fault mix into TAO and storage calls.

Besides the good requests, the run plants messages whose fate is known in advance:

* ``malformed``  bodies that are not requests       → DLQ, reason ``malformed_message``
* ``unknown``    referenceIds TAO does not know      → DLQ, reason ``not_found``
* ``forbidden``  TAO answers a signed URL off the allow-list (metadata service, private and
                 other loopback addresses, other schemes) → DLQ, ``signed_url_rejected``
* ``poisoned``   TAO answers 503 forever            → on its last allowed delivery the function
                 dead-letters it, reason ``retries_exhausted`` (before issue 9 §4: SQS's raw redrive)

Afterwards :func:`account` finds every message in exactly one place: S3 (bytes hashed and compared
with the emulator's sha256), the DLQ (with its reason), or still on the source queue.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from tao_emulator import RANDOM_FAULT_KINDS, Fault, TaoEmulator
from tao_results_cli.local.context import FunctionSettings
from tao_results_cli.local.runner import LocalEventSourceMapping, RunnerConfig
from tao_results_cli.local.stats import RunStats
from tests.support.aws_stack import StackResources, aws_client, create_resources, function_environment
from tests.support.faulty_s3_proxy import FaultyS3Proxy
from tests.support.harness import TEST_OVERRIDES, load_handler_module

MiB = 1024 * 1024
RESULTS_PREFIX = "tao-results/"
RAW_REDRIVE = "max_receive_count_exceeded"

MALFORMED_BODIES = (
    "not json at all",
    '{"referenceId": "../../etc/passwd"}',
    '{"referenceId": -12345}',
    '["referenceId", "ref"]',
    '{"referenceId": "a%2Fb"}',
    '{"ref": "missing-key"}',
)
FORBIDDEN_URLS = (
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.1/{signed_path}",
    "http://127.0.0.2/{signed_path}",
    "http://[::ffff:127.0.0.1]/{signed_path}",
    "ftp://127.0.0.1/{signed_path}",
    "http://user:pw@127.0.0.1/{signed_path}",
)
EXPECTED_REASON = {
    "malformed": "malformed_message",
    "unknown": "not_found",
    "forbidden": "signed_url_rejected",
    "poisoned": "retries_exhausted",
}


@dataclass(frozen=True)
class Plan:
    good: int = 60
    multipart_every: int = 12  # every Nth good result is larger than one part
    small_sizes: tuple[int, int] = (0, 256 * 1024)
    multipart_sizes: tuple[int, int] = (6 * MiB, 14 * MiB)
    malformed: int = 3
    unknown: int = 2
    forbidden: int = 3
    poisoned: int = 2
    fault_rate: float = 0.3
    seed: int = 20240601
    part_failure_rate: float = 0.3
    pollers: int = 3
    batch_size: int = 10
    visibility_timeout: int = 30
    max_receive_count: int = 3
    function_timeout: float = 30.0
    max_seconds: float = 240.0
    log_level: str = "INFO"
    environment: tuple[tuple[str, str], ...] = ()  # extra function environment (e.g. tracing)

    @property
    def total(self) -> int:
        return self.good + self.malformed + self.unknown + self.forbidden + self.poisoned


@dataclass
class Sent:
    message_id: str
    kind: str  # good | malformed | unknown | forbidden | poisoned
    body: str
    reference_id: str | None = None
    sha256: str | None = None
    size: int = 0


@dataclass
class Accounting:
    """Where every message ended, and everything that should not exist."""

    places: dict[str, list[str]]  # messageId → ["s3" | "dlq:<reason>" | "queue"]
    corrupt: list[str]  # keys whose bytes differ from the emulator's
    stray_objects: list[str]  # keys that belong to no successful message
    stray_letters: list[dict[str, Any]]  # dead letters that belong to no message we sent
    open_uploads: list[dict[str, Any]]
    queue_left: tuple[int, int]  # (visible, in flight) on the source queue
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # as received from the DLQ

    def by_place(self, sent: dict[str, Sent]) -> Counter[tuple[str, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        for message_id, places in self.places.items():
            for place in places or ["NOWHERE"]:
                counts[(sent[message_id].kind, place)] += 1
        return counts

    def unplaced(self) -> list[str]:
        """Messages not in exactly one place. Copies of one dead letter (same reason) are one place:
        SQS delivers at least once, so a message received by two pollers at once (moto's
        ReceiveMessage takes no lock, real SQS may do it rarely) is dead-lettered twice, the
        duplicate the README's "Integrations" section announces; :meth:`duplicates` lists them."""
        return [message_id for message_id, places in self.places.items() if len(set(places)) != 1]

    def duplicates(self) -> dict[str, list[str]]:
        """Messages dead-lettered more than once, each time for the same reason."""
        return {m: places for m, places in self.places.items() if len(places) > 1 and len(set(places)) == 1}


@dataclass
class RunResult:
    plan: Plan
    resources: StackResources
    sent: dict[str, Sent]
    stats: RunStats
    stop_reason: str | None
    wall_seconds: float
    emulator_stats: dict[str, Any]
    proxy_counts: dict[str, int]
    accounting: Accounting
    environment: dict[str, str] = field(default_factory=dict)

    # ---- figures -------------------------------------------------------------------------------

    @property
    def tao_calls(self) -> int:
        stats = self.emulator_stats
        return int(
            stats["token_requests"]
            + sum(stats["download_calls"].values())
            + sum(stats["storage_gets"].values())
        )

    @property
    def random_faults(self) -> dict[str, int]:
        return dict(self.emulator_stats["random_faults_injected"])

    @property
    def fault_fraction(self) -> float:
        return sum(self.random_faults.values()) / max(1, self.tao_calls)

    def table(self) -> str:
        plan, accounting, proxy = self.plan, self.accounting, self.proxy_counts
        counts = accounting.by_place(self.sent)
        kinds = Counter(item.kind for item in self.sent.values())
        faults = sum(self.random_faults.values())
        by_kind = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        lines = [
            f"messages sent          {len(self.sent)} ({by_kind})",
            f"bytes of good results  {sum(item.size for item in self.sent.values()) / MiB:.1f} MiB",
            f"pollers x batch        {plan.pollers} x {plan.batch_size}, visibility"
            f" {plan.visibility_timeout}s, maxReceiveCount {plan.max_receive_count},"
            f" function timeout {plan.function_timeout:.0f}s",
            f"invocations            {self.stats.invocations}"
            f" ({self.stats.handler_errors} failed as a whole)",
            f"TAO/storage calls      {self.tao_calls}, random faults {faults} ({self.fault_fraction:.1%})",
        ]
        lines += [f"  fault {name:<22} {count}" for name, count in sorted(self.random_faults.items())]
        lines.append(
            f"S3 UploadPart calls    {proxy.get('upload_parts', 0)},"
            f" injected 500 {proxy.get('injected_500', 0)}, 503 {proxy.get('injected_503', 0)}"
        )
        lines.append("outcomes by place")
        lines += [f"  {kind:<10} {place:<40} {count}" for (kind, place), count in sorted(counts.items())]
        lines += [
            f"not in exactly one place {len(accounting.unplaced())}, duplicate dead letters"
            f" {len(accounting.duplicates())}, corrupt {len(accounting.corrupt)},"
            f" stray objects {len(accounting.stray_objects)}, stray letters {len(accounting.stray_letters)}",
            f"open multipart uploads {len(accounting.open_uploads)}, left on queue {accounting.queue_left}",
            f"stop reason            {self.stop_reason}, wall time {self.wall_seconds:.1f}s",
        ]
        return "\n".join(lines)


# ---- running -------------------------------------------------------------------------------------


@contextmanager
def process_environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` holds ``values`` for the block (boto3 clients are created lazily from it)."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def plant(plan: Plan, tao: TaoEmulator) -> list[tuple[str, str, str | None, str | None, int]]:
    """Results and faults in the emulator; returns (kind, body, referenceId, sha256, size) to send."""
    rng = random.Random(plan.seed)
    items: list[tuple[str, str, str | None, str | None, int]] = []
    for index in range(plan.good):
        reference = f"good-{index:05d}"
        low, high = plan.multipart_sizes if index % plan.multipart_every == 0 else plan.small_sizes
        info = tao.add_result(
            reference, size=rng.randint(low, high), filename=f"import-{index}.csv", seed=index % 7
        )
        items.append(("good", json.dumps({"referenceId": reference}), reference, info.sha256, info.size))
    for index in range(plan.malformed):
        items.append(("malformed", MALFORMED_BODIES[index % len(MALFORMED_BODIES)], None, None, 0))
    for index in range(plan.unknown):
        reference = f"unknown-{index:03d}"
        items.append(("unknown", json.dumps({"referenceId": reference}), reference, None, 0))
    for index in range(plan.forbidden):
        reference = f"forbidden-{index:03d}"
        tao.add_result(reference, size=100)
        url = FORBIDDEN_URLS[index % len(FORBIDDEN_URLS)]
        tao.add_fault(Fault("download", "signed_url", reference_id=reference, times=None, url=url))
        items.append(("forbidden", json.dumps({"referenceId": reference}), reference, None, 0))
    for index in range(plan.poisoned):
        reference = f"poisoned-{index:03d}"
        tao.add_result(reference, size=100)
        tao.add_fault(Fault("download", "status", reference_id=reference, times=None, status=503))
        items.append(("poisoned", json.dumps({"referenceId": reference}), reference, None, 0))
    rng.shuffle(items)
    return items


def enqueue(
    sqs: Any, queue_url: str, items: list[tuple[str, str, str | None, str | None, int]]
) -> dict[str, Sent]:
    sent: dict[str, Sent] = {}
    for start in range(0, len(items), 10):
        chunk = items[start : start + 10]
        answer = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(index), "MessageBody": item[1]} for index, item in enumerate(chunk)],
        )
        assert not answer.get("Failed"), answer.get("Failed")
        for done in answer["Successful"]:
            kind, body, reference, sha256, size = chunk[int(done["Id"])]
            sent[done["MessageId"]] = Sent(done["MessageId"], kind, body, reference, sha256, size)
    return sent


def function_overrides(plan: Plan, proxy_url: str) -> dict[str, str]:
    return {
        **TEST_OVERRIDES,
        "AWS_ENDPOINT_URL_S3": proxy_url,
        "RESULTS_PREFIX": RESULTS_PREFIX,
        "HTTP_CONNECT_TIMEOUT_SECONDS": "1",
        "HTTP_READ_TIMEOUT_SECONDS": "2",
        "DEADLINE_MARGIN_SECONDS": "8",
        "RETRY_BACKOFF_BASE_SECONDS": "1",
        "RETRY_BACKOFF_MAX_SECONDS": "3",
        "POWERTOOLS_LOG_LEVEL": plan.log_level,
        **dict(plan.environment),
    }


def run_conservation(
    plan: Plan,
    endpoint_url: str,
    tao: TaoEmulator,
    *,
    client_id: str,
    client_secret: str,
    name: str,
    observe: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> RunResult:
    """Plant, enqueue, run the local event source mapping until the queue is empty, account.

    ``observe`` wraps the function's part only (cold start and polling), not the test's own setup
    and accounting: a test that captures logs or connections sees what the function did.
    """
    resources = create_resources(
        endpoint_url,
        client_id=client_id,
        client_secret=client_secret,
        name=name,
        max_receive_count=plan.max_receive_count,
        visibility_timeout=plan.visibility_timeout,
    )
    sqs = aws_client("sqs", endpoint_url)
    sent = enqueue(sqs, resources.queue_url, plant(plan, tao))
    # Faults only once everything is planted, so the seeded sequence covers the run alone.
    tao.configure(random_fault_rate=plan.fault_rate, random_fault_seed=plan.seed, slow_delay_ms=2500)
    with FaultyS3Proxy(endpoint_url, part_failure_rate=plan.part_failure_rate, seed=plan.seed) as proxy:
        environment = function_environment(
            resources, tao.base_url, **function_overrides(plan, proxy.endpoint_url)
        )
        with process_environment(environment), observe():
            app = load_handler_module(environment)
            app.logger.setLevel(plan.log_level)  # a logger configured by an earlier load keeps its level
            config = RunnerConfig(
                queue_url=resources.queue_url,
                batch_size=plan.batch_size,
                concurrency=plan.pollers,
                wait_time_seconds=1,
                function=FunctionSettings(timeout_seconds=plan.function_timeout),
                until_empty=True,
                settle_seconds=1.5,
                max_seconds=plan.max_seconds,
                check_interval=0.2,
                set_lambda_environment=False,
            )
            mapping = LocalEventSourceMapping(config, app.lambda_handler, sqs=sqs)
            started = time.monotonic()
            stats = mapping.run()
            wall = time.monotonic() - started
        tao.configure(random_fault_rate=0.0)
        proxy_counts = proxy.counts()
    accounting = account(resources, sent)
    return RunResult(
        plan=plan,
        resources=resources,
        sent=sent,
        stats=stats,
        stop_reason=mapping.stop_reason,
        wall_seconds=wall,
        emulator_stats=tao.stats(),
        proxy_counts=proxy_counts,
        accounting=accounting,
        environment=environment,
    )


# ---- accounting ----------------------------------------------------------------------------------


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every visible message of a queue."""
    messages: list[dict[str, Any]] = []
    empty_answers = 0
    while empty_answers < 2:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=120,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        batch = answer.get("Messages", [])
        if not batch:
            empty_answers += 1
            continue
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


def dead_letter_identity(message: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    """(source messageId, reason, envelope or None for a raw redrive) of one DLQ message."""
    try:
        envelope = json.loads(message["Body"])
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and isinstance(envelope.get("reason"), str) and "originalBody" in envelope:
        return str(envelope.get("messageId")), envelope["reason"], envelope
    # SQS's redrive moves the message itself: same MessageId, body untouched.
    return message["MessageId"], RAW_REDRIVE, None


def list_keys(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def object_sha256(s3: Any, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        digest.update(chunk)
    return digest.hexdigest()


def open_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def account(resources: StackResources, sent: dict[str, Sent]) -> Accounting:
    s3 = aws_client("s3", resources.endpoint_url)
    sqs = aws_client("sqs", resources.endpoint_url)
    places: dict[str, list[str]] = {message_id: [] for message_id in sent}
    by_reference = {item.reference_id: item for item in sent.values() if item.reference_id}

    corrupt, stray_objects = [], []
    for key in list_keys(s3, resources.bucket):
        reference = key.removeprefix(RESULTS_PREFIX).split("/", 1)[0]
        item = by_reference.get(reference)
        if item is None or item.kind != "good" or not key.startswith(RESULTS_PREFIX):
            stray_objects.append(key)
            continue
        places[item.message_id].append("s3")
        if object_sha256(s3, resources.bucket, key) != item.sha256:
            corrupt.append(key)

    stray_letters = []
    dead_letters = drain(sqs, resources.dead_letter_queue_url)
    for message in dead_letters:
        message_id, reason, envelope = dead_letter_identity(message)
        if message_id not in places:
            stray_letters.append({"body": message["Body"][:200], "reason": reason})
            continue
        if envelope is not None and envelope.get("originalBody") != sent[message_id].body:
            stray_letters.append({"body": message["Body"][:200], "reason": "originalBody differs"})
        places[message_id].append(f"dlq:{reason}")

    attributes = sqs.get_queue_attributes(
        QueueUrl=resources.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    queue_left = (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )
    for message in drain(sqs, resources.queue_url):
        if message["MessageId"] in places:
            places[message["MessageId"]].append("queue")

    return Accounting(
        places=places,
        corrupt=corrupt,
        stray_objects=stray_objects,
        stray_letters=stray_letters,
        open_uploads=open_uploads(s3, resources.bucket),
        queue_left=queue_left,
        dead_letters=dead_letters,
    )


def assert_conserved(result: RunResult) -> None:
    """Every message in exactly one place, the right one for its kind; nothing left behind."""
    accounting, sent = result.accounting, result.sent
    assert accounting.unplaced() == [], {
        m: (sent[m].kind, accounting.places[m]) for m in accounting.unplaced()
    }
    assert accounting.corrupt == []
    assert accounting.stray_objects == []
    assert accounting.stray_letters == []
    assert accounting.open_uploads == []
    for message_id, [place, *_copies] in accounting.places.items():
        item = sent[message_id]
        if item.kind == "good":
            # A good request lands, or (if it failed on every delivery) is dead-lettered with a
            # reason, or (if its last invocation could not finish) SQS redrives it untouched.
            assert place in ("s3", "dlq:retries_exhausted", f"dlq:{RAW_REDRIVE}", "queue"), (
                item.reference_id,
                place,
            )
        else:
            assert place == f"dlq:{EXPECTED_REASON[item.kind]}", (item.kind, item.body, place)


def every_fault_kind() -> frozenset[str]:
    return frozenset(RANDOM_FAULT_KINDS)
