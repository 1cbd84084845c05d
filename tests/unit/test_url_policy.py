import pytest

from tao_results.errors import PermanentError
from tao_results.url_policy import SignedUrlPolicy, redact_url

POLICY = SignedUrlPolicy(("tao.example.com", "*.amazonaws.com", "127.0.0.1"), allow_plain_http=False)
LOCAL = SignedUrlPolicy(("127.0.0.1", "*.amazonaws.com"), allow_plain_http=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://bucket.s3.eu-west-1.amazonaws.com/k.csv?X-Amz-Signature=abc",
        "https://tao.example.com/storage/x",
        "https://TAO.example.com./x",
        "https://127.0.0.1:8443/x",
    ],
)
def test_allowed(url):
    assert POLICY.check(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://bucket.s3.amazonaws.com/k",  # plain http with an https base
        "ftp://bucket.s3.amazonaws.com/k",
        "file:///etc/passwd",
        "gopher://tao.example.com/",
        "https://amazonaws.com/k",  # the bare suffix is not a subdomain
        "https://evilamazonaws.com/k",
        "https://amazonaws.com.evil.example/k",
        "https://user:pw@bucket.s3.amazonaws.com/k",
        "https://bucket.s3.amazonaws.com@evil.example/k",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/k",
        "https://[::1]/k",
        "https://[fd00:ec2::254]/k",
        "https://127.0.0.2/k",
        "https://2130706433/k",
        "https://0x7f000001/k",
        "https://127.1/k",
        "https://tao.example.com:99999/k",
        "https://tao.example.com\\@evil/k",
        "https:// tao.example.com/k",
        "https://tao.example.com/k\n",
        "",
        "not a url",
        "//tao.example.com/k",
    ],
)
def test_rejected(url):
    with pytest.raises(PermanentError) as caught:
        POLICY.check(url)
    assert caught.value.reason == "signed_url_rejected"


@pytest.mark.parametrize("value", [None, 42, ["https://tao.example.com/x"], {"url": "x"}])
def test_non_string_is_rejected(value):
    with pytest.raises(PermanentError):
        POLICY.check(value)


def test_plain_http_only_for_local_stacks():
    assert LOCAL.check("http://127.0.0.1:9000/x")
    with pytest.raises(PermanentError):
        LOCAL.check("http://127.0.0.2:9000/x")


def test_an_ip_must_be_listed_literally():
    policy = SignedUrlPolicy(("*.amazonaws.com", "::1"), allow_plain_http=True)
    assert policy.check("http://[::1]:80/x")
    assert policy.check("http://[0:0:0:0:0:0:0:1]/x")
    with pytest.raises(PermanentError):
        policy.check("http://127.0.0.1/x")


def test_redaction_drops_the_signature():
    redacted = redact_url("https://b.s3.amazonaws.com:443/k.csv?X-Amz-Signature=SECRET&X-Amz-Credential=AKIA")
    assert "SECRET" not in redacted
    assert "AKIA" not in redacted
    assert redacted == "https://b.s3.amazonaws.com:443/k.csv?<redacted>"
