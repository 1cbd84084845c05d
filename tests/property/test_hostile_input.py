"""Hostile input, property-based: SQS bodies and attributes, and Download API / storage answers.

For every generated batch (bad records plus one known-good neighbour) the batch never crashes,
no request goes outside the allow-list (pytest-socket allows 127.0.0.1/::1 only; the process's
connection attempts and name lookups are audited; a listener on 127.0.0.2 must accept nothing),
every bad record is dead-lettered with the reason the contract gives it (or, for a transient
answer, reported for retry), no object is written for it, and the neighbour still lands.

One moto server, one emulator and one cold start serve the whole module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tao_emulator import Fault, TaoEmulator
from tao_results_cli.local.context import FunctionSettings, new_context
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.support.aws_stack import MotoServer, create_resources
from tests.support.connection_audit import ConnectionAudit, audited_connections, silent_listener
from tests.support.conservation import drain
from tests.support.harness import Harness

# The contract's referenceId (README / message.py docstring), restated independently.
VALID_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PROPERTY_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
NEIGHBOUR_SIZE = 2048


@dataclass
class World:
    h: Harness
    tao: TaoEmulator
    audit: ConnectionAudit
    listener_port: int
    listener_accepted: list[tuple[str, int]]


@pytest.fixture(scope="module")
def world(moto_server: MotoServer) -> Iterator[World]:
    moto_server.reset()
    saved = dict(os.environ)
    resources = create_resources(
        moto_server.endpoint_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, name="hostile"
    )
    with (
        TaoEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as tao,
        silent_listener("127.0.0.2") as (port, accepted),
    ):
        h = Harness(resources, tao, {"MAX_ATTEMPTS_PER_INVOCATION": "1"})
        with audited_connections() as audit:
            yield World(h, tao, audit, port, accepted)
    os.environ.clear()
    os.environ.update(saved)


# ---- running one batch ---------------------------------------------------------------------------


def neighbour(world: World) -> tuple[str, str]:
    reference = f"good-{uuid.uuid4().hex[:12]}"
    info = world.tao.add_result(reference, size=NEIGHBOUR_SIZE, filename="n.csv")
    return reference, info.sha256


def settle(world: World, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Delete the batch's messages from the source queue, and drain the DLQ: next example starts clean."""
    h = world.h
    for record in event["Records"]:
        h.sqs.delete_message(QueueUrl=h.resources.queue_url, ReceiptHandle=record["receiptHandle"])
    letters = []
    for message in drain(h.sqs, h.resources.dead_letter_queue_url):
        letter = json.loads(message["Body"])
        letter["_attributes"] = {
            name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()
        }
        letters.append(letter)
    return letters


def invoke(world: World, event: dict[str, Any]) -> set[str]:
    context = new_context(FunctionSettings(timeout_seconds=60), "eu-west-1", "123456789012", "hostile")
    answer = world.h.app.lambda_handler(event, context)
    assert isinstance(answer, dict) and isinstance(answer.get("batchItemFailures"), list), answer
    return {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}


def assert_neighbour_landed(world: World, reference: str, sha256: str) -> None:
    key = f"tao-results/{reference}/n.csv"
    assert hashlib.sha256(world.h.object_bytes(key)).hexdigest() == sha256


def assert_nobody_got_in(world: World) -> None:
    assert world.audit.non_loopback_connects() == []
    assert world.audit.foreign_lookups() == []
    assert world.listener_accepted == []
    assert world.h.open_uploads() == []


def assert_only_neighbours_written(world: World) -> None:
    assert all(key.startswith("tao-results/good-") for key in world.h.keys())  # noqa: SIM118 - Harness.keys()


# ---- SQS bodies and attributes -------------------------------------------------------------------

