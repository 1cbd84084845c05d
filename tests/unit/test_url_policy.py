import ipaddress

import pytest
import requests
from urllib3.exceptions import MaxRetryError

from tao_results.errors import PermanentError
from tao_results.http_sessions import send
from tao_results.redaction import redact_url
from tao_results.url_policy import (
    AMAZON_S3_HOST,
    SignedUrlPolicy,
    is_public_suffix,
    parse_allow_entry,
    why_not_global,
)

POLICY = SignedUrlPolicy(("tao.example.com", "amazon-s3", "127.0.0.1"), allow_plain_http=False)
PUBLIC = SignedUrlPolicy(("tao.example.com", "amazon-s3"), allow_plain_http=False)
LOCAL = SignedUrlPolicy(("127.0.0.1", "amazon-s3"), allow_plain_http=True)


def rejected(policy: SignedUrlPolicy, url: object) -> str:
    with pytest.raises(PermanentError) as caught:
        policy.check(url)
    assert caught.value.reason == "signed_url_rejected"
    return caught.value.detail


def refused_connection(policy: SignedUrlPolicy, host: str, port: int, *addresses: str) -> str:
    with pytest.raises(PermanentError) as caught:
        policy.admit_connection(host, port, [ipaddress.ip_address(a) for a in addresses])
    assert caught.value.reason == "signed_url_rejected"
    return caught.value.detail


@pytest.mark.parametrize(
    "url",
    [
        "https://bucket.s3.eu-west-1.amazonaws.com/k.csv?X-Amz-Signature=abc",
        "https://tao.example.com/storage/x",
        "https://TAO.example.com./x",
        "https://tao.example.com:443/x",
        "https://127.0.0.1:8443/x",  # an address listed without a port: any port
        "https://" + "a" * 63 + ".s3.amazonaws.com/k",
    ],
)
def test_allowed(url):
    assert POLICY.check(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://bucket.s3.amazonaws.com/k",  # plain http without ALLOW_INSECURE_HTTP
        "ftp://bucket.s3.amazonaws.com/k",
        "file:///etc/passwd",
        "gopher://tao.example.com/",
        "https://amazonaws.com/k",
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
        "https://xn--bcher-kva\u00e4.example/k",
        "",
        "not a url",
        "//tao.example.com/k",
        # Not S3, although under amazonaws.com: API Gateway, OpenSearch, VPC endpoints, S3 control.
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        "https://search-x.eu-west-1.es.amazonaws.com/_search",
        "https://bucket.vpce-0a1b.s3.eu-west-1.vpce.amazonaws.com/k",
        "https://123456789012.s3-control.eu-west-1.amazonaws.com/k",
        "https://bucket.s3-website-eu-west-1.amazonaws.com/k",
        "https://sqs.eu-west-1.amazonaws.com/k",
    ],
)
def test_rejected(url):
    rejected(POLICY, url)


@pytest.mark.parametrize("value", [None, 42, ["https://tao.example.com/x"], {"url": "x"}])
def test_non_string_is_rejected(value):
    rejected(POLICY, value)


@pytest.mark.parametrize(
    "host",
    [
        "s3.amazonaws.com",
        "bucket.s3.amazonaws.com",
        "s3.eu-west-1.amazonaws.com",
        "my.dotted.bucket.s3.eu-west-1.amazonaws.com",
        "bucket.s3-eu-west-1.amazonaws.com",
        "bucket.s3-external-1.amazonaws.com",
        "bucket.s3.dualstack.ap-southeast-2.amazonaws.com",
        "s3.dualstack.us-gov-west-1.amazonaws.com",
        "bucket.s3-accelerate.amazonaws.com",
        "bucket.s3-accelerate.dualstack.amazonaws.com",
        "bucket.s3.cn-north-1.amazonaws.com.cn",
        "s3.dualstack.cn-northwest-1.amazonaws.com.cn",
    ],
)
def test_amazon_s3_names(host):
    assert AMAZON_S3_HOST.match(host)
    assert POLICY.check(f"https://{host}/k")


@pytest.mark.parametrize(
    "host",
    [
        "amazonaws.com",
        "s3.amazonaws.com.evil.example",
        "s3-accelerate.amazonaws.com.cn",
        "bucket.s3.eu-west-1.amazonaws.com.evil",
        "bucket.s3.eu-west.amazonaws.com",
        "execute-api.eu-west-1.amazonaws.com",
        "bucket.s3-accesspoint.eu-west-1.amazonaws.com",
    ],
)
def test_not_amazon_s3_names(host):
    assert not AMAZON_S3_HOST.match(host)


