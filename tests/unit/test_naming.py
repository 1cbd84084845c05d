import pytest

from tao_results.naming import (
    DEFAULT_FILENAME,
    MAX_FILENAME_BYTES,
    object_key,
    result_filename,
    sanitize_filename,
)

URL = "https://bucket.s3.amazonaws.com/results/ref/from-url.csv?X-Amz-Signature=abc"


def test_key_layout():
    assert object_key("tao-results/", "ref-1", "a.csv") == "tao-results/ref-1/a.csv"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="import-42.csv"', "import-42.csv"),
        ("attachment; filename=plain.csv", "plain.csv"),
        ("attachment; filename*=UTF-8''r%C3%A9sultat%20final.csv", "résultat_final.csv"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="..\\\\windows\\\\evil.bat"', "evil.bat"),
        ('attachment; filename="a\x00b\x1fc.csv"', "abc.csv"),
        ('attachment; filename="spaces and $ymbols!.csv"', "spaces_and_ymbols_.csv"),
    ],
)
def test_filename_from_content_disposition(header, expected):
    assert result_filename(header, URL) == expected


@pytest.mark.parametrize(
    "header", [None, "", "attachment", 'attachment; filename=""', 'attachment; filename="/"']
)
def test_falls_back_to_the_url_path(header):
    assert result_filename(header, URL) == "from-url.csv"


def test_falls_back_to_result_when_nothing_usable():
    assert result_filename(None, "https://host/") == DEFAULT_FILENAME
    assert result_filename('attachment; filename=".."', "https://host/%2F..") == DEFAULT_FILENAME


def test_length_is_bounded_and_keeps_the_extension():
    name = sanitize_filename("é" * 400 + ".csv")
    assert name is not None
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    assert name.endswith(".csv")


def test_no_separator_or_control_character_survives():
    name = sanitize_filename("a/b\\c\r\nd\u202e.csv")
    assert name == "cd.csv"
