import threading
import time

import pytest

from tao_results.deadline import Deadline
from tao_results.errors import PermanentError, TransientError
from tao_results.s3_upload import S3_MAX_PARTS, PartBuffers, part_size_for

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (None, 8 * MiB),
        (0, 8 * MiB),
        (2 * 1024 * MiB, 8 * MiB),  # 2 GiB: 256 parts of the configured size
        (8 * MiB * S3_MAX_PARTS, 8 * MiB),  # exactly at the limit: no growth
        (8 * MiB * S3_MAX_PARTS + 1, 9 * MiB),  # one byte more: grow by a whole MiB
        (5 * 1024 * 1024 * MiB, 525 * MiB),  # 5 TiB, the S3 maximum object size
    ],
)
def test_part_size_grows_only_as_far_as_the_part_limit_requires(length, expected):
    size = part_size_for(length, 8 * MiB)
    assert size == expected
    if length:
        assert -(-length // size) <= S3_MAX_PARTS


def test_a_result_s3_cannot_hold_is_permanent():
    with pytest.raises(PermanentError):
        part_size_for(5 * 1024 * MiB * S3_MAX_PARTS + 1, 8 * MiB)


def test_buffers_are_reused_and_bounded():
    buffers = PartBuffers(capacity_bytes=3 * MiB)
    first = buffers.acquire(MiB)
    buffers.release(first)
    assert buffers.acquire(MiB) is first  # reused, not reallocated


def test_acquire_blocks_at_the_budget_until_a_release():
    buffers = PartBuffers(capacity_bytes=2 * MiB)
    held = [buffers.acquire(MiB), buffers.acquire(MiB)]
    acquired = threading.Event()

    def third():
        buffers.acquire(MiB)
        acquired.set()

    thread = threading.Thread(target=third)
    thread.start()
    time.sleep(0.1)
    assert not acquired.is_set()
    buffers.release(held[0])
    assert acquired.wait(2)
    thread.join()


def test_a_part_larger_than_the_budget_goes_alone():
    buffers = PartBuffers(capacity_bytes=MiB)
    big = buffers.acquire(4 * MiB)  # would deadlock if it had to fit the budget
    assert len(big) == 4 * MiB
    buffers.release(big)


def test_waiting_for_buffer_memory_ends_at_the_deadline():
    buffers = PartBuffers(capacity_bytes=2 * MiB)
    held = buffers.acquire(2 * MiB)  # another record's upload holds the whole budget
    started = time.monotonic()
    with pytest.raises(TransientError, match="deadline"):
        buffers.acquire(MiB, Deadline(time.monotonic() + 0.3))
    assert 0.25 < time.monotonic() - started < 2.0
    buffers.release(held)
    assert len(buffers.acquire(MiB, Deadline(time.monotonic() + 0.3))) == MiB  # the budget is intact


def test_part_checksum_is_s3s_base64_big_endian_crc32():
    from tao_results.s3_upload import _crc32  # noqa: PLC0415

    # The CRC-32 check value of "123456789" is 0xCBF43926 (ISO 3309 / ITU-T V.42).
    assert _crc32(bytearray(b"123456789")) == "y/Q5Jg=="
