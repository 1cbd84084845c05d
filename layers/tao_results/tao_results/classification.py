"""The tables that map every answer we receive onto the two failure families (see ``errors``).

One readable table per source: the Download API's statuses, the storage's statuses and S3 error
codes, the token endpoint's statuses, and the AWS error codes that retrying cannot fix. The README's
classification table says the same in prose; ``tests/unit/test_errors.py`` checks each row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tao_results.errors import PermanentError, ProcessingError, TransientError, aws_error_details


@dataclass(frozen=True)
class Outcome:
    permanent: bool
    reason: str


PERMANENT = True
TRANSIENT = False

# Download API (GET {TAO_BASE_URL}{TAO_DOWNLOAD_PATH}). 401 never reaches this table on its first
# occurrence: the client refreshes the token once and retries (see tao_client).
DOWNLOAD_API_OUTCOMES: Mapping[int, Outcome] = {
    400: Outcome(PERMANENT, "bad_request"),
    401: Outcome(TRANSIENT, "unauthorized"),
    403: Outcome(PERMANENT, "insufficient_scope"),
    404: Outcome(PERMANENT, "not_found"),
    408: Outcome(TRANSIENT, "timeout"),
    409: Outcome(TRANSIENT, "conflict"),
    429: Outcome(TRANSIENT, "throttled"),
}

# The signed URL's storage (an S3-style presigned GET). 403 is what an expired URL answers: it is
# fixed by the next attempt, which asks the Download API for a fresh URL, not by dead-lettering.
STORAGE_OUTCOMES: Mapping[int, Outcome] = {
    400: Outcome(PERMANENT, "storage_bad_request"),
    403: Outcome(TRANSIENT, "signed_url_expired"),
    404: Outcome(TRANSIENT, "storage_not_found"),
    408: Outcome(TRANSIENT, "timeout"),
    429: Outcome(TRANSIENT, "storage_throttled"),
}

# Storage answers carrying an S3 error code (``<Error><Code>``, S3 API Reference "Error responses",
# "List of error codes"): the code decides, the status table above is the fallback. A key
# "Code: Message" matches that exact message first. Credentials and signature problems are all
# transient: the next attempt asks the Download API for a fresh URL, signed afresh.
STORAGE_ERROR_CODES: Mapping[str, Outcome] = {
    # The session credentials behind the signature expired: a fresh URL is signed with fresh ones.
    "ExpiredToken": Outcome(TRANSIENT, "signed_url_expired"),
    # The signer's session token must be refreshed: same cure, a freshly signed URL.
    "TokenRefreshRequired": Outcome(TRANSIENT, "signed_url_expired"),
    # S3's answer to a presigned URL used after X-Amz-Expires.
    "AccessDenied: Request has expired": Outcome(TRANSIENT, "signed_url_expired"),
    # Some S3-compatible stores name the expired presigned URL so.
    "RequestExpired": Outcome(TRANSIENT, "signed_url_expired"),
    # The session token in the URL is malformed or revoked: a fresh URL carries the current one.
    "InvalidToken": Outcome(TRANSIENT, "signed_url_invalid"),
    # We send the URL byte for byte, so a mismatch is the signer's (e.g. mid key rotation).
    "SignatureDoesNotMatch": Outcome(TRANSIENT, "signed_url_invalid"),
    # The signing key was deleted or rotated away: a fresh URL is signed with the current key.
    "InvalidAccessKeyId": Outcome(TRANSIENT, "signed_url_invalid"),
    # The security credentials are not valid (older S3 wording of the same fault).
    "InvalidSecurity": Outcome(TRANSIENT, "signed_url_invalid"),
    # The signer's clock is off by more than 15 minutes; a later URL may be within the window.
    "RequestTimeTooSkewed": Outcome(TRANSIENT, "signed_url_invalid"),
    # The signer lacks s3:GetObject or a policy denies it: fixed on TAO's side, and like a rejected
    # client secret it must not empty the queue into the DLQ (maxReceiveCount still bounds it).
    "AccessDenied": Outcome(TRANSIENT, "storage_access_denied"),
    # The account behind the bucket is disabled or has a problem: TAO's side, as above.
    "AllAccessDisabled": Outcome(TRANSIENT, "storage_access_denied"),
    "AccountProblem": Outcome(TRANSIENT, "storage_access_denied"),
    # The signing parameters are malformed (X-Amz-Expires over 7 days, wrong region in the scope):
    # every URL from the same signer has the same fault.
    "AuthorizationQueryParametersError": Outcome(PERMANENT, "storage_bad_request"),
    # The object is archived (S3 Glacier classes) and must be restored first: not ours to do.
    "InvalidObjectState": Outcome(PERMANENT, "storage_object_archived"),
    # The connection idled past S3's timeout: a network matter.
    "RequestTimeout": Outcome(TRANSIENT, "timeout"),
    # S3 asks for a lower request rate (503) or is briefly unavailable.
    "SlowDown": Outcome(TRANSIENT, "storage_throttled"),
    "ServiceUnavailable": Outcome(TRANSIENT, "server_error"),
    "InternalError": Outcome(TRANSIENT, "server_error"),
    # Not there (yet): retried with a fresh URL, as the status table does for 404.
    "NoSuchKey": Outcome(TRANSIENT, "storage_not_found"),
    "NoSuchBucket": Outcome(TRANSIENT, "storage_not_found"),
}

# Storage answers that no status or code describes, each permanent: the same URL's storage would
# answer the same way again.
INVALID_STORAGE_RESPONSE = Outcome(PERMANENT, "invalid_storage_response")  # e.g. Content-Length "+5"
TOO_MANY_REDIRECTS = Outcome(PERMANENT, "storage_too_many_redirects")  # more than 5 hops, or a loop
UNUSABLE_REDIRECT = Outcome(PERMANENT, "storage_bad_redirect")  # no Location and no <Endpoint>

# Token endpoint. A rejected client is transient on purpose: the secret may be mid-rotation, and a
# wrong secret must not dead-letter every message in the queue; SQS's redrive policy still bounds it.
# 415 is how some endpoints refuse a client-authentication form they do not take (a wrong
# TAO_TOKEN_AUTH_METHOD): a deployment to fix, not a bad message.
TOKEN_OUTCOMES: Mapping[int, Outcome] = {
    400: Outcome(TRANSIENT, "credentials_rejected"),
    401: Outcome(TRANSIENT, "credentials_rejected"),
    403: Outcome(TRANSIENT, "credentials_rejected"),
    415: Outcome(TRANSIENT, "credentials_rejected"),
    # A token endpoint that does not exist at TAO_TOKEN_URL, or refuses POST, is a deployment to
    # fix (a mistyped URL), not a bad message: dead-lettering would empty the queue into the DLQ.
    404: Outcome(TRANSIENT, "token_endpoint_unusable"),
    405: Outcome(TRANSIENT, "token_endpoint_unusable"),
    429: Outcome(TRANSIENT, "token_throttled"),
}

SERVER_ERROR = Outcome(TRANSIENT, "server_error")
UNEXPECTED_STATUS = Outcome(PERMANENT, "unexpected_status")

# S3 error codes (botocore ClientError) of the results bucket that retrying cannot fix. Every other
# AWS error, including AccessDenied and NoSuchBucket (a deployment being fixed), is transient: the
# message is kept.
PERMANENT_AWS_ERROR_CODES: Mapping[str, str] = {
    "EntityTooLarge": "result_too_large",
    "InvalidArgument": "s3_rejected_request",
    "KeyTooLongError": "s3_rejected_request",
}


def classify_status(status: int, table: Mapping[int, Outcome]) -> Outcome:
    """The outcome of an HTTP status that is not a success, for one of the tables above."""
    if status in table:
        return table[status]
    if status >= 500:
        return SERVER_ERROR
    return UNEXPECTED_STATUS


def error_for_status(
    status: int,
    table: Mapping[int, Outcome],
    detail: str,
    retry_after: float | None = None,
) -> ProcessingError:
    outcome = classify_status(status, table)
    if outcome.permanent:
        return PermanentError(outcome.reason, detail, status)
    return TransientError(outcome.reason, detail, status, retry_after)


def storage_outcome(status: int, code: str | None, message: str | None) -> Outcome:
    """A storage answer's outcome: its S3 error code if known (STORAGE_ERROR_CODES), else its status."""
    if code:
        for key in (f"{code}: {(message or '').strip()}", code):
            if key in STORAGE_ERROR_CODES:
                return STORAGE_ERROR_CODES[key]
    return classify_status(status, STORAGE_OUTCOMES)


