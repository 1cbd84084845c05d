"""The two failure families every record's failure belongs to.

A :class:`PermanentError` means retrying cannot help: the message is dead-lettered with ``reason``.
A :class:`TransientError` means it may work later: the message goes back to the queue for a retry.
Everything raised by HTTP or AWS clients is translated at the edge, with ``raise ... from``, by
the tables in :mod:`tao_results.classification`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class ProcessingError(Exception):
    """A failure to process one record, with a machine-readable reason."""

    def __init__(self, reason: str, detail: str, http_status: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.http_status = http_status


class PermanentError(ProcessingError):
    """Retrying cannot help: dead-letter the message."""


class TransientError(ProcessingError):
    """May succeed later: leave the message for a retry (after ``retry_after`` seconds if known)."""

    def __init__(
        self,
        reason: str,
        detail: str,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, detail, http_status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class AwsErrorDetails:
    """What a botocore ``ClientError`` says: its error ``code`` and ``message``, and the HTTP status."""

    code: str
    message: str
    status: int | None


def aws_error_details(error: BaseException) -> AwsErrorDetails:
    """The ``Error.Code``/``Error.Message`` and HTTP status of a botocore ``ClientError``.

    Anything else (a ``BotoCoreError``, a bug) gives code ``"Unknown"``. Duck-typed on
    ``error.response`` so that this module does not import botocore at cold start.
    """
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return AwsErrorDetails("Unknown", "", None)
    details = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return AwsErrorDetails(
        str(details.get("Code") or "Unknown"),
        str(details.get("Message") or ""),
        status if isinstance(status, int) else None,
    )
