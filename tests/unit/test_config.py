import pytest

from tao_results.config import ConfigError, load_settings

REQUIRED = {
    "TAO_BASE_URL": "https://acme.taoadvance.example",
    "TAO_CREDENTIALS_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tao-AbCdEf",
    "RESULTS_BUCKET": "results",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
}


def test_defaults_from_the_minimal_environment():
    settings = load_settings(REQUIRED)
    assert settings.tao_token_url == "https://acme.taoadvance.example/api/v1/upload/v1/oauth2/tokens"
    assert settings.download_url("ref-1") == "https://acme.taoadvance.example/api/v1/download/ref-1"
    assert settings.results_prefix == "tao-results/"
    assert settings.signed_url_allowed_hosts == ("acme.taoadvance.example", "amazon-s3")
    assert settings.allow_plain_http is False
    assert settings.not_found_grace_seconds == 0
    assert settings.tao_token_scope == "rostering"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_required_variable_is_named(missing):
    environ = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load_settings(environ)


def test_blank_counts_as_missing():
    with pytest.raises(ConfigError, match="RESULTS_BUCKET"):
        load_settings({**REQUIRED, "RESULTS_BUCKET": "  "})


def test_the_alternative_documented_download_path_is_configurable():
    settings = load_settings(
        {**REQUIRED, "TAO_DOWNLOAD_PATH": "/api/v1/upload/api/v1/download/{referenceId}"}
    )
    assert settings.download_url("12345").endswith("/api/v1/upload/api/v1/download/12345")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TAO_BASE_URL", "ftp://acme.example"),
        ("TAO_BASE_URL", "acme.example"),
        ("TAO_BASE_URL", "https://user:pw@acme.example"),
        ("TAO_BASE_URL", "https://acme.example/?x=1"),
        ("TAO_DOWNLOAD_PATH", "/api/v1/download/"),
        ("TAO_DOWNLOAD_PATH", "api/{referenceId}"),
        ("TAO_TOKEN_URL", "/relative"),
        ("RECORD_CONCURRENCY", "0"),
        ("RECORD_CONCURRENCY", "eleven"),
        ("PART_SIZE_BYTES", "1024"),
        ("NOT_FOUND_GRACE_SECONDS", "-1"),
        ("RESULTS_PREFIX", "/abs/"),
        ("RESULTS_PREFIX", "a/../b/"),
        ("SIGNED_URL_ALLOWED_HOSTS", "bad host"),
        ("SIGNED_URL_ALLOWED_HOSTS", "*"),
        ("SIGNED_URL_ALLOWED_HOSTS", " , "),
        ("SIGNED_URL_ALLOWED_HOSTS", "*.com"),
        ("SIGNED_URL_ALLOWED_HOSTS", "*.co.uk"),
        ("SIGNED_URL_ALLOWED_HOSTS", "files.example.com,*.com.au"),
        ("SIGNED_URL_ALLOWED_HOSTS", "*.local"),
        ("SIGNED_URL_ALLOWED_HOSTS", "a" * 64 + ".example.com"),
        ("SIGNED_URL_ALLOWED_HOSTS", "files.example.com:0"),
        ("SIGNED_URL_ALLOWED_HOSTS", "files.example.com:70000"),
        ("SIGNED_URL_ALLOWED_HOSTS", "10.0.0.0/8:443"),
        ("SIGNED_URL_ALLOWED_HOSTS", "10.0.0.1/8"),
        ("SIGNED_URL_ALLOWED_HOSTS", "[fd00::1"),
        ("TAO_BASE_URL", "http://acme.example"),
        ("TAO_TOKEN_URL", "http://acme.example/token"),
    ],
)
def test_invalid_values_fail_fast_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({**REQUIRED, name: value})


def test_prefix_gets_a_trailing_slash_and_may_be_empty():
    assert load_settings({**REQUIRED, "RESULTS_PREFIX": "imports"}).results_prefix == "imports/"
    assert load_settings({**REQUIRED, "RESULTS_PREFIX": ""}).results_prefix == ""


