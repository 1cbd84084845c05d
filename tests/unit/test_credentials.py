"""Secret shapes (SecretString or SecretBinary, BOM, whitespace, camelCase); what an unusable one says."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tao_results.auth import basic_authorization
from tao_results.credentials import ClientCredentials, credentials_from_secret, parse_credentials
from tao_results.errors import TransientError

VALUE = "Qx9-the-secret-VALUE"
EXPECTED = ClientCredentials("the-client", VALUE)


@pytest.mark.parametrize(
    "secret",
    [
        {"SecretString": json.dumps({"client_id": "the-client", "client_secret": VALUE})},
        {"SecretString": json.dumps({"clientId": "the-client", "clientSecret": VALUE})},
        {
            "SecretString": "\ufeff\n  "
            + json.dumps({"client_id": "the-client", "client_secret": VALUE})
            + " \r\n"
        },
        {"SecretBinary": json.dumps({"client_id": "the-client", "client_secret": VALUE}).encode()},
        {
            "SecretBinary": b"\xef\xbb\xbf \t"
            + json.dumps({"clientId": "the-client", "clientSecret": VALUE}).encode()
        },
        # Same value under both spellings is not ambiguous.
        {
            "SecretString": json.dumps(
                {"client_id": "the-client", "clientId": "the-client", "client_secret": VALUE}
            )
        },
        # Extra members (rotation metadata and the like) are ignored.
        {"SecretString": json.dumps({"client_id": "the-client", "client_secret": VALUE, "rotatedAt": 1})},
    ],
)
def test_accepted_shapes(secret: dict[str, Any]) -> None:
    assert credentials_from_secret(secret) == EXPECTED


def test_secret_string_wins_over_secret_binary() -> None:
    secret = {
        "SecretString": json.dumps({"client_id": "the-client", "client_secret": VALUE}),
        "SecretBinary": b"garbage",
    }
    assert credentials_from_secret(secret) == EXPECTED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"not json {VALUE}", "the secret is not JSON (Expecting value at line 1 column 1)"),
        (f'{{"client_id": "a", "client_secret": "{VALUE}"', "the secret is not JSON"),
        (f"{VALUE}".encode("utf-16"), "SecretBinary is not UTF-8 text"),
        (json.dumps([VALUE]), "the secret is a JSON array, not an object"),
        (json.dumps(VALUE), "the secret is a JSON string, not an object"),
        ("null", "the secret is a JSON null, not an object"),
        ("", "the secret is empty"),
        ("\ufeff \n", "the secret is empty"),
        (json.dumps({"client_id": VALUE}), "the secret has no client_secret (or clientSecret) member"),
        (json.dumps({"client_secret": VALUE}), "the secret has no client_id (or clientId) member"),
        (json.dumps({"client_id": "a", "client_secret": ""}), "client_secret is empty"),
        (json.dumps({"client_id": " ", "client_secret": VALUE}), "client_id is empty"),
        (
            json.dumps({"client_id": "a", "client_secret": [VALUE]}),
            "client_secret must be a JSON string, not array",
        ),
        (
            json.dumps({"client_id": "a", "clientSecret": True}),
            "clientSecret must be a JSON string, not boolean",
        ),
        (
            json.dumps({"client_id": 42, "client_secret": VALUE}),
            "client_id must be a JSON string, not number",
        ),
        (
            json.dumps({"client_id": "a", "client_secret": VALUE, "clientSecret": VALUE + "x"}),
            "the secret has both client_secret and clientSecret, with different values",
        ),
        ("[" * 100_000, "the secret is not JSON"),
    ],
)
def test_an_unusable_secret_says_what_is_wrong_never_its_value(value: str | bytes, expected: str) -> None:
    with pytest.raises(TransientError) as raised:
        parse_credentials(value)
    error = raised.value
    assert error.reason == "credentials_invalid"
    assert expected in error.detail
    assert VALUE not in error.detail
    assert VALUE not in str(error)
    # A chained parser error carries the whole document: it must not be shown with the traceback.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_a_secret_without_a_value_is_named() -> None:
    with pytest.raises(TransientError, match="neither a SecretString nor a SecretBinary"):
        credentials_from_secret({"Name": "tao", "VersionId": "v1"})


def test_the_secret_is_not_in_the_credentials_repr() -> None:
    assert VALUE not in repr(parse_credentials(json.dumps({"client_id": "a", "client_secret": VALUE})))


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [("plain", "plain-secret"), ("id:with:colons", "p@ss:w+rd %20 100%"), ("ünï cödé", "€ ~*'!()/?=&")],
)
def test_basic_authorization_form_encodes_before_base64(client_id: str, client_secret: str) -> None:
    header = basic_authorization(ClientCredentials(client_id, client_secret))
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    user, colon, password = base64.b64decode(encoded, validate=True).decode("ascii").partition(":")
    assert colon == ":"
    assert ":" not in user and " " not in user + password  # the one ':' is the separator
    assert (unquote_plus(user), unquote_plus(password)) == (client_id, client_secret)
