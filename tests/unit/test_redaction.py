"""The redaction registry: pinned values, every echoed form, signed-URL credentials, scrub before cut."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote, quote_plus, urlencode

import pytest

from tao_results.http_sessions import MAX_DETAIL_CHARACTERS, answer_detail
from tao_results.observability import RedactingFilter, RedactingFormatter, redact_trace_document
from tao_results.redaction import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    REDACTED,
    SECRETS,
    WITHHELD,
    SecretRegistry,
    register_signed_url,
    scrub_and_cut,
)

SECRET = 'Tao "quoted" back\\slash+plus%25 and space-é-z'
TOKEN = "eyJhbGciOiJSUzI1NiJ9.payload.sig-nature_value"

FORMS = {
    "raw": SECRET,
    "JSON": json.dumps(SECRET)[1:-1],
    "JSON, ASCII kept": json.dumps(SECRET, ensure_ascii=False)[1:-1],
    "JSON twice": json.dumps(json.dumps(SECRET)[1:-1])[1:-1],
    "percent-encoded": quote(SECRET, safe=""),
    "percent-encoded, lower-case hex": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(SECRET)),
    "form-encoded": quote_plus(SECRET),
    "form-encoded in JSON": json.dumps(quote_plus(SECRET))[1:-1],
    "XML-escaped": SECRET.replace("&", "&amp;").replace('"', "&quot;"),
}


@pytest.fixture
def registry() -> SecretRegistry:
    registry = SecretRegistry(capacity=8)
    registry.pin(CLIENT_SECRET, SECRET)
    registry.pin(ACCESS_TOKEN, TOKEN)
    return registry


@pytest.mark.parametrize("form", list(FORMS.values()), ids=list(FORMS))
def test_every_form_of_the_secret_is_masked(registry: SecretRegistry, form: str) -> None:
    scrubbed = registry.scrub(f"the server said: {form} (end)")
    assert scrubbed == f"the server said: {REDACTED} (end)"


@pytest.mark.parametrize("client_id", ["a", "ab", "abc", "demo-client", "id with space"])
def test_the_secret_inside_an_http_basic_value_is_masked(registry: SecretRegistry, client_id: str) -> None:
    for user, password in ((client_id, SECRET), (quote_plus(client_id), quote_plus(SECRET))):
        value = base64.b64encode(f"{user}:{password}".encode()).decode()
        scrubbed = registry.scrub(f"echo {value} end")  # without the "Basic " that a pattern masks
        kept = scrubbed.removeprefix("echo ").removesuffix(" end").replace(REDACTED, "")
        # At most the client id's own characters and two boundary characters on each side remain.
        assert len(kept) <= -(-(len(user) + 1) * 4 // 3) + 4, (value, scrubbed)


def test_pinned_values_survive_any_number_of_later_ones(registry: SecretRegistry) -> None:
    for number in range(1000):
        registry.add(f"url-credential-{number:05d}")
    assert registry.scrub(f"{SECRET} {TOKEN}") == f"{REDACTED} {REDACTED}"
    assert registry.scrub("url-credential-00999") == REDACTED
    assert registry.scrub("url-credential-00000") == "url-credential-00000", "the LRU is not bounded"


def test_a_replaced_token_is_remembered_not_dropped(registry: SecretRegistry) -> None:
    registry.pin(ACCESS_TOKEN, "the-next-token-value")
    assert registry.scrub(f"{TOKEN} the-next-token-value") == f"{REDACTED} {REDACTED}"
    for number in range(100):  # token refreshes: the client secret stays pinned throughout
        registry.pin(ACCESS_TOKEN, f"token-number-{number:04d}")
    assert registry.pinned(CLIENT_SECRET) == SECRET
    assert registry.scrub(SECRET) == REDACTED


def test_a_rotated_secret_replaces_the_old_one(registry: SecretRegistry) -> None:
    registry.pin(CLIENT_SECRET, "the-rotated-secret")
    assert registry.pinned(CLIENT_SECRET) == "the-rotated-secret"
    assert registry.scrub(f"{SECRET} the-rotated-secret") == f"{REDACTED} {REDACTED}"


def test_credential_shaped_text_is_masked_whoever_wrote_it() -> None:
    registry = SecretRegistry()
    text = (
        "GET /k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123&X-Amz-Security-Token=IQo%2B "
        "Authorization: Bearer abc.def Authorization: Basic ZGVtbzpzZWNyZXQ= "
        '{"access_token":"tok123456","client_secret":"s3cr3t"} client_secret=s3cr3t&scope=x'
    )
    scrubbed = registry.scrub(text)
    for leaked in ("AKIA", "abc123", "IQo", "abc.def", "ZGVtbzpzZWNyZXQ", "tok123456", "s3cr3t"):
        assert leaked not in scrubbed, scrubbed


def test_every_credential_of_a_signed_url_is_registered_on_arrival() -> None:
    credentials = {
        "X-Amz-Credential": "ASIAUNITTEST0000/20261129/eu-west-1/s3/aws4_request",
        "X-Amz-Security-Token": "IQoJb3JpZ2luX2VjE+unit/test==",
        "X-Amz-Signature": "0123456789abcdef0123456789abcdef",
        "Signature": "sigv2+unit/test=",
        "AWSAccessKeyId": "AKIAUNITTESTSIGV2",
        "sig": "azure-sas-unit-test-signature",
    }
    query = urlencode({"X-Amz-Date": "20261129T000000Z", **credentials})
    url = f"https://bucket.s3.amazonaws.com/key?{query}"
    register_signed_url(url)
    for name, value in credentials.items():
        for form in (value, quote(value, safe=""), json.dumps(value)[1:-1]):
            assert SECRETS.scrub(f"[{form}]") == f"[{REDACTED}]", (name, form)
    assert SECRETS.scrub("20261129T000000Z") == "20261129T000000Z", "not a credential"
    register_signed_url(None)  # a missing or odd signedUrl is the URL policy's business
    register_signed_url("http://[broken")


def test_a_detail_is_scrubbed_before_it_is_cut() -> None:
    SECRETS.pin(CLIENT_SECRET, SECRET)
    for padding in range(MAX_DETAIL_CHARACTERS - len(SECRET), MAX_DETAIL_CHARACTERS):
        body = json.dumps({"message": "x" * padding + " " + SECRET + " tail"}).encode()
        detail = answer_detail(body)
        assert len(detail) <= MAX_DETAIL_CHARACTERS
        assert SECRET[:6] not in detail, (padding, detail[-40:])
    assert scrub_and_cut("x" * 295 + SECRET, 300) == "x" * 295 + REDACTED[:5]


def test_a_secret_with_whitespace_is_scrubbed_before_whitespace_is_folded() -> None:
    SECRETS.pin(CLIENT_SECRET, "two  spaces\tand a tab")
    assert "spaces" not in answer_detail(b"echo: two  spaces\tand a tab!")


def test_trace_documents_lose_url_queries_and_known_credentials() -> None:
    SECRETS.pin(ACCESS_TOKEN, TOKEN)
    document = json.dumps(
        {
            "http": {"request": {"url": "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc&a=1"}},
            "cause": {
                "exceptions": [{"message": f"Max retries exceeded with url: /k?sig=x (Bearer {TOKEN})"}]
            },
        }
    )
    redacted = redact_trace_document(document)
    assert "https://bucket.s3.amazonaws.com/k?<redacted>" in redacted
    assert "X-Amz-Signature" not in redacted and "sig=x" not in redacted and TOKEN not in redacted
    json.loads(redacted)


def test_records_for_other_handlers_are_scrubbed_and_a_bad_one_does_not_raise() -> None:
    SECRETS.pin(CLIENT_SECRET, SECRET)
    record = logging.LogRecord("urllib3", logging.WARNING, __file__, 1, "answer: %s", (SECRET,), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"answer: {REDACTED}"
    broken = logging.LogRecord("x", logging.WARNING, __file__, 1, "%s %s", ("only one",), None)
    assert RedactingFilter().filter(broken)


SLASHED_SECRET = 'Zm9vYmFy/cXV4+YmF6== "a\\ss/42'


def _php_json(text: str) -> str:
    return json.dumps(text)[1:-1].replace("/", "\\/")


def _every_char_unicode_escaped(text: str) -> str:
    return "".join(ch if ch.isalnum() else f"\\u{ord(ch):04x}" for ch in text)


def _xml_numeric(text: str, hexadecimal: bool) -> str:
    return "".join(
        ch if ch.isalnum() else (f"&#x{ord(ch):x};" if hexadecimal else f"&#{ord(ch)};") for ch in text
    )


ENCODED_ECHOES = {
    "PHP json_encode (\\/)": _php_json(SLASHED_SECRET),
    ".NET style \\u00XX": _every_char_unicode_escaped(SLASHED_SECRET),
    "XML decimal references": _xml_numeric(SLASHED_SECRET, hexadecimal=False),
    "XML hexadecimal references": _xml_numeric(SLASHED_SECRET, hexadecimal=True),
    "PHP JSON inside a percent-encoded query": quote(_php_json(SLASHED_SECRET), safe=""),
}


@pytest.mark.parametrize("echo", list(ENCODED_ECHOES.values()), ids=list(ENCODED_ECHOES))
def test_a_secret_echoed_in_an_encoding_we_do_not_enumerate_withholds_the_text(echo: str) -> None:
    registry = SecretRegistry(capacity=8)
    registry.pin(CLIENT_SECRET, SLASHED_SECRET)
    text = f'upstream said: {{"client_secret":"{echo}","detail":"boom"}}'
    scrubbed = registry.scrub(text)
    assert scrubbed == WITHHELD
    assert registry.scrub(text, withheld="custom") == "custom"


def test_a_text_without_any_credential_is_kept_whatever_its_escapes() -> None:
    registry = SecretRegistry(capacity=8)
    registry.pin(CLIENT_SECRET, SLASHED_SECRET)
    text = "path \\/a\\/b &#34;quoted&#34; %2Fx \\u0041"
    assert registry.scrub(text) == text


def test_a_log_line_with_an_encoded_secret_is_withheld_as_json() -> None:
    SECRETS.pin(CLIENT_SECRET, SLASHED_SECRET)
    record = logging.LogRecord(
        "svc", logging.WARNING, __file__, 1, "upstream: %s", (_php_json(SLASHED_SECRET),), None
    )
    line = json.loads(RedactingFormatter().format(record))
    assert line["level"] == "WARNING"
    assert "withheld" in line["message"]
    assert SLASHED_SECRET not in json.dumps(line)
