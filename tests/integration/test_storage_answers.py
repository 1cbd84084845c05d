"""What storage answers, as S3 and HTTP allow it, through the real handler, moto and the emulator.

Issue 9 §2 (the signed URL exactly as issued, wherever S3 sends it) and issue 10 §3 (what we store
cannot attack the people who read it): each kind's variants, one emulator knob each.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets

import pytest
import requests

from tao_emulator import Fault, TaoEmulator

MiB = 1024 * 1024
KEY = "tao-results/ref-s/result.csv"


def only(items):
    assert len(items) == 1, items
    return items[0]


def storage_entries(tao):
    return [entry for entry in tao.requests_log() if entry["stage"] == "storage"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the request line carries the URL's path and query byte for byte --------------------------


@pytest.mark.parametrize(
    ("settings", "filename", "expected_in_line"),
    [
        ({"signed_url_tilde": "escaped"}, "a~b.csv", "a%7Eb.csv"),
        ({"signed_url_escapes": "lower"}, "r\u00e9s ult+at.csv", "r%c3%a9s%20ult%2bat.csv"),
        ({"signed_url_escapes": "lower", "signed_url_tilde": "escaped"}, "x~y.csv", "x%7ey.csv"),
        ({}, "dir/name.csv", "dir%2Fname.csv"),
        (
            {"signed_url_extra_query": "response-content-disposition=attachment%3b%20f%3d%7E&tag=a+b&p=%2f"},
            "q.csv",
            "tag=a+b&p=%2f",
        ),
    ],
    ids=["tilde-%7E", "lower-case-escapes", "lower-%7e", "%2F-in-path", "plus-and-escapes-in-query"],
)
def test_the_request_line_is_the_signed_url_byte_for_byte(harness, tao, settings, filename, expected_in_line):
    tao.configure(signature_scope="literal", **settings)
    info = tao.add_result("ref-s", size=300, filename=filename)
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert h.dead_letters() == []
    line = only(storage_entries(tao))["request_line"]
    assert expected_in_line in line
    key = only(h.keys())
    assert sha256(h.object_bytes(key)) == info.sha256


def test_the_emulator_rejects_a_re_quoted_request_line(tao):
    """The knob can fail: requests' own re-quoting (%7E → ~) breaks a literal signature."""
    tao.configure(signature_scope="literal", signed_url_tilde="escaped")
    tao.add_result("ref-s", size=10, filename="a~b.csv")
    token = requests.post(
        f"{tao.base_url}/api/v1/upload/v1/oauth2/tokens",
        data={"grant_type": "client_credentials"},
        auth=(tao.settings()["client_id"], tao.settings()["client_secret"]),
        timeout=5,
    ).json()["access_token"]
    signed_url = requests.get(
        f"{tao.base_url}/api/v1/download/ref-s", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()["signedUrl"]
    assert "%7E" in signed_url
    answer = requests.get(signed_url, timeout=5)
    assert answer.status_code == 403
    assert b"SignatureDoesNotMatch" in answer.content


# ---- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    "location",
    ["{base_url}{signed_path}", "{signed_path}", "result.csv?{signed_query}"],
    ids=["absolute", "absolute-path", "relative-path"],
)
def test_each_redirect_status_and_location_form_is_followed(harness, tao, status, location):
    info = tao.add_result("ref-s", size=700)
    tao.add_fault(
        Fault(
            stage="storage",
            kind="redirect",
            status=status,
            location=location,
            headers={"Set-Cookie": "session=from-the-redirect; Path=/", "Authorization": "Bearer leaked"},
        )
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert sha256(h.object_bytes(KEY)) == info.sha256
    first, second = storage_entries(tao)
    assert first["status"] == status and second["status"] == 200
    # A fresh GET: nothing of the previous request or answer travels with it.
    assert second["method"] == "GET"
    assert "cookie" not in second["header_names"]
    assert "authorization" not in second["header_names"]
    assert set(second["header_names"]) == set(first["header_names"])


@pytest.fixture
def other_storage(tao):
    """127.0.0.1 on another port: another allowed host, signing with the same key."""
    key = secrets.token_hex(32)
    tao.configure(signing_key=key)
    with TaoEmulator(signing_key=key) as other:
        yield other


def test_a_redirect_to_another_allowed_host_is_followed(harness, tao, other_storage):
    info = tao.add_result("ref-s", size=900)
    other_storage.add_result("ref-s", size=900)
    tao.add_fault(
        Fault(
            stage="storage", kind="redirect", status=307, location=f"{other_storage.base_url}{{signed_path}}"
        )
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert sha256(h.object_bytes(KEY)) == info.sha256
    assert only(storage_entries(other_storage))["status"] == 200


@pytest.mark.parametrize("status", [301, 307])
def test_s3_regional_redirects_are_followed(harness, tao, other_storage, status):
    """S3's 301 PermanentRedirect has no Location: the XML <Endpoint> names the host (path and
    query unchanged). Its 307 TemporaryRedirect carries a Location as well."""
    info = tao.add_result("ref-s", size=1200)
    other_storage.add_result("ref-s", size=1200)
    tao.add_fault(
        Fault(stage="storage", kind="s3_redirect", status=status, endpoint=f"127.0.0.1:{other_storage.port}")
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert h.dead_letters() == []
    assert sha256(h.object_bytes(KEY)) == info.sha256
    original = only(storage_entries(tao))
    followed = only(storage_entries(other_storage))
    assert original["status"] == status
    assert followed["request_line"] == original["request_line"]  # the same path and query


def test_a_301_with_neither_location_nor_endpoint_is_dead_lettered(harness, tao):
    tao.add_result("ref-s", size=10)
    tao.add_fault(
        Fault(
            stage="storage",
            kind="status",
            status=301,
            code="PermanentRedirect",
            message="The bucket you are attempting to access must be addressed using the specified endpoint.",
            headers={"x-amz-bucket-region": "eu-central-1"},
        )
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    letter = only(h.dead_letters())
    assert (letter["reason"], letter["httpStatus"]) == ("storage_bad_redirect", 301)
    assert "eu-central-1" in letter["detail"]


@pytest.mark.parametrize(("hops", "copied"), [(5, True), (6, False)])
def test_redirect_chains_are_followed_up_to_five_hops(harness, tao, hops, copied):
    info = tao.add_result("ref-s", size=100)
    tao.add_fault(
        Fault(stage="storage", kind="redirect", status=302, times=hops, location="{base_url}{signed_path}")
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    if copied:
        assert sha256(h.object_bytes(KEY)) == info.sha256
        assert len(storage_entries(tao)) == 6
    else:
        assert h.keys() == []
        assert only(h.dead_letters())["reason"] == "storage_too_many_redirects"
        assert len(storage_entries(tao)) == 6  # the sixth redirect is never followed


def test_a_redirect_loop_is_dead_lettered(harness, tao):
    tao.add_result("ref-s", size=100)
    tao.add_fault(
        Fault(stage="storage", kind="redirect", status=307, times=None, location="{base_url}{signed_path}")
    )
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    letter = only(h.dead_letters())
    assert letter["reason"] == "storage_too_many_redirects"
    assert "X-Amz-Signature" not in json.dumps(letter)


# ---- storage answers classified by S3 error code ---------------------------------------------

TRANSIENT_CODES = [
    (400, "ExpiredToken", "The provided token has expired."),
    (400, "TokenRefreshRequired", "The provided token must be refreshed."),
    (400, "InvalidToken", "The provided token is malformed or otherwise invalid."),
    (403, "AccessDenied", "Request has expired"),
    (403, "RequestExpired", "Request has expired"),
    (403, "SignatureDoesNotMatch", "The request signature we calculated does not match."),
    (403, "InvalidAccessKeyId", "The AWS access key ID you provided does not exist in our records."),
    (
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the server's time is too large.",
    ),
    (403, "AccessDenied", "Access Denied"),
    (400, "RequestTimeout", "Your socket connection to the server was not read from or written to."),
    (503, "SlowDown", "Please reduce your request rate."),
]


@pytest.mark.parametrize(
    ("status", "code", "message"), TRANSIENT_CODES, ids=[f"{s}-{c}" for s, c, _ in TRANSIENT_CODES]
)
def test_credential_and_signature_codes_ask_for_a_fresh_url(harness, tao, status, code, message):
    info = tao.add_result("ref-s", size=100)
    tao.add_fault(Fault(stage="storage", kind="status", status=status, code=code, message=message))
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert h.dead_letters() == []
    assert sha256(h.object_bytes(KEY)) == info.sha256
    assert tao.stats()["download_calls"]["ref-s"] == 2  # the retry asked for a fresh URL


def test_an_expired_session_token_in_the_url_is_retried_with_a_fresh_url(harness, tao):
    info = tao.add_result("ref-s", size=100)
    tao.add_fault(Fault(stage="download", kind="expired_session"))
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert sha256(h.object_bytes(KEY)) == info.sha256
    statuses = [entry["status"] for entry in storage_entries(tao)]
    assert statuses == [400, 200]


PERMANENT_CODES = [
    (
        400,
        "AuthorizationQueryParametersError",
        "X-Amz-Expires must be less than a week",
        "storage_bad_request",
    ),
    (400, "InvalidRequest", "Invalid Request", "storage_bad_request"),
    (
        403,
        "InvalidObjectState",
        "The operation is not valid for the object's storage class",
        "storage_object_archived",
    ),
]


@pytest.mark.parametrize(
    ("status", "code", "message", "reason"), PERMANENT_CODES, ids=[c for _, c, _, _ in PERMANENT_CODES]
)
def test_codes_that_a_fresh_url_cannot_fix_are_dead_lettered(harness, tao, status, code, message, reason):
    tao.add_result("ref-s", size=100)
    tao.add_fault(Fault(stage="storage", kind="status", status=status, code=code, message=message))
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    letter = only(h.dead_letters())
    assert (letter["reason"], letter["httpStatus"]) == (reason, status)
    assert letter["detail"].startswith(f"storage answered {status}: {code}")


# ---- malformed answers are classified, never "Unexpected error" ---------------------------------


@pytest.mark.parametrize(
    "values",
    [
        ["+300"],
        ["-1"],
        ["3_00"],
        ["\u00b2"],
        ["99999999999999999999"],
        ["0x12C"],
        [""],
        ["300", "301"],
        ["300, 7"],
    ],
    ids=[
        "sign",
        "negative",
        "underscore",
        "superscript-digit",
        "20-digits",
        "hex",
        "empty",
        "conflicting-lines",
        "conflicting-list",
    ],
)
def test_a_malformed_content_length_is_classified(harness, tao, capsys, values):
    tao.add_result("ref-s", size=300)
    tao.add_fault(Fault(stage="storage", kind="content_length", length_values=values, times=None))
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert only(h.dead_letters())["reason"] == "invalid_storage_response"
    assert h.keys() == []
    assert "Unexpected error" not in capsys.readouterr().out


def test_identical_duplicate_content_lengths_are_one_length(harness, tao):
    info = tao.add_result("ref-s", size=300)
    tao.add_fault(Fault(stage="storage", kind="content_length", length_values=["300", "300"]))
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert sha256(h.object_bytes(KEY)) == info.sha256


DEEP = "[" * 20_000 + "]" * 20_000  # 40 KB: under the 64 KiB answer bound, far past the parser's depth


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            Fault("download", "status", status=200, body=DEEP, content_type="application/json"),
            "invalid_api_response",
        ),
        (Fault("download", "status", status=400, body=DEEP, content_type="application/json"), "bad_request"),
        (
            Fault("storage", "status", status=400, body=DEEP, content_type="application/json"),
            "storage_bad_request",
        ),
    ],
    ids=["api-200", "api-error-body", "storage-error-body"],
)
def test_json_nested_thousands_deep_is_classified(harness, tao, capsys, fault, reason):
    tao.add_result("ref-s", size=10)
    tao.add_fault(fault)
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    assert only(h.dead_letters())["reason"] == reason
    assert "Unexpected error" not in capsys.readouterr().out


# ---- Content-Encoding: stored as received, labelled the same -----------------------------------


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("gzip", "gzip"),
        ("br", "br"),
        ("gzip, br", "gzip, br"),
        ("identity", None),
        (None, None),
        ("gz\u00efp", None),
    ],
    ids=["gzip", "br", "gzip-then-br", "identity", "absent", "non-ascii"],
)
def test_content_encoding_is_kept_with_the_raw_bytes(harness, tao, encoding, expected):
    content = gzip.compress(b"id,name\n1,Ada\n" * 50) if encoding == "gzip" else secrets.token_bytes(500)
    tao.add_result("ref-s", content=content, content_encoding=encoding)
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    obj = h.object(KEY)
    assert obj["Body"].read() == content  # stored exactly as served, never decoded
    assert obj.get("ContentEncoding") == expected
    assert obj["Metadata"].get("source-content-encoding") == expected


