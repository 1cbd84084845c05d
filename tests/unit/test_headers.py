import pytest

from tao_results.errors import PermanentError
from tao_results.headers import (
    DEFAULT_CONTENT_TYPE,
    content_encoding,
    content_length,
    header_text,
    media_type,
)
from tao_results.literal_http import request_target, sendable_literally


@pytest.mark.parametrize(
    "value",
    [
        "text/csv",
        "text/csv; charset=utf-8",
        'text/csv;charset="utf-8" ; header=present',
        'multipart/mixed; boundary="a b:c"',
        'text/plain; x="a\\"b"',
        "application/vnd.ms-excel",
        "text/csv;",
        "text/html",
        "image/svg+xml",
    ],
)
def test_valid_media_types_are_kept(value):
    assert media_type(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "text",
        "text/",
        "/csv",
        "text/csv; charset",
        "text/csv; charset=",
        "text/csv; charset=\u00e9",
        "t\u00e9xt/csv",
        "text/csv\r\nX-Injected: 1",
        "text/csv\n",
        'text/csv; x="unterminated',
        'text/csv"; x="',
        "text/csv; x=a b",
        "text/csv; p=" + "a" * 300,
        "text/csv\x00",
    ],
)
def test_invalid_media_types_become_octet_stream(value):
    assert media_type(value) == DEFAULT_CONTENT_TYPE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", "gzip"),
        ("br", "br"),
        (" gzip , br ", "gzip, br"),
        ("identity", None),
        ("IDENTITY", None),
        ("gzip, identity", "gzip"),
        (None, None),
        ("", None),
        ("gz\u00efp", None),
        ("gzip\r\nX: 1", None),
        ("gzip;q=1", None),
        ("x" * 65, None),
    ],
)
def test_content_encoding(value, expected):
    assert content_encoding(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("0", 0), ("42", 42), ("42, 42", 42), (" 7 ", 7), ("9" * 19, int("9" * 19))],
)
def test_valid_content_lengths(value, expected):
    assert content_length(value) == expected


@pytest.mark.parametrize(
    "value", ["", "+5", "-1", "5_0", "\u00b2", "\u0665", "0x5", "1e3", "9" * 20, "5, 7", "5,", "5 5"]
)
def test_invalid_content_lengths_are_permanent(value):
    with pytest.raises(PermanentError) as error:
        content_length(value)
    assert error.value.reason == "invalid_storage_response"


def test_header_text_reads_raw_utf8_as_utf8_and_keeps_latin1():
    raw_utf8 = "r\u00e9sultat.csv".encode().decode("latin-1")
    assert header_text(raw_utf8) == "r\u00e9sultat.csv"
    assert header_text("r\u00e9sultat.csv") == "r\u00e9sultat.csv"  # a Latin-1 byte 0xE9 alone
    assert header_text(None) is None


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://h/a%7eb?x=%2f#frag", "/a%7eb?x=%2f"),
        ("https://h", "/"),
        ("https://h?x=1", "/?x=1"),
        ("https://h:8443//double/slash?", "//double/slash?"),
        ("https://h/p?a=b+c&d=%7E", "/p?a=b+c&d=%7E"),
    ],
)
def test_request_target_is_taken_as_written(url, target):
    assert request_target(url) == target


@pytest.mark.parametrize(
    ("target", "literal"),
    [("/a%7e?b=%2F", True), ("/a b", False), ("/r\u00e9s", False), ("/a%zz", False), ('/a"b', False)],
)
def test_only_valid_ascii_targets_are_sent_literally(target, literal):
    assert sendable_literally(target) is literal
