import pytest

from tao_results.naming import (
    DEFAULT_FILENAME,
    MAX_FILENAME_BYTES,
    object_content_disposition,
    result_filename,
    sanitize_filename,
)

URL = "https://bucket.s3.amazonaws.com/results/ref/from-url.csv?X-Amz-Signature=abc"


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
        ('attachment; filename="r\u00e9sultat_\u00e9l\u00e8ves.csv"', "r\u00e9sultat_\u00e9l\u00e8ves.csv"),
        ("attachment; filename=\"fallback.csv\"; filename*=UTF-8''r%C3%A9s.csv", "r\u00e9s.csv"),
        ("attachment; filename*=UTF-8''r%C3%A9s.csv; filename=\"fallback.csv\"", "r\u00e9s.csv"),
        ("attachment; filename*=utf-8'fr'taux%E2%82%AC.csv", "taux_.csv"),
        ("attachment; filename*=ISO-8859-1''r%E9s.csv", "r\u00e9s.csv"),
        ("attachment; filename*=UTF-8''%FF%FE.csv; filename=ok.csv", "ok.csv"),
        ("attachment; filename*=KOI8-R''%C1.csv; filename=ok.csv", "ok.csv"),
        ('attachment; FileName = "spaced.csv" ', "spaced.csv"),
        ('attachment; filename="semi;colon.csv"; x=y', "semi_colon.csv"),
        ('attachment; filename="esc\\"aped.csv"', "esc_aped.csv"),
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


@pytest.mark.parametrize(
    ("filename", "header"),
    [
        ("result.csv", "attachment; filename=\"result.csv\"; filename*=UTF-8''result.csv"),
        (
            "r\u00e9sultat_\u00e9l\u00e8ves.csv",
            'attachment; filename="resultat_eleves.csv"; '
            "filename*=UTF-8''r%C3%A9sultat_%C3%A9l%C3%A8ves.csv",
        ),
        ("\u65e5\u672c.csv", "attachment; filename=\"__.csv\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.csv"),
        (
            "a(1)=b@c,d+e.csv",
            "attachment; filename=\"a(1)=b@c,d+e.csv\"; filename*=UTF-8''a%281%29%3Db%40c%2Cd+e.csv",
        ),
    ],
)
def test_object_content_disposition_is_an_attachment_with_both_filename_forms(filename, header):
    assert object_content_disposition(filename) == header
    assert header.isascii()
