"""SQS message body → referenceId. Anything that is not a valid request is a malformed message."""

from __future__ import annotations

import json
import re

from tao_results.errors import PermanentError

REFERENCE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_valid_reference_id(value: object) -> bool:
    return isinstance(value, str) and REFERENCE_ID_PATTERN.fullmatch(value) is not None


def reference_id_from_body(body: object) -> str:
    """The referenceId of a body ``{"referenceId": "<id>", ...}``; other keys are ignored."""
    if not isinstance(body, str):
        raise _malformed("the message has no text body")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise _malformed("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise _malformed(f"the body must be a JSON object, got {type(payload).__name__}")
    reference_id = payload.get("referenceId")
    if not isinstance(reference_id, str):
        raise _malformed("the body has no string 'referenceId'")
    if not is_valid_reference_id(reference_id):
        raise _malformed("referenceId does not match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    return reference_id


def _malformed(detail: str) -> PermanentError:
    return PermanentError("malformed_message", detail)
