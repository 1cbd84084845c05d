import json

import pytest

from tao_results.errors import PermanentError
from tao_results.message import is_valid_reference_id, parse_request


@pytest.mark.parametrize("reference_id", ["a", "12345", "A.b-c_d", "x" * 128, "0abc"])
def test_valid_reference_ids(reference_id):
    assert parse_request(json.dumps({"referenceId": reference_id, "other": 1})).reference_id == reference_id


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[]",
        "null",
        '"ref"',
        "{}",
        '{"referenceId": -1}',
        '{"referenceId": 1.5}',
        '{"referenceId": true}',
        '{"referenceId": null}',
        '{"referenceId": ""}',
        '{"referenceId": "../etc/passwd"}',
        '{"referenceId": "a/b"}',
        '{"referenceId": "a%2Fb"}',
        '{"referenceId": "ref\\n"}',
        '{"referenceId": "ref\\u0000"}',
        '{"referenceId": ".hidden"}',
        '{"referenceId": "-dash"}',
        json.dumps({"referenceId": "x" * 129}),
        '{"referenceId": "réf"}',
        "[" * 100000,
    ],
)
def test_malformed_messages_are_permanent(body):
    with pytest.raises(PermanentError) as caught:
        parse_request(body)
    assert caught.value.reason == "malformed_message"


def test_non_text_body_is_malformed():
    with pytest.raises(PermanentError):
        parse_request(None)


def test_pattern_is_anchored_at_both_ends():
    assert not is_valid_reference_id("abc\n")
    assert not is_valid_reference_id("abc def")
