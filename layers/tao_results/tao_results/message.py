"""SQS message body → a typed request. Anything that is not a valid request is a malformed message.

The body is one of three envelopes (see README, "Integrations"):

* ``direct``: the request object itself, ``{"referenceId": ...}``;
* ``sns``: an SNS notification delivered to SQS without raw message delivery: ``"Type":
  "Notification"`` and the request JSON, as a string, in ``"Message"`` (SNS developer guide,
  "Amazon SNS message and JSON formats");
* ``eventbridge``: an EventBridge event sent to an SQS target: ``source``, ``detail-type`` and the
  request object in ``detail`` (EventBridge user guide, "Amazon EventBridge events").

A dead letter of ours moved back to the source queue (``tao-results dlq redrive``, SQS's
``StartMessageMoveTask``) is read through: its whole ``originalBody`` is the request again, in
whichever envelope it came, so its ``taskToken`` and ``passthrough`` still count, and the request
keeps that body (:attr:`Request.original_body`) for a dead letter that does not nest the old one.
A truncated dead letter (``originalBodyTruncated``) has lost the rest of the body: its top-level
``referenceId`` is the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tao_results.errors import PermanentError

REFERENCE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Step Functions task tokens are 1-2048 characters (SendTaskSuccess API reference, taskToken).
MAX_TASK_TOKEN_CHARS = 2048
MAX_PASSTHROUGH_BYTES = 4096

ENVELOPE_DIRECT = "direct"
ENVELOPE_SNS = "sns"
ENVELOPE_EVENTBRIDGE = "eventbridge"


@dataclass(frozen=True)
class Request:
    """One request: ``reference_id`` as text, an optional Step Functions ``task_token``, and an
    opaque ``passthrough`` JSON value (``None`` when absent) echoed in every event and callback."""

    reference_id: str
    task_token: str | None = None
    passthrough: Any = None
    envelope: str = ENVELOPE_DIRECT
    # The body the request was first sent in, when it came back inside one of our dead letters.
    original_body: str | None = None


class MalformedRequest(PermanentError):
    """``malformed_message``, carrying whatever could still be read: a valid ``reference_id`` is
    still named in the dead letter, a valid ``task_token`` lets the waiting workflow be told, a
    valid ``passthrough`` is still echoed."""

    def __init__(
        self,
        detail: str,
        task_token: str | None = None,
        passthrough: Any = None,
        reference_id: str | None = None,
    ) -> None:
        super().__init__("malformed_message", detail)
        self.reference_id = reference_id
        self.task_token = task_token
        self.passthrough = passthrough
        self.original_body: str | None = None  # as Request.original_body


def is_valid_reference_id(value: object) -> bool:
    return isinstance(value, str) and REFERENCE_ID_PATTERN.fullmatch(value) is not None


def parse_request(body: object) -> Request:
    """The request in an SQS body, whichever envelope carries it; raises :class:`MalformedRequest`."""
    payload = _json_object(body, "the body")
    original = _redriven_body(payload)
    if original is not None:
        # A letter of a letter (sent before this read-through) gives the innermost body.
        try:
            inner = parse_request(original)
        except MalformedRequest as malformed:
            malformed.original_body = malformed.original_body or original
            raise
        return replace(inner, original_body=inner.original_body or original)
    envelope = ENVELOPE_DIRECT
    if payload.get("Type") == "Notification" and "Message" in payload:
        envelope = ENVELOPE_SNS
        payload = _json_object(payload["Message"], "the SNS notification's Message")
    elif "detail-type" in payload and "source" in payload and "detail" in payload:
        envelope = ENVELOPE_EVENTBRIDGE
        if not isinstance(payload["detail"], dict):
            raise MalformedRequest("the EventBridge event's detail must be a JSON object")
        payload = payload["detail"]
    return _request(payload, envelope)


def is_dead_letter(payload: Mapping[str, Any]) -> bool:
    """Whether a JSON object is one of the function's dead letters (``dead_letters.dead_letter_body``
    always writes ``reason``, ``originalBody``, ``messageId`` and ``failedAt``)."""
    return {"reason", "originalBody", "messageId", "failedAt"} <= payload.keys()


def _redriven_body(payload: dict[str, Any]) -> str | None:
    """The ``originalBody`` of one of our dead letters (see dead_letters), whole; else None."""
    original = payload.get("originalBody")
    if (
        is_dead_letter(payload)
        and isinstance(original, str)
        and payload.get("originalBodyTruncated") is not True
    ):
        return original
    return None


def _request(payload: dict[str, Any], envelope: str) -> Request:
    # The two optional fields first, so that a bad referenceId can still be reported to them.
    task_token, token_problem = _task_token(payload)
    passthrough, passthrough_problem = _passthrough(payload)
    problem = token_problem or passthrough_problem
    reference_id = payload.get("referenceId")
    if isinstance(reference_id, int) and not isinstance(reference_id, bool) and reference_id >= 0:
        reference_id = str(reference_id)  # the vendor's own example id is the number 12345
    if not isinstance(reference_id, str):
        problem = problem or "the body has no string or non-negative integer 'referenceId'"
    elif not is_valid_reference_id(reference_id):
        problem = problem or "referenceId does not match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
    if problem is not None:
        valid_id = reference_id if is_valid_reference_id(reference_id) else None
        raise MalformedRequest(problem, task_token, passthrough, valid_id)
    assert isinstance(reference_id, str)
    return Request(reference_id, task_token, passthrough, envelope)


def _task_token(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    token = payload.get("taskToken")
    if token is None:
        return None, None
    if not isinstance(token, str) or not 1 <= len(token) <= MAX_TASK_TOKEN_CHARS:
        return None, f"taskToken must be a string of 1-{MAX_TASK_TOKEN_CHARS} characters"
    return token, None


def _passthrough(payload: dict[str, Any]) -> tuple[Any, str | None]:
    value = payload.get("passthrough")
    try:
        # allow_nan=False: NaN/Infinity are not JSON, and the value must travel in JSON events.
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
    except (ValueError, RecursionError):
        return None, "passthrough is not serialisable JSON"
    if size > MAX_PASSTHROUGH_BYTES:
        return None, f"passthrough is {size} bytes serialised, more than {MAX_PASSTHROUGH_BYTES}"
    return value, None


def _json_object(text: object, what: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise MalformedRequest(f"{what} is not text")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedRequest(f"{what} is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedRequest(f"{what} must be a JSON object, got {type(payload).__name__}")
    return payload
