"""The object's headers and metadata, from what the storage answered."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tao_results.object_attributes import object_attributes


def body(**overrides: Any) -> Any:
    answer = {
        "content_type": "text/csv",
        "content_encoding": None,
        "filename": "import 1.csv",
        "etag": '"9b2cf535f27731c974343645a3985328"',
        "expected_length": 1234,
    }
    return SimpleNamespace(**{**answer, **overrides})


def test_every_header_and_metadata_entry_of_a_complete_answer() -> None:
    attributes = object_attributes("ref-1", body(content_encoding="gzip"))
    assert attributes.fields == {
        "ContentType": "text/csv",
        "ContentEncoding": "gzip",
        "ContentDisposition": "attachment; filename=\"import_1.csv\"; filename*=UTF-8''import%201.csv",
    }
    assert attributes.metadata == {
        "reference-id": "ref-1",
        "source": "tao-advance",
        "source-content-encoding": "gzip",
        "source-etag": '"9b2cf535f27731c974343645a3985328"',
        "source-content-length": "1234",
    }


def test_what_the_storage_did_not_say_is_left_out() -> None:
    attributes = object_attributes("ref-2", body(etag=None, expected_length=None))
    assert "ContentEncoding" not in attributes.fields
    assert attributes.metadata == {"reference-id": "ref-2", "source": "tao-advance"}
