"""What the S3 object carries besides its bytes: its headers and its user metadata, decided here.

Headers (PutObject / CreateMultipartUpload): ``ContentType`` and ``ContentEncoding`` as the storage
answered them (the bytes are stored as sent, a gzip stays a gzip), and ``ContentDisposition``
``attachment`` with the object's safe filename (:mod:`tao_results.naming`).

User metadata (``x-amz-meta-*``, S3 User Guide, "Working with object metadata"):

- ``reference-id`` and ``source`` (``tao-advance``): where the object came from;
- ``source-content-encoding``: the storage's Content-Encoding, when it sent one;
- ``source-etag`` and ``source-content-length``: the storage answer's ETag and length, so a
  redelivery recognises the result already stored (:mod:`tao_results.unchanged`);
- ``sha256``: the hex SHA-256 of the bytes, single-PutObject objects only; :mod:`tao_results.s3_upload`
  adds it, being the one that holds all the bytes before the call (multipart objects carry S3's
  composite ``ChecksumCRC32`` instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from tao_results.naming import object_content_disposition

if TYPE_CHECKING:
    from tao_results.result_download import ResultBody

SOURCE = "tao-advance"
SOURCE_ETAG = "source-etag"
SOURCE_CONTENT_LENGTH = "source-content-length"
SHA256 = "sha256"


class ObjectFields(TypedDict, total=False):
    """The headers as PutObject and CreateMultipartUpload take them."""

    ContentType: str
    ContentEncoding: str
    ContentDisposition: str


@dataclass(frozen=True)
class ObjectAttributes:
    fields: ObjectFields
    metadata: dict[str, str]


def object_attributes(reference_id: str, body: ResultBody) -> ObjectAttributes:
    """The headers and metadata of the object that stores ``body`` (empty values left out)."""
    fields: ObjectFields = {
        "ContentType": body.content_type,
        "ContentDisposition": object_content_disposition(body.filename),
    }
    metadata = {"reference-id": reference_id, "source": SOURCE}
    if body.content_encoding is not None:
        fields["ContentEncoding"] = body.content_encoding
        metadata["source-content-encoding"] = body.content_encoding
    if body.etag:
        metadata[SOURCE_ETAG] = body.etag
    if body.expected_length is not None:
        metadata[SOURCE_CONTENT_LENGTH] = str(body.expected_length)
    return ObjectAttributes(fields, metadata)
