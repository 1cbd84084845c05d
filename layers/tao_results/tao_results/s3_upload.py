"""Streaming a result into S3 with bounded memory, whatever its size.

Bodies smaller than one part go up in a single PutObject (with a SHA-256 that S3 verifies). Larger
ones go up as a multipart upload: parts are read into reusable buffers and uploaded by a shared
pool while the next part downloads. A container-wide :class:`PartBuffers` budget bounds the bytes
held at once across every record. Any failure aborts the upload, so no object and no open upload
is left behind; success replaces the key atomically, so a redelivered message yields one object.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from tao_results import memory_budget
from tao_results.classification import error_for_aws
from tao_results.deadline import Deadline, deadline_scope
from tao_results.errors import PermanentError, ProcessingError, TransientError
from tao_results.object_attributes import SHA256, ObjectAttributes
from tao_results.result_download import ResultBody

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CompleteMultipartUploadOutputTypeDef,
        PutObjectOutputTypeDef,
    )

T = TypeVar("T")

S3_MAX_PARTS = memory_budget.S3_MAX_PARTS
S3_MAX_PART_SIZE = memory_budget.S3_MAX_PART_SIZE


def part_size_for(
    expected_length: int | None, configured_part_size: int, max_part_size: int = S3_MAX_PART_SIZE
) -> int:
    """The configured size, grown (in whole MiB) only as far as the 10,000-part limit requires.

    ``max_part_size``: the largest part the function's memory holds (memory_budget.largest_part);
    a result needing larger parts is refused before anything is read.
    """
    size = memory_budget.part_size_for(expected_length, configured_part_size, max_part_size)
    if size is None:
        limit = S3_MAX_PARTS * min(max_part_size, S3_MAX_PART_SIZE)
        where = "S3 accepts" if max_part_size >= S3_MAX_PART_SIZE else "fits the function's memory"
        raise PermanentError(
            "result_too_large", f"{expected_length} bytes exceed what {where} ({limit} bytes in 10,000 parts)"
        )
    return size


class PartBuffers:
    """A byte budget for part buffers shared by all copies in the container, with buffer reuse."""

    def __init__(self, capacity_bytes: int) -> None:
        self._capacity = capacity_bytes
        self._in_use = 0
        self._free: dict[int, list[bytearray]] = {}
        self._condition = threading.Condition()

    def acquire(self, size: int, deadline: Deadline | None = None) -> bytearray:
        """A buffer of ``size`` bytes once the budget allows it; TransientError ``deadline`` if it
        does not before ``deadline`` (other records' uploads hold the memory)."""
        with self._condition:
            # A part larger than the whole budget may still go, alone.
            granted = self._condition.wait_for(
                lambda: self._in_use == 0 or self._in_use + size <= self._capacity,
                timeout=None if deadline is None else max(deadline.remaining(), 0.0),
            )
            if not granted:
                raise TransientError("deadline", "waited for part-buffer memory until the deadline")
            self._in_use += size
            free = self._free.get(size)
            if free:
                return free.pop()
            self._free.clear()  # buffers of another size are not coming back into use
        return bytearray(size)

    def release(self, buffer: bytearray) -> None:
        with self._condition:
            self._in_use -= len(buffer)
            self._free.setdefault(len(buffer), []).append(buffer)
            self._condition.notify_all()


@dataclass(frozen=True)
class CopyResult:
    key: str
    size: int
    parts: int
    seconds: float
    # What S3 answered, for the Stored event: sha256 of a single PutObject, the composite CRC32 of
    # a multipart upload, the version when the bucket is versioned.
    sha256: str | None = None
    checksum_crc32: str | None = None
    version_id: str | None = None


class S3Calls:
    """S3 operations on the results bucket, with botocore errors mapped onto the two families.

    Each call site writes the typed boto3 call itself (mypy checks it against the S3 stubs); the
    operation's name only labels the error: ``calls.run("PutObject", lambda s3, bucket:
    s3.put_object(Bucket=bucket, Key=...))``.
    """

    def __init__(self, s3: Callable[[], S3Client], bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def run(self, operation: str, call: Callable[[S3Client, str], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - lazy boto import

        try:
            return call(self._s3(), self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise error_for_aws(operation, error) from error


class S3Writer:
    def __init__(
        self,
        calls: S3Calls,
        part_size: int,
        upload_concurrency: int,
        buffers: PartBuffers,
        executor: ThreadPoolExecutor,
        max_part_size: int = S3_MAX_PART_SIZE,
    ) -> None:
        self._calls = calls
        self._max_part_size = max_part_size
        self._part_size = part_size
        self._upload_concurrency = upload_concurrency
        self._buffers = buffers
        self._executor = executor

    def copy(
        self, body: ResultBody, key: str, attributes: ObjectAttributes, deadline: Deadline
    ) -> CopyResult:
        started = time.monotonic()
        part_size = part_size_for(body.expected_length, self._part_size, self._max_part_size)
        expected = body.expected_length
        # A result announced smaller than a part takes only its size (+1 byte, so that a longer body
        # shows) from the budget: small records of one batch then do not queue for part buffers.
        first = self._buffers.acquire(
            part_size if expected is None or expected >= part_size else expected + 1, deadline
        )
        handed_over = False
        try:
            filled = body.read_into(first, deadline)
            if filled == part_size:
                handed_over = True
                upload = _MultipartUpload(
                    self._calls, self._buffers, self._executor, self._upload_concurrency, key
                )
                parts = upload.run(body, first, part_size, attributes, deadline)
                done = upload.completion
                return CopyResult(
                    key,
                    body.bytes_read,
                    parts,
                    time.monotonic() - started,
                    checksum_crc32=done.get("ChecksumCRC32") if done else None,
                    version_id=done.get("VersionId") if done else None,
                )
            body.verify_length()
            sha256, answer = self._put_single(key, memoryview(first)[:filled], attributes)
            return CopyResult(
                key, filled, 1, time.monotonic() - started, sha256=sha256, version_id=answer.get("VersionId")
            )
        finally:
            if not handed_over:
                self._buffers.release(first)

    def _put_single(
        self, key: str, data: memoryview, attributes: ObjectAttributes
    ) -> tuple[str, PutObjectOutputTypeDef]:
        digest = hashlib.sha256(data).digest()
        answer = self._calls.run(
            "PutObject",
            lambda s3, bucket: s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=bytes(data),
                **attributes.fields,
                Metadata={**attributes.metadata, SHA256: digest.hex()},
                ChecksumSHA256=base64.b64encode(digest).decode(),
            ),
        )
        return digest.hex(), answer


class _MultipartUpload:
    """One multipart upload: parts stream in order, uploads overlap the next part's download."""

    def __init__(
        self,
        calls: S3Calls,
        buffers: PartBuffers,
        executor: ThreadPoolExecutor,
        concurrency: int,
        key: str,
    ) -> None:
        self._calls = calls
        self._buffers = buffers
        self._executor = executor
        self._concurrency = concurrency
        self._key = key
        self._upload_id = ""
        self._deadline: Deadline | None = None
        self._in_flight: dict[Future[CompletedPartTypeDef], bytearray] = {}
        self._completed: list[CompletedPartTypeDef] = []
        self.completion: CompleteMultipartUploadOutputTypeDef | None = None

    def run(
        self,
        body: ResultBody,
        first: bytearray,
        part_size: int,
        attributes: ObjectAttributes,
        deadline: Deadline,
    ) -> int:
        """Upload ``first`` (already read) and the rest of ``body``; return the number of parts."""
        self._deadline = deadline
        try:
            self._upload_id = self._calls.run(
                "CreateMultipartUpload",
                lambda s3, bucket: s3.create_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    **attributes.fields,
                    Metadata=attributes.metadata,
                    ChecksumAlgorithm="CRC32",
                ),
            )["UploadId"]
        except BaseException:
            self._buffers.release(first)
            raise
        try:
            number = 1
            self._submit(number, first, part_size)
            while True:
                deadline.check("copy")
                buffer = self._buffers.acquire(part_size, deadline)
                try:
                    filled = body.read_into(buffer, deadline)
                except BaseException:
                    self._buffers.release(buffer)
                    raise
                if filled == 0:
                    self._buffers.release(buffer)
                    break
                number += 1
                if number > S3_MAX_PARTS:
                    self._buffers.release(buffer)
                    raise PermanentError(
                        "result_too_large", f"the result needs more than {S3_MAX_PARTS} parts"
                    )
                self._submit(number, buffer, filled)
                if filled < part_size:
                    break
            body.verify_length()
            self._drain(keep=0)
            parts = sorted(self._completed, key=lambda part: part["PartNumber"])
            self.completion = self._calls.run(
                "CompleteMultipartUpload",
                lambda s3, bucket: s3.complete_multipart_upload(
                    Bucket=bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
                ),
            )
            return number
        except BaseException:
            self._abort()
            raise

    def _submit(self, number: int, buffer: bytearray, length: int) -> None:
        # Bound this copy's own uploads too, so one record cannot take the whole pool.
        self._drain(keep=self._concurrency - 1)
        future = self._executor.submit(self._upload_part, number, buffer, length)
        self._in_flight[future] = buffer

    def _upload_part(self, number: int, buffer: bytearray, length: int) -> CompletedPartTypeDef:
        # The buffer goes back to the budget here, on the upload thread, never waiting on the reader.
        # The executor does not carry the record's context: publish its deadline on this thread.
        try:
            data = buffer if length == len(buffer) else bytes(memoryview(buffer)[:length])
            with contextlib.ExitStack() as scope:
                if self._deadline is not None:
                    scope.enter_context(deadline_scope(self._deadline))
                answer = self._calls.run(
                    "UploadPart",
                    lambda s3, bucket: s3.upload_part(
                        Bucket=bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        PartNumber=number,
                        # botocore sends a bytearray as it is (no copy); the stubs name bytes only.
                        Body=cast("bytes", data),
                        ChecksumAlgorithm="CRC32",
                        # Given up front, so botocore sends the buffer as it is. Left to botocore,
                        # over HTTPS it streams an aws-chunked body with a CRC32 trailer, and wraps
                        # a bytearray in io.BytesIO first: a full copy of every part in flight
                        # (measured: +26 MiB at 128 MB, docs/benchmarks.md).
                        ChecksumCRC32=_crc32(data),
                    ),
                )
        finally:
            self._buffers.release(buffer)
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": answer["ETag"]}
        if answer.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = answer["ChecksumCRC32"]
        return part

    def _drain(self, keep: int) -> None:
        while len(self._in_flight) > keep:
            done, _ = wait(self._in_flight, return_when=FIRST_EXCEPTION)
            for future in done:
                del self._in_flight[future]
                self._completed.append(future.result())

    def _abort(self) -> None:
        for future, buffer in self._in_flight.items():
            if future.cancel():  # never started, so its upload thread will not release the buffer
                self._buffers.release(buffer)
        # Each in-flight UploadPart ends by the deadline (its attempts are bounded, see aws).
        wait(self._in_flight)
        self._in_flight.clear()
        # The work deadline may have passed: the abort gets the cleanup time. If even the abort
        # fails or stalls, the bucket's lifecycle rule removes the parts later.
        with contextlib.ExitStack() as scope:
            if self._deadline is not None:
                scope.enter_context(deadline_scope(self._deadline.for_cleanup()))
            with contextlib.suppress(ProcessingError):
                self._calls.run(
                    "AbortMultipartUpload",
                    lambda s3, bucket: s3.abort_multipart_upload(
                        Bucket=bucket, Key=self._key, UploadId=self._upload_id
                    ),
                )


def _crc32(data: bytes | bytearray) -> str:
    """S3's ``x-amz-checksum-crc32``: base64 of the big-endian CRC-32 (zlib's, ISO 3309)."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
