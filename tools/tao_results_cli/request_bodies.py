"""The SQS bodies ``tao-results enqueue`` sends, in each shape the function accepts.

A request is ``{"referenceId": ..., "taskToken": ..., "passthrough": ...}`` (the last two optional),
carried in one of three envelopes (README, "Integrations"; ``tao_results.message``): ``direct``
(the request itself), ``sns`` (an SNS notification as SQS receives it without raw message delivery:
``"Type": "Notification"``, the request as JSON text in ``"Message"``; SNS developer guide, "Amazon
SNS message and JSON formats") and ``eventbridge`` (an EventBridge event sent to an SQS target, the
request object in ``"detail"``; EventBridge user guide, "Amazon EventBridge events").

Every body is read back with the function's own parser (:func:`tao_results.message.parse_request`)
before anything is sent, so what is sent is exactly what the function accepts, as intended.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tao_results.errors import PermanentError
from tao_results.message import (
    ENVELOPE_DIRECT,
    ENVELOPE_EVENTBRIDGE,
    ENVELOPE_SNS,
    MalformedRequest,
    Request,
    parse_request,
)

ENVELOPES = (ENVELOPE_DIRECT, ENVELOPE_SNS, ENVELOPE_EVENTBRIDGE)
DEFAULT_EVENT_SOURCE = "tao-results.cli"
DEFAULT_DETAIL_TYPE = "TAO Result Requested"
_ABSENT = object()


class RequestRefused(ValueError):
    """A request the function would not accept as meant; the message says why, in one line."""


@dataclass(frozen=True)
class RequestShape:
    """How to build every body of one ``enqueue``: the same envelope and optional fields for each.

    ``numeric_ids``: send each referenceId as a JSON number (the vendor's own example id is the
    number 12345); only digit strings without leading zeros qualify, so the number reads back as
    the same id. ``passthrough`` is any JSON value (``None`` is JSON ``null``); left at its default
    there is no such field. ``account`` and ``region`` fill an EventBridge event's fields of the same name.
    """

    envelope: str = ENVELOPE_DIRECT
    numeric_ids: bool = False
    task_token: str | None = None
    passthrough: Any = _ABSENT
    event_source: str = DEFAULT_EVENT_SOURCE
    detail_type: str = DEFAULT_DETAIL_TYPE
    account: str = ""
    region: str = ""

    @property
    def has_passthrough(self) -> bool:
        return self.passthrough is not _ABSENT


def request_object(reference_id: str, shape: RequestShape) -> dict[str, Any]:
    """The request (before any envelope) for one referenceId."""
    request: dict[str, Any] = {"referenceId": _reference_value(reference_id, shape.numeric_ids)}
    if shape.task_token is not None:
        request["taskToken"] = shape.task_token
    if shape.has_passthrough:
        request["passthrough"] = shape.passthrough
    return request


def request_body(
    reference_id: str,
    shape: RequestShape,
    *,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str:
    """The SQS body for one referenceId, checked with the function's parser; raises
    :class:`RequestRefused` when the function would refuse it or read something else."""
    request = request_object(reference_id, shape)
    try:
        text = json.dumps(request, ensure_ascii=False, allow_nan=False)
    except ValueError as error:
        raise RequestRefused(f"{reference_id}: the request is not JSON: {error}") from None
    body = _envelope(text, request, shape, new_id(), now())
    try:
        parsed = parse_request(body)
    except MalformedRequest as error:
        raise RequestRefused(f"{reference_id}: the function would dead-letter it: {error.detail}") from None
    expected = Request(
        reference_id, shape.task_token, shape.passthrough if shape.has_passthrough else None, shape.envelope
    )
    if parsed != expected:
        raise RequestRefused(f"{reference_id}: the function would read {parsed}, not {expected}")
    return body


def _reference_value(reference_id: str, numeric: bool) -> str | int:
    if not numeric:
        return reference_id
    if not reference_id.isascii() or not reference_id.isdigit():
        raise RequestRefused(f"--numeric-ids: {reference_id!r} is not a non-negative integer")
    if reference_id != str(int(reference_id)):
        raise RequestRefused(f"--numeric-ids: {reference_id!r} has leading zeros a number would lose")
    return int(reference_id)


def _envelope(text: str, request: dict[str, Any], shape: RequestShape, message_id: str, at: datetime) -> str:
    if shape.envelope == ENVELOPE_DIRECT:
        return text
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if shape.envelope == ENVELOPE_SNS:
        # Unsigned: the function reads Type and Message only (SNS signs what it delivers itself).
        notification = {"Type": "Notification", "MessageId": message_id, "Message": text, "Timestamp": stamp}
        return json.dumps(notification, ensure_ascii=False)
    if shape.envelope == ENVELOPE_EVENTBRIDGE:
        event = {
            "version": "0",
            "id": message_id,
            "detail-type": shape.detail_type,
            "source": shape.event_source,
            "account": shape.account,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": shape.region,
            "resources": [],
            "detail": request,
        }
        return json.dumps(event, ensure_ascii=False)
    raise RequestRefused(f"unknown envelope {shape.envelope!r}: one of {', '.join(ENVELOPES)}")


def reference_id_of(body: str) -> str | None:
    """The ``referenceId`` of a request body, or ``None`` when it is not a valid request.

    The function's own parser (:func:`tao_results.message.parse_request`): the same envelopes
    (direct, SNS, EventBridge) and the same rules, so the tools never disagree with the function.
    """
    try:
        return parse_request(body).reference_id
    except PermanentError:
        return None