def test_a_64_octet_label_or_a_254_character_name_is_refused_with_a_reason():
    assert "63 octets" in rejected(POLICY, "https://" + "a" * 64 + ".s3.amazonaws.com/k")
    long_name = ".".join(["a" * 60] * 4) + ".s3.amazonaws.com"
    assert len(long_name) > 253
    assert "253" in rejected(POLICY, f"https://{long_name}/k")


def test_details_name_what_was_refused_never_the_query():
    assert rejected(PUBLIC, "http://bucket.s3.amazonaws.com/k?X-Amz-Signature=SECRET") == (
        "scheme 'http' not allowed (ALLOW_INSECURE_HTTP is off)"
    )
    detail = rejected(PUBLIC, "https://bucket.s3.amazonaws.com:8443/k?X-Amz-Signature=SECRET")
    assert detail == "port 8443 not allowed for host 'bucket.s3.amazonaws.com'"
    detail = rejected(PUBLIC, "https://evil.example/k?X-Amz-Signature=SECRET")
    assert detail == "host 'evil.example' is not in SIGNED_URL_ALLOWED_HOSTS"


def test_plain_http_only_with_allow_insecure_http():
    assert LOCAL.check("http://127.0.0.1:9000/x")
    rejected(LOCAL, "http://127.0.0.2:9000/x")
    rejected(POLICY, "http://127.0.0.1:9000/x")


def test_an_ip_must_be_listed_literally():
    policy = SignedUrlPolicy(("amazon-s3", "::1"), allow_plain_http=True)
    assert policy.check("http://[::1]:80/x")
    assert policy.check("http://[0:0:0:0:0:0:0:1]/x")
    rejected(policy, "http://127.0.0.1/x")


def test_a_cidr_lists_addresses_and_admits_any_port():
    policy = SignedUrlPolicy(("10.0.0.0/8", "fd00::/8"), allow_plain_http=False)
    assert policy.check("https://10.1.2.3:9000/x")
    assert policy.check("https://[fd00::5]:9000/x")
    rejected(policy, "https://11.0.0.1/x")


def test_a_port_named_by_an_entry():
    policy = SignedUrlPolicy(("files.example.com:8443", "*.example.org:9000", "10.0.0.5:9000"), False)
    assert policy.check("https://files.example.com:8443/x")
    assert policy.check("https://files.example.com/x")  # 443 always
    assert policy.check("https://a.example.org:9000/x")
    assert policy.check("https://10.0.0.5:9000/x")
    rejected(policy, "https://files.example.com:9443/x")
    rejected(policy, "https://10.0.0.5:9001/x")


# --- connect time: the addresses a name resolved to ------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("10.1.2.3", "private, RFC 1918"),
        ("172.16.0.1", "private, RFC 1918"),
        ("192.168.1.1", "private, RFC 1918"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared address space, CGNAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd00:ec2::254", "unique-local"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
        ("64:ff9b::a00:1", "NAT64 private, RFC 1918"),
        ("64:ff9b:1::1", "NAT64 local-use"),
        ("2002:7f00:1::", "6to4 loopback"),
        ("::127.0.0.1", "not global unicast"),
        ("2001:db8::1", "documentation"),
    ],
)
def test_addresses_that_are_not_globally_routable(address, why):
    assert why_not_global(ipaddress.ip_address(address)) == why
    detail = refused_connection(PUBLIC, "bucket.s3.amazonaws.com", 443, address)
    shown = ipaddress.ip_address(address)
    assert detail == f"host 'bucket.s3.amazonaws.com' resolved to {shown} ({why}), not allowed"


@pytest.mark.parametrize(
    "address", ["52.95.150.10", "2600:1f18::1", "::ffff:52.95.150.10", "64:ff9b::3443:1"]
)
def test_globally_routable_addresses(address):
    assert why_not_global(ipaddress.ip_address(address)) is None
    POLICY.admit_connection("bucket.s3.amazonaws.com", 443, [ipaddress.ip_address(address)])


def test_one_internal_address_among_public_ones_refuses_the_connection():
    detail = refused_connection(PUBLIC, "bucket.s3.amazonaws.com", 443, "52.95.150.10", "127.0.0.1")
    assert "127.0.0.1 (loopback)" in detail