def error_for_storage(
    status: int, code: str | None, message: str | None, detail: str, retry_after: float | None = None
) -> ProcessingError:
    outcome = storage_outcome(status, code, message)
    if outcome.permanent:
        return PermanentError(outcome.reason, detail, status)
    return TransientError(outcome.reason, detail, status, retry_after)


def transient_aws_error(operation: str, error: BaseException, reason: str) -> TransientError:
    """A failed AWS call (a botocore ``ClientError`` or ``BotoCoreError``) as ``TransientError(reason)``.

    The detail is ``"<operation> failed: <error code>"`` (a ``BotoCoreError``, which has no answer:
    its class, e.g. ``ReadTimeoutError``), with the answer's HTTP status; never the error's
    message, which may quote what was sent (a task token, an object key, metadata) and ends in
    logs, events and dead letters.
    """
    details = aws_error_details(error)
    code = type(error).__name__ if details.code == "Unknown" else details.code
    return TransientError(reason, f"{operation} failed: {code}", details.status)


def error_for_aws(operation: str, error: BaseException) -> ProcessingError:
    """A failed S3 call on the results bucket: permanent for ``PERMANENT_AWS_ERROR_CODES``, else
    transient ``aws_unavailable`` (see :func:`transient_aws_error`)."""
    transient = transient_aws_error(operation, error, "aws_unavailable")
    code = aws_error_details(error).code
    if code in PERMANENT_AWS_ERROR_CODES:
        return PermanentError(PERMANENT_AWS_ERROR_CODES[code], transient.detail, transient.http_status)
    return transient
