"""The event and callback payloads, and who is told what (pure logic; the wire is in
tests/integration/test_integrations.py)."""

from typing import Any

from tao_results.announcements import (
    DEAD_LETTERED,
    STORED,
    Announcer,
    StoredResult,
    dead_lettered_detail,
)
from tao_results.errors import PermanentError
from tao_results.redaction import SECRETS
from tao_results.s3_upload import CopyResult


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def put(self, detail_type: str, detail: Any) -> None:
        self.calls.append(("put", (detail_type, dict(detail))))

    def succeed(self, token: str, output: Any) -> None:
        self.calls.append(("succeed", (token, dict(output))))

    def fail(self, token: str, error: str, cause: str) -> None:
        self.calls.append(("fail", (token, error, cause)))


def test_stored_detail_leaves_out_what_does_not_apply():
    single = StoredResult(CopyResult("k", 3, 1, 0.1, sha256="ab"), "text/csv", None, unchanged=False)
    assert single.detail("r", "b", "m", None) == {
        "referenceId": "r",
        "bucket": "b",
        "key": "k",
        "size": 3,
        "contentType": "text/csv",
        "contentEncoding": None,
        "sha256": "ab",
        "messageId": "m",
        "passthrough": None,
        "unchanged": False,
    }
    multipart = StoredResult(
        CopyResult("k", 3, 2, 0.1, checksum_crc32="AAAA-2", version_id="v1"), "x/y", "gzip", unchanged=True
    )
    detail = multipart.detail("r", "b", "m", {"p": 1})
    assert "sha256" not in detail
    assert (detail["checksumCRC32"], detail["versionId"], detail["contentEncoding"]) == (
        "AAAA-2",
        "v1",
        "gzip",
    )
    assert detail["unchanged"] is True


def test_dead_lettered_detail_is_scrubbed():
    SECRETS.add("super-secret-value")
    error = PermanentError("not_found", "echoed super-secret-value back", 404)
    detail = dead_lettered_detail("r", error, "m", [1])
    assert detail == {
        "referenceId": "r",
        "reason": "not_found",
        "httpStatus": 404,
        "detail": "echoed *** back",
        "messageId": "m",
        "passthrough": [1],
    }


def test_events_then_callbacks_and_only_what_is_configured():
    recorder = Recorder()
    warnings: list[str] = []
    both = Announcer(recorder, recorder, warn=warnings.append)  # type: ignore[arg-type]
    both.stored({"referenceId": "r"}, "tok")
    both.dead_lettered({"reason": "not_found", "detail": "gone"}, "tok")
    both.stored({"referenceId": "r"}, None)
    assert recorder.calls == [
        ("put", (STORED, {"referenceId": "r"})),
        ("succeed", ("tok", {"referenceId": "r"})),
        ("put", (DEAD_LETTERED, {"reason": "not_found", "detail": "gone"})),
        ("fail", ("tok", "not_found", "gone")),
        ("put", (STORED, {"referenceId": "r"})),
    ]
    assert warnings == []

    nothing = Announcer(warn=warnings.append)
    nothing.stored({"referenceId": "r"}, "tok")
    assert len(warnings) == 1
    assert "STEP_FUNCTIONS_CALLBACKS" in warnings[0]
    assert "tok" not in warnings[0]