def test_content_encoding_is_kept_on_a_multipart_upload(harness, tao):
    content = gzip.compress(secrets.token_bytes(7 * MiB), compresslevel=1)
    tao.add_result("ref-s", content=content, content_encoding="gzip")
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    obj = h.object(KEY)
    assert obj["ETag"].endswith('-2"')
    assert obj["ContentEncoding"] == "gzip"
    assert obj["Body"].read() == content


# ---- filename and Content-Disposition -----------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "charset", "key_name"),
    [
        (
            'attachment; filename="r\u00e9sultat_\u00e9l\u00e8ves.csv"',
            "utf-8",
            "r\u00e9sultat_\u00e9l\u00e8ves.csv",
        ),
        (
            "attachment; filename*=UTF-8''r%C3%A9sultat_%C3%A9l%C3%A8ves.csv",
            "latin-1",
            "r\u00e9sultat_\u00e9l\u00e8ves.csv",
        ),
        (
            "attachment; filename=\"fallback.csv\"; filename*=UTF-8''r%C3%A9sultat_%C3%A9l%C3%A8ves.csv",
            "latin-1",
            "r\u00e9sultat_\u00e9l\u00e8ves.csv",
        ),
        ('attachment; filename="r\u00e9sultat.csv"', "latin-1", "r\u00e9sultat.csv"),
    ],
    ids=["raw-utf-8", "rfc-5987", "both-filename-star-wins", "raw-latin-1"],
)
def test_the_filename_names_the_object_in_utf8(harness, tao, disposition, charset, key_name):
    tao.add_result("ref-s", size=50, content_disposition=disposition, header_charset=charset)
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    key = f"tao-results/ref-s/{key_name}"
    assert h.keys() == [key]
    obj = h.object(key)
    assert obj["ContentDisposition"].startswith('attachment; filename="resultat')
    assert obj["ContentDisposition"].endswith("''" + requests.utils.quote(key_name, safe=""))


