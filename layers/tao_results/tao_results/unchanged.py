"""Redelivery without a second upload: is the object at the key already this very result?

Every upload stores the storage answer's ``ETag`` and ``Content-Length`` as the object's metadata
``source-etag`` and ``source-content-length`` (see :mod:`tao_results.object_attributes`). When a
message comes back (a failed event or callback after the upload, a lost batch response), a
HeadObject on the key tells whether the object is already the same result; then the download is
closed after its headers and nothing is uploaded.
"""

from __future__ import annotations

from tao_results.errors import TransientError
from tao_results.object_attributes import SHA256, SOURCE_CONTENT_LENGTH, SOURCE_ETAG
from tao_results.result_download import ResultBody
from tao_results.s3_upload import CopyResult, S3Calls

# HeadObject answers 403, not 404, for a missing key when the role may not s3:ListBucket (S3 API
# reference, HeadObject "Permissions"): the role is not granted a bucket-wide listing for this, so
# both mean "not known to be there", and the result is uploaded as it would be without the check.
_ABSENT_STATUSES = (403, 404)


def stored_copy(calls: S3Calls, key: str, body: ResultBody) -> CopyResult | None:
    """The object at ``key`` if it carries ``body``'s ETag and length, else None (upload it).

    Without an ETag or a Content-Length in the storage answer nothing can be compared: None.
    Raises TransientError when S3 fails otherwise (the record is retried).
    """
    if not body.etag or body.expected_length is None:
        return None
    try:
        head = calls.run(
            "HeadObject", lambda s3, bucket: s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        )
    except TransientError as error:
        if error.http_status in _ABSENT_STATUSES:
            return None
        raise
    metadata = head.get("Metadata") or {}
    if (
        metadata.get(SOURCE_ETAG) != body.etag
        or metadata.get(SOURCE_CONTENT_LENGTH) != str(body.expected_length)
        or head.get("ContentLength") != body.expected_length
    ):
        return None
    return CopyResult(
        key,
        int(head["ContentLength"]),
        0,
        0.0,
        sha256=metadata.get(SHA256),
        checksum_crc32=head.get("ChecksumCRC32"),
        version_id=head.get("VersionId"),
    )
