"""Issue 12's pure logic: the three envelopes, the request fields, and RESULTS_KEY_TEMPLATE."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tao_results.config import ConfigError, load_settings
from tao_results.key_template import DEFAULT_KEY_TEMPLATE, check_key_template, render_key
from tao_results.message import (
    ENVELOPE_DIRECT,
    ENVELOPE_EVENTBRIDGE,
    ENVELOPE_SNS,
    MAX_PASSTHROUGH_BYTES,
    MalformedRequest,
    Request,
    parse_request,
)

ROOT = Path(__file__).resolve().parents[2]
BASE_ENV = {
    "TAO_BASE_URL": "https://tenant.example.org",
    "TAO_CREDENTIALS_SECRET_ID": "secret",
    "RESULTS_BUCKET": "bucket",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
}


def sns(message: object) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "5f1c0a56-0000-4000-8000-000000000001",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:requests",
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": "2026-01-01T00:00:00.000Z",
        }
    )


def eventbridge(detail: object) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "1",
            "detail-type": "TAO Result Requested",
            "source": "school.rostering",
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": detail,
        }
    )


@pytest.mark.parametrize(
    ("body", "envelope"),
    [
        (json.dumps({"referenceId": "ref-1", "taskToken": "tok", "passthrough": {"t": 1}}), ENVELOPE_DIRECT),
        (sns({"referenceId": "ref-1", "taskToken": "tok", "passthrough": {"t": 1}}), ENVELOPE_SNS),
        (
            eventbridge({"referenceId": "ref-1", "taskToken": "tok", "passthrough": {"t": 1}}),
            ENVELOPE_EVENTBRIDGE,
        ),
    ],
)
def test_each_envelope_yields_the_same_request(body, envelope):
    assert parse_request(body) == Request("ref-1", "tok", {"t": 1}, envelope)


@pytest.mark.parametrize(("value", "expected"), [(12345, "12345"), (0, "0"), (10**127, "1" + "0" * 127)])
def test_a_non_negative_integer_reference_id_is_its_decimal_digits(value, expected):
    assert parse_request(json.dumps({"referenceId": value})).reference_id == expected


@pytest.mark.parametrize("value", [-1, 1.0, 12345.5, True, False, 10**128, [1], {"a": 1}])
def test_other_numbers_and_shapes_are_malformed(value):
    with pytest.raises(MalformedRequest):
        parse_request(json.dumps({"referenceId": value}))


@pytest.mark.parametrize(
    "body",
    [
        sns("not json"),
        sns({"no": "ref"}),
        sns(["list"]),
        json.dumps({"Type": "Notification", "Message": 42}),
        json.dumps({"Type": "Notification", "Message": {"referenceId": "ref"}}),  # not a string
        eventbridge("ref-1"),
        eventbridge(None),
        eventbridge({"referenceId": "../x"}),
        sns("[" * 100000),
        json.dumps({"referenceId": "ref", "taskToken": ""}),
        json.dumps({"referenceId": "ref", "taskToken": 5}),
        json.dumps({"referenceId": "ref", "taskToken": "t" * 2049}),
        json.dumps({"referenceId": "ref", "passthrough": "x" * MAX_PASSTHROUGH_BYTES}),
        '{"referenceId": "ref", "passthrough": NaN}',
    ],
)
def test_malformed_envelopes_and_fields(body):
    with pytest.raises(MalformedRequest) as caught:
        parse_request(body)
    assert caught.value.reason == "malformed_message"


def test_an_sns_notification_is_not_unwrapped_twice():
    with pytest.raises(MalformedRequest):
        parse_request(sns(sns({"referenceId": "ref"})))


def test_passthrough_of_exactly_four_kib_is_accepted_and_kept_verbatim():
    value = "x" * (MAX_PASSTHROUGH_BYTES - 2)  # the two quotes make 4096 bytes
    assert parse_request(json.dumps({"referenceId": "r", "passthrough": value})).passthrough == value
    nested = {"ids": [1, 2.5, None, True], "tenant": "Nörd"}
    assert parse_request(json.dumps({"referenceId": "r", "passthrough": nested})).passthrough == nested


def test_a_malformed_request_keeps_its_valid_task_token_and_passthrough():
    with pytest.raises(MalformedRequest) as caught:
        parse_request(json.dumps({"referenceId": "../x", "taskToken": "tok", "passthrough": [1]}))
    assert (caught.value.task_token, caught.value.passthrough) == ("tok", [1])
    assert caught.value.reference_id is None


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"referenceId": "ref-7", "passthrough": "x" * MAX_PASSTHROUGH_BYTES}),
        json.dumps({"referenceId": 7, "taskToken": ""}),
        eventbridge({"referenceId": "ref-7", "taskToken": 5}),
    ],
)
def test_a_malformed_request_with_a_valid_reference_id_still_names_it(body):
    """The dead letter of a request with a bad optional field says which import it was about."""
    with pytest.raises(MalformedRequest) as caught:
        parse_request(body)
    assert caught.value.reference_id in {"ref-7", "7"}


@pytest.mark.parametrize("path", sorted((ROOT / "events").glob("sqs-*.json")), ids=lambda p: p.name)
def test_sample_events_parse_or_are_meant_to_be_malformed(path):
    """Every sample record is either a request or (sqs-batch.json) a deliberate malformed one."""
    records = json.loads(path.read_text(encoding="utf-8"))["Records"]
    parsed = []
    for record in records:
        try:
            parsed.append(parse_request(record["body"]))
        except MalformedRequest:
            assert path.name == "sqs-batch.json"
    assert parsed


def test_the_envelope_samples_cover_each_kind():
    kinds = {
        parse_request(record["body"]).envelope
        for name in ("sqs-sns.json", "sqs-eventbridge.json", "sqs-step-functions.json")
        for record in json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))["Records"]
    }
    assert kinds == {ENVELOPE_SNS, ENVELOPE_EVENTBRIDGE, ENVELOPE_DIRECT}


# ---- RESULTS_KEY_TEMPLATE ------------------------------------------------------------------------

NEW_YEAR = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)


def test_default_template_is_todays_layout():
    assert render_key(DEFAULT_KEY_TEMPLATE, "tao-results/", "ref-1", "a.csv", NEW_YEAR) == (
        "tao-results/ref-1/a.csv"
    )


def test_partitioned_template_uses_the_utc_date():
    template = "{prefix}dt={year}-{month}-{day}/{referenceId}/{filename}"
    east = NEW_YEAR.astimezone(timezone(timedelta(hours=5)))
    west = datetime(2025, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))  # 2026-01-01T01:00Z
    assert render_key(template, "p/", "r", "f", east) == "p/dt=2026-01-01/r/f"
    assert render_key(template, "p/", "r", "f", west) == "p/dt=2026-01-01/r/f"
    assert render_key("{year}/{month}/{day}/{referenceId}", "", "r", "f", NEW_YEAR) == "2026/01/01/r"


def test_literal_braces_are_kept():
    assert render_key("{prefix}{{x}}/{referenceId}", "p/", "r", "f", NEW_YEAR) == "p/{x}/r"


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{prefix}{filename}", "{referenceId}"),
        ("{prefix}{referenceid}/{filename}", "unknown placeholder {referenceid}"),
        ("{prefix}{referenceId}/{hour}/{filename}", "unknown placeholder {hour}"),
        ("{prefix}{referenceId:>10}", "format spec"),
        ("{prefix}{referenceId!r}", "format spec"),
        ("{prefix}{referenceId", "not a valid template"),
        ("{prefix}{0}{referenceId}", "unknown placeholder {0}"),
        ("/{referenceId}", "relative"),
    ],
)
def test_bad_templates_fail_at_cold_start_naming_the_variable(template, complaint):
    with pytest.raises(ValueError, match=None) as caught:
        check_key_template(template)
    assert complaint in str(caught.value)
    with pytest.raises(ConfigError) as config_error:
        load_settings({**BASE_ENV, "RESULTS_KEY_TEMPLATE": template})
    assert str(config_error.value).startswith("RESULTS_KEY_TEMPLATE ")


# ---- the other settings ----------------------------------------------------------------------


def test_integration_settings_default_off():
    settings = load_settings(BASE_ENV)
    assert (settings.result_event_bus, settings.step_functions_callbacks) == ("", False)
    assert settings.results_key_template == DEFAULT_KEY_TEMPLATE


@pytest.mark.parametrize(
    "bus", ["tao-results", "arn:aws:events:eu-west-1:123456789012:event-bus/tao-results", "default"]
)
def test_event_bus_name_or_arn(bus):
    assert load_settings({**BASE_ENV, "RESULT_EVENT_BUS": bus}).result_event_bus == bus


@pytest.mark.parametrize("bus", ["has space", "arn:aws:sqs:eu-west-1:123456789012:queue", "x" * 257])
def test_a_bad_event_bus_fails_naming_the_variable(bus):
    with pytest.raises(ConfigError, match="RESULT_EVENT_BUS"):
        load_settings({**BASE_ENV, "RESULT_EVENT_BUS": bus})


def test_callbacks_switch():
    assert load_settings({**BASE_ENV, "STEP_FUNCTIONS_CALLBACKS": "true"}).step_functions_callbacks
    with pytest.raises(ConfigError, match="STEP_FUNCTIONS_CALLBACKS"):
        load_settings({**BASE_ENV, "STEP_FUNCTIONS_CALLBACKS": "maybe"})


def dead_letter_of(body: str, **extra: object) -> str:
    """A dead letter as dead_letters.dead_letter_body writes it (the fields the read-through needs)."""
    letter = {
        "referenceId": None,
        "reason": "not_found",
        "httpStatus": 404,
        "detail": "Reference ID not found.",
        "originalBody": body,
        "messageId": "m-1",
        "failedAt": "2026-11-29T12:00:00.000Z",
        "attempts": 1,
        **extra,
    }
    return json.dumps(letter)


def test_a_redriven_dead_letter_is_read_through_to_its_first_body():
    first = eventbridge({"referenceId": "ref-9", "taskToken": "tok", "passthrough": {"tenant": "a"}})
    request = parse_request(dead_letter_of(first, referenceId="ref-9"))
    assert (request.reference_id, request.task_token, request.passthrough) == (
        "ref-9",
        "tok",
        {"tenant": "a"},
    )
    assert (request.envelope, request.original_body) == ("eventbridge", first)
    # A letter of a letter (written before the read-through existed) gives the innermost body.
    assert parse_request(dead_letter_of(dead_letter_of(first))).original_body == first


def test_a_redriven_malformed_message_stays_malformed_with_its_first_body():
    with pytest.raises(MalformedRequest) as caught:
        parse_request(dead_letter_of("not json"))
    assert caught.value.original_body == "not json"


def test_a_truncated_dead_letter_is_read_by_its_top_level_reference_id():
    letter = dead_letter_of('{"referenceId": "ref-9", "passthrough": "xx', referenceId="ref-9")
    truncated = json.dumps({**json.loads(letter), "originalBodyTruncated": True})
    request = parse_request(truncated)
    assert (request.reference_id, request.original_body, request.envelope) == ("ref-9", None, "direct")