# ---- Content-Type: kept only when valid, and every object is an attachment ---------------------


@pytest.mark.parametrize(
    ("content_type", "charset", "stored"),
    [
        ("text/csv; charset=utf-8", "latin-1", "text/csv; charset=utf-8"),
        ('text/csv;charset="utf-8";header=present', "latin-1", 'text/csv;charset="utf-8";header=present'),
        ("text/html", "latin-1", "text/html"),
        ("image/svg+xml", "latin-1", "image/svg+xml"),
        ("text/csv; charset=\u00e9", "utf-8", "application/octet-stream"),
        ("text/h\u00e9ml", "latin-1", "application/octet-stream"),
        ("text/html\r\n x-injected: yes", "latin-1", "application/octet-stream"),
        ('text/csv"; x="', "latin-1", "application/octet-stream"),
        ('text/csv; name="a"b"', "latin-1", "application/octet-stream"),
        ("text", "latin-1", "application/octet-stream"),
        ("text/csv; p=" + "a" * 300, "latin-1", "application/octet-stream"),
        ("", "latin-1", "application/octet-stream"),
    ],
    ids=[
        "params",
        "quoted-params",
        "html",
        "svg",
        "non-ascii-utf8",
        "non-ascii-latin1",
        "crlf-fold",
        "stray-quotes",
        "broken-quoted-string",
        "no-subtype",
        "over-long",
        "empty",
    ],
)
def test_content_type_is_kept_only_when_valid_and_the_object_is_an_attachment(
    harness, tao, content_type, charset, stored
):
    tao.add_result("ref-s", size=40, content_type=content_type, header_charset=charset)
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    obj = h.object(KEY)
    assert obj["ContentType"] == stored
    assert obj["ContentDisposition"] == "attachment; filename=\"result.csv\"; filename*=UTF-8''result.csv"


@pytest.mark.parametrize("status", [203, 206])
def test_an_unexpected_success_status_never_quotes_the_result_in_the_dead_letter(harness, tao, status):
    # A 206 or 203 body is result data (student rows): it must not reach the DLQ or the logs.
    tao.add_result("ref-s", size=100)
    tao.add_fault(Fault(stage="storage", kind="status", status=status, body="student-42,Ada Lovelace"))
    h = harness()
    _, failed = h.run({"referenceId": "ref-s"})
    assert failed == []
    letter = only(h.dead_letters())
    assert letter["reason"] == "unexpected_status"
    assert "Lovelace" not in json.dumps(letter)
    assert "not quoted" in letter["detail"]


def test_an_s3_message_longer_than_the_detail_keeps_its_code_and_a_cut_message(harness, tao):
    tao.add_result("ref-s", size=100)
    tao.add_fault(Fault(stage="storage", kind="status", status=400, code="InvalidRequest", message="x" * 500))
    h = harness()
    h.run({"referenceId": "ref-s"})
    letter = only(h.dead_letters())
    assert letter["detail"].startswith("storage answered 400: InvalidRequest: xxxx")
    assert "None" not in letter["detail"]
