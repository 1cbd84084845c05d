"""The transfer sizing derived from the function's memory (memory_budget.py) and its validation."""

import pytest

from tao_results import memory_budget as mb
from tao_results.config import ConfigError, load_settings
from tao_results.errors import PermanentError
from tao_results.s3_upload import part_size_for

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB
MEMORY_SIZES = [128, 256, 512, 1024, 1769, 3008, 10240]

REQUIRED = {
    "TAO_BASE_URL": "https://acme.taoadvance.example",
    "TAO_CREDENTIALS_SECRET_ID": "tao/credentials",
    "RESULTS_BUCKET": "results",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
}


@pytest.mark.parametrize(
    ("memory_mb", "part_mib", "concurrency", "buffer_mib"),
    [
        (128, 8, 2, 24),
        (256, 16, 2, 48),
        (512, 16, 2, 48),
        (1769, 16, 4, 80),
        (10240, 16, 4, 80),
        (None, 16, 4, 48),  # outside Lambda: the settings of issue #5
    ],
)
def test_derived_sizing(memory_mb, part_mib, concurrency, buffer_mib):
    assert mb.derive(memory_mb) == mb.Sizing(part_mib * MiB, concurrency, buffer_mib * MiB)


@pytest.mark.parametrize("memory_mb", MEMORY_SIZES)
def test_derived_buffers_keep_the_headroom(memory_mb):
    sizing = mb.derive(memory_mb)
    peak = mb.RESERVE_MIB * MiB + max(sizing.buffer_bytes, sizing.part_size)
    assert peak + mb.HEADROOM_MIB * MiB <= memory_mb * MiB
    assert sizing.buffer_bytes >= 2 * sizing.part_size  # one part read while one uploads
    assert sizing.part_size >= mb.S3_MIN_PART_SIZE


def largest_copyable(memory_mb: int | None) -> int:
    """The module docstring's figure: 10,000 of the largest parts the memory holds, at most S3's."""
    return min(mb.S3_MAX_OBJECT_SIZE, mb.S3_MAX_PARTS * mb.largest_part(memory_mb))


@pytest.mark.parametrize("memory_mb", MEMORY_SIZES)
@pytest.mark.parametrize(
    "length",
    [0, 1, 5 * MiB, 2 * GiB, 78 * GiB, 157 * GiB, 1 * TiB, 5 * TiB, 48 * TiB, mb.S3_MAX_OBJECT_SIZE],
)
def test_every_size_fits_the_part_limit_and_the_memory_or_is_refused_up_front(memory_mb, length):
    sizing = mb.derive(memory_mb)
    largest = mb.largest_part(memory_mb)
    size = mb.part_size_for(length, sizing.part_size, largest)
    if length <= largest_copyable(memory_mb):
        assert size is not None
        assert -(-length // size) <= mb.S3_MAX_PARTS
        assert mb.S3_MIN_PART_SIZE <= size <= mb.S3_MAX_PART_SIZE
        # What is held at once: the budget, or one larger part alone.
        assert mb.RESERVE_MIB * MiB + max(sizing.buffer_bytes, size) <= memory_mb * MiB
    else:
        assert size is None
        with pytest.raises(PermanentError, match="memory") as caught:
            part_size_for(length, sizing.part_size, largest)
        assert caught.value.reason == "result_too_large"


def test_what_each_memory_size_can_copy():
    assert mb.S3_MAX_OBJECT_SIZE / TiB == pytest.approx(48.83, abs=0.01)  # 10,000 x 5 GiB
    assert largest_copyable(128) == 10_000 * 56 * MiB  # 547 GiB, far beyond 15 minutes at 128 MB
    assert largest_copyable(5184) < mb.S3_MAX_OBJECT_SIZE
    assert largest_copyable(5192) == mb.S3_MAX_OBJECT_SIZE  # a 5 GiB part fits beside the reserve
    assert largest_copyable(None) == mb.S3_MAX_OBJECT_SIZE


@pytest.mark.parametrize("memory_mb", [127, 10241])
def test_memory_outside_lambdas_range_is_rejected(memory_mb):
    with pytest.raises(ValueError, match="outside"):
        mb.derive(memory_mb)


def test_settings_follow_the_memory_size_when_nothing_is_set():
    settings = load_settings({**REQUIRED, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"})
    assert (settings.part_size_bytes, settings.upload_concurrency, settings.transfer_buffer_bytes) == (
        8 * MiB,
        2,
        24 * MiB,
    )
    assert settings.memory_size_mb == 128
    assert settings.max_part_size_bytes == 56 * MiB


def test_explicit_settings_win_when_they_fit():
    settings = load_settings(
        {
            **REQUIRED,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "PART_SIZE_BYTES": str(16 * MiB),
            "TRANSFER_BUFFER_MIB": "48",  # eats the headroom, but is the user's explicit choice
            "UPLOAD_CONCURRENCY": "3",
        }
    )
    assert (settings.part_size_bytes, settings.upload_concurrency, settings.transfer_buffer_bytes) == (
        16 * MiB,
        3,
        48 * MiB,
    )


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("TRANSFER_BUFFER_MIB", {"TRANSFER_BUFFER_MIB": "57"}),
        ("PART_SIZE_BYTES", {"PART_SIZE_BYTES": str(57 * MiB)}),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "64"}),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}),
    ],
)
def test_settings_that_cannot_fit_fail_fast_naming_the_variable(name, extra):
    environ = {**REQUIRED, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", **extra}
    with pytest.raises(ConfigError, match=name):
        load_settings(environ)


def test_without_a_memory_size_explicit_settings_are_only_range_checked():
    settings = load_settings({**REQUIRED, "TRANSFER_BUFFER_MIB": "1024"})
    assert settings.transfer_buffer_bytes == 1024 * MiB
    assert settings.max_part_size_bytes == mb.S3_MAX_PART_SIZE