# What SQS accepts in a body or attribute value: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000+.
SQS_TEXT = st.characters(
    codec="utf-8",
    exclude_categories=["Cs"],
    exclude_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c",
).filter(lambda ch: ch in "\t\n\r" or ch >= " ")
TRICKY_REFERENCES = [
    "../etc/passwd", "..", ".", "a/../../b", "a%2Fb", "%2e%2e%2f", "a\\b", "ref?x=1", "ref#frag",
    "http://169.254.169.254/latest", "//evil.example.com/x", "ref id", " ref", "ref\n", "réf", "参照",
    "-leading-dash", "_leading", "a" * 129, "", "ref/", "ref\u202e", "ref\ufeff", "\uff52\uff45\uff46",
]  # fmt: skip
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(SQS_TEXT, max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(SQS_TEXT, max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
HOSTILE_BODIES = st.one_of(
    st.text(SQS_TEXT, min_size=1, max_size=200),
    st.builds(lambda ref: json.dumps({"referenceId": ref}), st.sampled_from(TRICKY_REFERENCES)),
    st.text(SQS_TEXT, max_size=140).map(lambda ref: json.dumps({"referenceId": ref}, ensure_ascii=False)),
    st.builds(lambda value: json.dumps({"referenceId": value}), JSON_VALUES),
    st.builds(json.dumps, JSON_VALUES),
    st.builds(lambda ref, depth: "[" * depth + json.dumps({"referenceId": ref}) + "]" * depth,
              st.sampled_from(["ok-looking-ref"]), st.integers(1, 3000)),
)  # fmt: skip
ATTRIBUTE_NAMES = st.from_regex(r"\A[A-Za-z0-9_\-][A-Za-z0-9_\-]{0,30}\Z").filter(
    lambda name: not name.lower().startswith(("aws.", "amazon."))
)
MESSAGE_ATTRIBUTES = st.dictionaries(
    ATTRIBUTE_NAMES,
    st.text(SQS_TEXT, min_size=1, max_size=300).map(lambda text: {"DataType": "String", "StringValue": text}),
    max_size=3,
)


def expected_reason(body: str) -> str:
    """The contract: a body that is a request for a valid referenceId is a real lookup (unknown here)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return "malformed_message"
    reference = payload.get("referenceId") if isinstance(payload, dict) else None
    if isinstance(reference, int) and not isinstance(reference, bool) and reference >= 0:
        reference = str(reference)  # a non-negative JSON integer is taken as its decimal digits
    if isinstance(reference, str) and VALID_REFERENCE.fullmatch(reference):
        return "not_found"
    return "malformed_message"


@PROPERTY_SETTINGS
@given(batch=st.lists(st.tuples(HOSTILE_BODIES, MESSAGE_ATTRIBUTES), min_size=1, max_size=4))
@example(batch=[("x" * 200_000, {})])  # near SQS's size limit
@example(batch=[('{"referenceId": "ok", "referenceId": "../x"}', {}), ("null", {})])
def test_hostile_sqs_messages_are_dead_lettered_and_spare_the_neighbour(
    world: World, batch: list[tuple[str, dict[str, Any]]]
) -> None:
    h = world.h
    reference, sha256 = neighbour(world)
    ids = [
        h.sqs.send_message(QueueUrl=h.resources.queue_url, MessageBody=body, MessageAttributes=attributes)[
            "MessageId"
        ]
        for body, attributes in batch
    ]
    h.send_refs(reference)
    event = h.receive_event(len(ids) + 1)
    try:
        failed = invoke(world, event)
    finally:
        letters = settle(world, event)

    assert failed == set()
    assert_neighbour_landed(world, reference, sha256)
    by_id = {letter["messageId"]: letter for letter in letters}
    assert set(by_id) == set(ids), "every bad message dead-lettered once, the neighbour not at all"
    for message_id, (body, _) in zip(ids, batch, strict=True):
        letter = by_id[message_id]
        assert letter["reason"] == expected_reason(body), (body[:200], letter["detail"])
        assert letter["_attributes"]["reason"] == letter["reason"]
        assert letter["originalBody"] == body
        assert letter["detail"]
    assert_only_neighbours_written(world)
    assert_nobody_got_in(world)


# Records Lambda would never deliver (SQS refuses these bodies), handed to the handler directly.
IMPOSSIBLE_BODIES = st.one_of(
    st.none(),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.text(max_size=50).map(lambda text: text + "\x00"),
    st.builds(
        lambda ref: json.dumps({"referenceId": ref}), st.sampled_from(["a\x00b", "\x00", "ref\x00../x"])
    ),
)
SYSTEM_ATTRIBUTES = st.one_of(
    st.none(),
    st.just("not a mapping"),
    st.dictionaries(
        st.sampled_from(["ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"]),
        st.one_of(st.text(max_size=12), st.integers(), st.none(), st.just("-1"), st.just("9" * 40)),
    ),
)


@PROPERTY_SETTINGS
@given(bodies=st.lists(IMPOSSIBLE_BODIES, min_size=1, max_size=3), attributes=SYSTEM_ATTRIBUTES)
def test_records_of_impossible_shape_never_crash_the_batch(
    world: World, bodies: list[Any], attributes: Any
) -> None:
    h = world.h
    reference, sha256 = neighbour(world)
    h.send_refs(reference)
    event = h.receive_event(1)
    template = event["Records"][0]
    bad_ids = []
    for body in bodies:
        record = {**template, "messageId": str(uuid.uuid4()), "body": body, "attributes": attributes}
        event["Records"].insert(0, record)
        bad_ids.append(record["messageId"])
    try:
        failed = invoke(world, event)
    finally:
        letters = settle(world, {"Records": [template]})

    assert_neighbour_landed(world, reference, sha256)
    assert template["messageId"] not in failed
    dead = {letter["messageId"]: letter for letter in letters}
    for message_id in bad_ids:
        # Dead-lettered as malformed, or -- if even the DLQ refuses it (SQS rejects NUL) -- kept for retry.
        if message_id in dead:
            assert dead[message_id]["reason"] == "malformed_message"
        else:
            assert message_id in failed
    assert_only_neighbours_written(world)
    assert_nobody_got_in(world)


# ---- Download API and storage answers ------------------------------------------------------------


def hostile_hosts(listener_port: int) -> list[str]:
    return [
        f"127.0.0.2:{listener_port}", "169.254.169.254", "169.254.170.2", "10.0.0.1", "192.168.1.1",
        "172.16.0.1", "[::ffff:127.0.0.1]", "[::1]", "[fd00::1]", "0.0.0.0", "2130706433", "0x7f.0.0.1",
        "127.1", "8.8.8.8", "localhost", "evil.example.com", "127.0.0.1.nip.io", "user:pw@127.0.0.1",
        "127.0.0.1@evil.example.com", "127.0.0.1%2F@evil.example.com", "s3.amazonaws.com.evil.example.com",
        "metadata.google.internal",
    ]  # fmt: skip


@st.composite
def hostile_urls(draw: st.DrawFn, listener_port: int, mangled: bool = True) -> str:
    scheme = draw(st.sampled_from(["http", "https", "ftp", "file", "gopher", "javascript", "data", "HTTP"]))
    host = draw(st.sampled_from(hostile_hosts(listener_port)))
    path = draw(
        st.sampled_from(["/storage/results/x/result.csv?X-Amz-Signature=abc", "/", "/latest/meta-data/"])
    )
    url = f"{scheme}://{host}{path}"
    variants = [url, f" {url}", f"{url}\r\nX: y", url.upper()]
    if mangled:  # as a signed URL; as a Location header ":/" would be a relative, same-host redirect
        variants.append(url.replace("://", ":/"))
    return draw(st.sampled_from(variants))


def answers(listener_port: int) -> st.SearchStrategy[tuple[Fault, str | None]]:
    """A faulty answer for one reference, and the dead-letter reason expected (None: retried)."""
    json_type = st.sampled_from(["application/json", "text/html", "text/plain", "application/xml", ""])
    bad_200_bodies = st.sampled_from(
        [
            "{}", '{"signedUrl": null}', '{"signedUrl": 42}', '{"signedUrl": ""}', '{"signedUrl": ["x"]}',
            '["signedUrl"]', "null", "<html><body>Service Unavailable</body></html>", "signedUrl=x", "",
            '{"signedurl": "http://127.0.0.1/x"}', "\xff\xfe{", '{"signedUrl": {"url": "x"}}',
            '{"signedUrl": "not a url"}', '{"signedUrl": "/storage/results/x/result.csv"}',
        ]
    )  # fmt: skip
    permanent_pages = {
        400: "bad_request",
        403: "insufficient_scope",
        404: "not_found",
        418: "unexpected_status",
    }
    html = "<!DOCTYPE html><html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
    return st.one_of(
        st.builds(
            lambda url: (Fault("download", "signed_url", url=url), "signed_url_rejected"),
            hostile_urls(listener_port),
        ),
        st.builds(
            lambda body, kind: (
                Fault("download", "status", status=200, body=body, content_type=kind or None),
                "signed_url_rejected" if re.match(r'{"signedUrl": "[^"]', body) else "invalid_api_response",
            ),
            bad_200_bodies,
            json_type,
        ),
        st.builds(
            lambda status, kind: (
                Fault(
                    "download", "status", status=status, body=html.format(status), content_type=kind or None
                ),
                permanent_pages[status],
            ),
            st.sampled_from(sorted(permanent_pages)),
            json_type,
        ),
        st.builds(
            lambda status: (Fault("download", "status", status=status, body=html.format(status)), None),
            st.sampled_from([401, 429, 500, 502, 503, 504]),
        ),
        st.builds(
            lambda url, status: (
                Fault("storage", "redirect", status=status, location=url),
                "signed_url_rejected",
            ),
            hostile_urls(listener_port, mangled=False),
            st.sampled_from([301, 302, 303, 307, 308]),
        ),
    )


@PROPERTY_SETTINGS
@given(data=st.data())
def test_hostile_api_answers_are_dead_lettered_without_contacting_anyone(
    world: World, data: st.DataObject
) -> None:
    h, tao = world.h, world.tao
    chosen = data.draw(st.lists(answers(world.listener_port), min_size=1, max_size=3), label="answers")
    bad_refs = []
    for fault, _ in chosen:
        ref = f"bad-{uuid.uuid4().hex[:12]}"
        tao.add_result(ref, size=100)
        fault.reference_id, fault.times = ref, None
        tao.add_fault(fault)
        bad_refs.append(ref)
    reference, sha256 = neighbour(world)
    ids = h.send_refs(*bad_refs, reference)
    event = h.receive_event(len(ids))
    try:
        failed = invoke(world, event)
    finally:
        tao.clear_faults()
        letters = settle(world, event)

    assert_neighbour_landed(world, reference, sha256)
    by_ref = {letter["referenceId"]: letter for letter in letters}
    assert len(by_ref) == len(letters), "a record was dead-lettered twice"
    for (fault, reason), ref, message_id in zip(chosen, bad_refs, ids[:-1], strict=True):
        if reason is None:
            assert message_id in failed and ref not in by_ref, (fault, by_ref.get(ref))
        else:
            assert ref in by_ref, (fault, "not dead-lettered", message_id in failed)
            assert by_ref[ref]["reason"] == reason, (fault, by_ref[ref]["detail"])
            assert message_id not in failed
    assert ids[-1] not in failed
    assert_only_neighbours_written(world)
    assert_nobody_got_in(world)
