"""How big the transfer's part buffers may be for a function of a given memory size.

Lambda sets ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` (MB, 128-10,240) and kills an execution environment
that goes over it. The copy's memory is its part buffers (``s3_upload.PartBuffers``: a
container-wide byte budget; a part larger than the budget may still go, alone) on top of what the
warm function holds anyway. So, in MiB (Lambda's "MB" are MiB of cgroup limit)::

    available(M) = M - RESERVE_MIB                 what part buffers may use at all
    budget(M)    = available(M) - HEADROOM_MIB     what the derived defaults use

``RESERVE_MIB`` = 72: measured with ``make bench`` (``fit``), a warm function inside a cgroup v1
memory controller charges ~65 MiB (interpreter, boto3 with its S3/SQS/Secrets Manager clients,
Powertools, requests, two TLS contexts) before any part buffer, and every in-flight request adds
at most ~1 MiB of botocore/urllib3/TLS state. ``HEADROOM_MIB`` = 32: what is left for Lambda's
runtime interface client, allocator fragmentation and an unlucky moment.

The derived settings (:func:`derive`), from ``budget(M)``:

- part size ``P``: 16 MiB wherever the budget holds two such parts (one being read while one
  uploads): the size measured at the throughput ceiling, 66 S3 requests per GiB (S3's request
  charges, not Lambda's, dominate what a GiB costs). Smaller budgets (128 MB only) get 8 MiB
  (130 requests per GiB), then S3's 5 MiB minimum;
- upload concurrency ``C``: ``budget // P - 1``, at most 4 from 1,769 MB (one full vCPU: more
  connections help only when the CPU can feed them) and at most 2 below (the copy is CPU-bound
  there, and two uploads already overlap the next part's download);
- buffer budget ``(C + 1) x P``: the part being read plus ``C`` uploading.

Which gives 8 MiB x 2 in 24 MiB at 128 MB, 16 MiB x 2 in 48 MiB from 256 MB, 16 MiB x 4 in
80 MiB from 1,769 MB. Measured (``make bench``, over TLS, 2 GiB): see docs/benchmarks.md, row 7.

Results too large for 10,000 parts of ``P`` get larger parts (:func:`part_size_for`, whole MiB),
and a part must fit ``available(M)``: past ``10,000 x available(M)`` a result cannot be copied
within the function's memory and is refused up front (:func:`part_size_for` answers None). S3's own limits
(AWS, "Amazon S3 multipart upload limits", read 2026-11): parts 5 MiB-5 GiB, at most 10,000
parts, objects at most 48.8 TiB (= 10,000 x 5 GiB; raised from 5 TiB in late 2025). So 128 MB
copies up to 547 GiB and 5,192 MB and more everything S3 accepts, while 15 minutes at Lambda's CPU
share bind far earlier (docs/scaling.md), so no result the function could copy in time is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB

LAMBDA_MIN_MEMORY_MB = 128
LAMBDA_MAX_MEMORY_MB = 10_240
FULL_VCPU_MEMORY_MB = 1_769

S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * GiB
S3_MAX_PARTS = 10_000
S3_MAX_OBJECT_SIZE = S3_MAX_PARTS * S3_MAX_PART_SIZE

RESERVE_MIB = 72
HEADROOM_MIB = 32

# Without AWS_LAMBDA_FUNCTION_MEMORY_SIZE (tests, local runs): the settings measured in issue #5.
UNBOUNDED_PART_SIZE = 16 * MiB
UNBOUNDED_UPLOAD_CONCURRENCY = 4
UNBOUNDED_BUFFER_BYTES = 48 * MiB


@dataclass(frozen=True)
class Sizing:
    """Transfer sizing: bytes per part, uploads in flight per copy, container-wide buffer bytes."""

    part_size: int
    upload_concurrency: int
    buffer_bytes: int


def available_bytes(memory_mb: int) -> int:
    """Bytes part buffers may occupy in a function of ``memory_mb`` MB (headroom not kept)."""
    return (memory_mb - RESERVE_MIB) * MiB


def budget_bytes(memory_mb: int) -> int:
    """Bytes the derived settings let part buffers occupy (``HEADROOM_MIB`` kept free)."""
    return available_bytes(memory_mb) - HEADROOM_MIB * MiB


def derive(memory_mb: int | None) -> Sizing:
    """The sizing for a function of ``memory_mb`` MB, or the unbounded defaults for ``None``.

    Raises ``ValueError`` outside Lambda's 128-10,240 MB.
    """
    if memory_mb is None:
        return Sizing(UNBOUNDED_PART_SIZE, UNBOUNDED_UPLOAD_CONCURRENCY, UNBOUNDED_BUFFER_BYTES)
    if not LAMBDA_MIN_MEMORY_MB <= memory_mb <= LAMBDA_MAX_MEMORY_MB:
        raise ValueError(
            f"{memory_mb} MB is outside Lambda's {LAMBDA_MIN_MEMORY_MB}-{LAMBDA_MAX_MEMORY_MB} MB"
        )
    budget = budget_bytes(memory_mb)
    part = 16 * MiB if budget >= 2 * 16 * MiB else 8 * MiB if budget >= 2 * 8 * MiB else S3_MIN_PART_SIZE
    cap = 4 if memory_mb >= FULL_VCPU_MEMORY_MB else 2
    concurrency = max(1, min(cap, budget // part - 1))
    return Sizing(part, concurrency, (concurrency + 1) * part)


def check(memory_mb: int, part_size: int, buffer_bytes: int) -> str | None:
    """Why explicit settings cannot fit ``memory_mb`` MB (a message naming the variable), or None.

    Memory peaks at ``RESERVE_MIB`` plus the larger of the buffer budget and one part.
    """
    available = available_bytes(memory_mb)
    if buffer_bytes > available:
        return (
            f"TRANSFER_BUFFER_MIB={buffer_bytes // MiB} does not fit a {memory_mb} MB function "
            f"(at most {available // MiB} MiB beside the ~{RESERVE_MIB} MiB the function needs)"
        )
    if part_size > available:
        return (
            f"PART_SIZE_BYTES={part_size} does not fit a {memory_mb} MB function "
            f"(at most {available} bytes beside the ~{RESERVE_MIB} MiB the function needs)"
        )
    return None


def largest_part(memory_mb: int | None) -> int:
    """The largest part a function of ``memory_mb`` MB can hold (S3's maximum when unknown)."""
    if memory_mb is None:
        return S3_MAX_PART_SIZE
    return max(S3_MIN_PART_SIZE, min(S3_MAX_PART_SIZE, available_bytes(memory_mb) // MiB * MiB))


def part_size_for(
    expected_length: int | None, part_size: int, max_part_size: int = S3_MAX_PART_SIZE
) -> int | None:
    """``part_size``, grown in whole MiB only as far as 10,000 parts of ``expected_length`` need.

    None when the result needs parts larger than ``max_part_size`` (or than S3's 5 GiB), i.e.
    it cannot be copied. An unknown length keeps ``part_size`` (the copy then stops at the
    10,000th part if the body is longer).
    """
    if expected_length is None or expected_length <= part_size * S3_MAX_PARTS:
        return part_size
    size = math.ceil(math.ceil(expected_length / S3_MAX_PARTS) / MiB) * MiB
    if size > min(max_part_size, S3_MAX_PART_SIZE):
        return None
    return size