def test_plain_http_only_with_an_explicit_allow_insecure_http():
    with pytest.raises(ConfigError, match="ALLOW_INSECURE_HTTP"):
        load_settings({**REQUIRED, "TAO_BASE_URL": "http://127.0.0.1:8080/"})
    settings = load_settings(
        {**REQUIRED, "TAO_BASE_URL": "http://127.0.0.1:8080/", "ALLOW_INSECURE_HTTP": "true"}
    )
    assert settings.allow_plain_http is True
    assert settings.tao_base_url == "http://127.0.0.1:8080"
    # The TAO host with its port, not any port of the address.
    assert settings.signed_url_allowed_hosts == ("127.0.0.1:8080", "amazon-s3")


@pytest.mark.parametrize("value", ["false", "0", "", "no"])
def test_an_https_base_url_never_implies_plain_http(value):
    assert load_settings({**REQUIRED, "ALLOW_INSECURE_HTTP": value}).allow_plain_http is False


def test_allowed_hosts_are_normalised():
    settings = load_settings(
        {
            **REQUIRED,
            "SIGNED_URL_ALLOWED_HOSTS": "Files.Example.COM., *.s3.amazonaws.com,10.0.0.5, AMAZON-S3,"
            "localhost:4566, [::1], [FD00::1]:9000, 10.0.0.0/8, fd00::/8, *.example.co.uk:8443,"
            " files.example.com",
        }
    )
    assert settings.signed_url_allowed_hosts == (
        "files.example.com",
        "*.s3.amazonaws.com",
        "10.0.0.5",
        "amazon-s3",
        "localhost:4566",
        "::1",
        "[fd00::1]:9000",
        "10.0.0.0/8",
        "fd00::/8",
        "*.example.co.uk:8443",
    )


@pytest.mark.parametrize("method", ["auto", "client_secret_post", "client_secret_basic", "multipart"])
def test_token_auth_method_choices(method):
    assert load_settings(
        {**REQUIRED, "TAO_TOKEN_AUTH_METHOD": f" {method.upper()} "}
    ).tao_token_auth_method == (method)


def test_token_auth_method_defaults_to_auto_and_rejects_unknown_names():
    assert load_settings(REQUIRED).tao_token_auth_method == "auto"
    with pytest.raises(ConfigError, match="TAO_TOKEN_AUTH_METHOD"):
        load_settings({**REQUIRED, "TAO_TOKEN_AUTH_METHOD": "private_key_jwt"})


def test_max_receive_count_is_optional_and_within_sqs_range():
    assert load_settings(REQUIRED).max_receive_count is None
    assert load_settings({**REQUIRED, "MAX_RECEIVE_COUNT": "5"}).max_receive_count == 5
    for bad in ("0", "1001", "five"):
        with pytest.raises(ConfigError, match="MAX_RECEIVE_COUNT"):
            load_settings({**REQUIRED, "MAX_RECEIVE_COUNT": bad})


def test_a_grace_the_deliveries_cannot_cover_is_refused_naming_both_settings():
    # 5 deliveries with a 10 s base: the last comes at least 5 + 10 + 20 + 40 = 75 s after the first.
    environ = {**REQUIRED, "MAX_RECEIVE_COUNT": "5", "RETRY_BACKOFF_BASE_SECONDS": "10"}
    assert load_settings({**environ, "NOT_FOUND_GRACE_SECONDS": "75"}).not_found_grace_seconds == 75
    with pytest.raises(ConfigError, match=r"NOT_FOUND_GRACE_SECONDS.*MAX_RECEIVE_COUNT"):
        load_settings({**environ, "NOT_FOUND_GRACE_SECONDS": "76"})
    # The backoff ceiling shortens the gaps: 5 + 10 + 15 + 15 = 45 s.
    with pytest.raises(ConfigError, match=r"RETRY_BACKOFF_MAX_SECONDS=15"):
        load_settings({**environ, "RETRY_BACKOFF_MAX_SECONDS": "15", "NOT_FOUND_GRACE_SECONDS": "46"})


def test_the_grace_check_needs_a_known_count_and_a_backoff():
    # Without MAX_RECEIVE_COUNT the count is read from the queue later; with no backoff the gaps are
    # the queue's visibility timeout, which the function does not know.
    assert load_settings({**REQUIRED, "NOT_FOUND_GRACE_SECONDS": "86400"}).max_receive_count is None
    environ = {**REQUIRED, "MAX_RECEIVE_COUNT": "2", "RETRY_BACKOFF_BASE_SECONDS": "0"}
    assert load_settings({**environ, "NOT_FOUND_GRACE_SECONDS": "86400"}).not_found_grace_seconds == 86400