def test_a_private_address_only_when_listed_too():
    with_address = SignedUrlPolicy(("localhost", "127.0.0.1"), allow_plain_http=True)
    with_address.admit_connection("localhost", 4566, [ipaddress.ip_address("127.0.0.1")])
    refused_connection(with_address, "localhost", 4566, "::1")
    assert "IPv4-mapped" in refused_connection(with_address, "localhost", 4566, "::ffff:127.0.0.1")
    rejected(with_address, "http://[::ffff:127.0.0.1]/x")
    name_only = SignedUrlPolicy(("localhost:4566",), allow_plain_http=True)
    assert "(loopback)" in refused_connection(name_only, "localhost", 4566, "127.0.0.1")


def test_a_port_on_a_public_address_must_be_named():
    policy = SignedUrlPolicy(("files.example.com", "127.0.0.1"), allow_plain_http=False)
    # Provisionally admitted by name (the name might resolve to the listed address) ...
    assert policy.check("https://files.example.com:9000/x")
    policy.admit_connection("files.example.com", 9000, [ipaddress.ip_address("127.0.0.1")])
    # ... but refused once it resolves to a public one.
    detail = refused_connection(policy, "files.example.com", 9000, "52.95.150.10")
    assert detail == "port 9000 not allowed for host 'files.example.com' (resolved to 52.95.150.10)"


def test_a_listed_address_with_a_port_admits_that_port_only():
    policy = SignedUrlPolicy(("files.example.com", "127.0.0.1:9000"), allow_plain_http=False)
    policy.admit_connection("files.example.com", 9000, [ipaddress.ip_address("127.0.0.1")])
    assert "port 9001" in refused_connection(policy, "files.example.com", 9001, "127.0.0.1")


def test_a_private_address_listed_with_a_port_is_not_reachable_on_443():
    # Port 443 is admitted by name for public addresses only: listing 10.0.0.5:8080 admits 8080.
    policy = SignedUrlPolicy(("files.example.com", "10.0.0.5:8080"), allow_plain_http=False)
    assert "listed for port 8080" in refused_connection(policy, "files.example.com", 443, "10.0.0.5")
    assert "listed for port 8080" in rejected(policy, "https://10.0.0.5/result.csv?X-Amz-Signature=s")
    policy.admit_connection("files.example.com", 8080, [ipaddress.ip_address("10.0.0.5")])


def test_a_port_named_for_a_name_does_not_open_another_port_of_a_listed_address():
    policy = SignedUrlPolicy(("localhost:4566", "127.0.0.1:9000"), allow_plain_http=True)
    assert "listed for port 9000" in refused_connection(policy, "localhost", 4566, "127.0.0.1")


# --- the allow-list grammar ------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["com", "uk", "local", "co.uk", "com.au", "ac.jp", "gov.br", "com.cn"])
def test_public_suffixes(domain):
    assert is_public_suffix(domain)
    with pytest.raises(ValueError, match="broader than a registrable domain"):
        parse_allow_entry(f"*.{domain}")


@pytest.mark.parametrize("domain", ["example.com", "example.co.uk", "amazonaws.com", "amazonaws.com.cn"])
def test_registrable_domains(domain):
    assert not is_public_suffix(domain)
    assert str(parse_allow_entry(f"*.{domain}")) == f"*.{domain}"


def test_redaction_drops_the_signature():
    redacted = redact_url("https://b.s3.amazonaws.com:443/k.csv?X-Amz-Signature=SECRET&X-Amz-Credential=AKIA")
    assert "SECRET" not in redacted
    assert "AKIA" not in redacted
    assert redacted == "https://b.s3.amazonaws.com:443/k.csv?<redacted>"


class _WrappingAdapter(requests.adapters.BaseAdapter):
    """Raises a refusal the way urllib3/requests wrap a connection error (a fake: pure logic)."""

    def send(self, request, **kwargs):
        refusal = PermanentError(
            "signed_url_rejected", "host 'x' resolved to 127.0.0.1 (loopback), not allowed"
        )
        raise requests.ConnectionError(MaxRetryError(None, request.url, reason=refusal))

    def close(self):
        pass


def test_send_unwraps_a_refusal_that_a_library_wrapped():
    session = requests.Session()
    session.mount("https://", _WrappingAdapter())
    with pytest.raises(PermanentError) as caught:
        send(session, "GET", "https://x/k?X-Amz-Signature=s")
    assert caught.value.reason == "signed_url_rejected"
    assert caught.value.detail.startswith("host 'x' resolved to 127.0.0.1")
