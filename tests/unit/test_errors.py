from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from tao_results.classification import (
    DOWNLOAD_API_OUTCOMES,
    STORAGE_ERROR_CODES,
    STORAGE_OUTCOMES,
    TOKEN_OUTCOMES,
    error_for_aws,
    error_for_status,
    error_for_storage,
    transient_aws_error,
)
from tao_results.errors import PermanentError, TransientError
from tao_results.headers import parse_retry_after


@pytest.mark.parametrize(
    ("status", "family", "reason"),
    [
        (404, PermanentError, "not_found"),
        (403, PermanentError, "insufficient_scope"),
        (400, PermanentError, "bad_request"),
        (401, TransientError, "unauthorized"),
        (429, TransientError, "throttled"),
        (500, TransientError, "server_error"),
        (502, TransientError, "server_error"),
        (503, TransientError, "server_error"),
        (418, PermanentError, "unexpected_status"),
        (302, PermanentError, "unexpected_status"),
    ],
)
def test_download_api_classification(status, family, reason):
    error = error_for_status(status, DOWNLOAD_API_OUTCOMES, "detail")
    assert type(error) is family
    assert error.reason == reason
    assert error.http_status == status


@pytest.mark.parametrize(
    ("status", "family", "reason"),
    [
        (403, TransientError, "signed_url_expired"),
        (500, TransientError, "server_error"),
        (503, TransientError, "server_error"),
        (404, TransientError, "storage_not_found"),
        (400, PermanentError, "storage_bad_request"),
    ],
)
def test_storage_classification(status, family, reason):
    error = error_for_status(status, STORAGE_OUTCOMES, "detail")
    assert type(error) is family
    assert error.reason == reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 415, 429, 500])
def test_token_endpoint_failures_never_dead_letter(status):
    assert isinstance(error_for_status(status, TOKEN_OUTCOMES, "x"), TransientError)


def test_retry_after_travels_with_a_transient_error():
    error = error_for_status(429, DOWNLOAD_API_OUTCOMES, "slow down", retry_after=7)
    assert isinstance(error, TransientError)
    assert error.retry_after == 7


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("AccessDenied", TransientError),
        ("NoSuchBucket", TransientError),
        ("SlowDown", TransientError),
        ("InternalError", TransientError),
        ("EntityTooLarge", PermanentError),
        ("InvalidArgument", PermanentError),
    ],
)
def test_aws_error_codes(code, family):
    error = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "x"
    )
    assert type(error_for_aws("PutObject", error)) is family


def test_an_aws_failure_names_the_operation_and_code_never_the_message():
    quoting = ClientError(
        {
            "Error": {"Code": "InvalidToken", "Message": "Invalid token: tok-SECRET"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "SendTaskSuccess",
    )
    error = transient_aws_error("SendTaskSuccess", quoting, "callback_failed")
    assert (error.reason, error.detail, error.http_status) == (
        "callback_failed",
        "SendTaskSuccess failed: InvalidToken",
        400,
    )
    timeout = transient_aws_error(
        "GetSecretValue", ReadTimeoutError(endpoint_url="https://x"), "credentials_unavailable"
    )
    assert (timeout.detail, timeout.http_status) == ("GetSecretValue failed: ReadTimeoutError", None)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-2", 0.0),
        ("nan", None),
        ("soon", None),
        ("99999", 900.0),
    ],
)
def test_retry_after_delta_seconds(header, expected):
    assert parse_retry_after(header) == expected


def test_retry_after_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None
    assert 25 <= seconds <= 31


@pytest.mark.parametrize(
    ("status", "code", "message", "family", "reason"),
    [
        (400, "ExpiredToken", "The provided token has expired.", TransientError, "signed_url_expired"),
        (
            400,
            "TokenRefreshRequired",
            "The provided token must be refreshed.",
            TransientError,
            "signed_url_expired",
        ),
        (403, "AccessDenied", "Request has expired", TransientError, "signed_url_expired"),
        (403, "AccessDenied", "Access Denied", TransientError, "storage_access_denied"),
        (400, "InvalidToken", "malformed", TransientError, "signed_url_invalid"),
        (403, "SignatureDoesNotMatch", "", TransientError, "signed_url_invalid"),
        (403, "InvalidAccessKeyId", "", TransientError, "signed_url_invalid"),
        (403, "RequestTimeTooSkewed", "", TransientError, "signed_url_invalid"),
        (400, "AuthorizationQueryParametersError", "", PermanentError, "storage_bad_request"),
        (403, "InvalidObjectState", "", PermanentError, "storage_object_archived"),
        (400, "RequestTimeout", "", TransientError, "timeout"),
        (503, "SlowDown", "", TransientError, "storage_throttled"),
        (404, "NoSuchKey", "", TransientError, "storage_not_found"),
        # Unknown codes and no code fall back to the status table.
        (400, "InvalidRequest", "", PermanentError, "storage_bad_request"),
        (400, None, None, PermanentError, "storage_bad_request"),
        (403, None, None, TransientError, "signed_url_expired"),
        (500, "Whatever", "", TransientError, "server_error"),
    ],
)
def test_storage_answers_are_classified_by_their_s3_error_code(status, code, message, family, reason):
    error = error_for_storage(status, code, message, "detail", retry_after=3)
    assert type(error) is family
    assert (error.reason, error.http_status) == (reason, status)


def test_every_storage_error_code_row_names_a_code_and_a_reason():
    for key, outcome in STORAGE_ERROR_CODES.items():
        code = key.split(": ", 1)[0]
        assert code.isascii() and code.isalnum(), key
        assert outcome.reason
