"""What a user pays: the function under Lambda's memory limit and CPU share, over TLS.

``fit``: a 2 GiB result copied by a worker held to ``M`` MiB by a cgroup v1 memory controller
(and ``M / 1,769`` of a vCPU by a CPU quota), with the sizing derived from
``AWS_LAMBDA_FUNCTION_MEMORY_SIZE=M`` and no sizing variable set; the cgroup's peak, byte-exact
read-back. ``sweep``: per memory size, the billed duration and GB-seconds of 1,000 small results
(4 KiB, 50 ms of latency on every TAO and storage answer, batches of 10) and of one 1 GiB result.
:func:`costs` turns them into dollars with the list prices below.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from typing import Any

from tao_results import memory_budget
from tao_results_cli.local.events import sqs_event
from tests.bench.cgroups import LambdaLimits, cpu_share
from tests.bench.stack import Stack, WorkerProcess

MiB = 1 << 20
GiB = 1 << 30

# List prices, us-east-1, as known to the author on 2026-11-29 (from memory of the AWS pricing
# pages; check them before quoting): Lambda arm64 (the template's architecture) first pricing tier.
PRICES = {
    "lambda_gb_second": 0.0000133334,
    "lambda_request": 0.20 / 1_000_000,
    "s3_put": 0.005 / 1_000,  # PUT, COPY, POST, LIST: PutObject, Create/UploadPart/Complete
    "s3_get": 0.0004 / 1_000,
    "sqs_request": 0.40 / 1_000_000,
}
PRICES_NOTE = (
    "us-east-1 list prices known on 2026-11-29 (author's knowledge, not fetched): Lambda arm64 "
    "$0.0000133334 per GB-s and $0.20 per million requests; S3 Standard $0.005 per 1,000 "
    "PUT/POST requests, $0.0004 per 1,000 GET; SQS $0.40 per million requests"
)


def _log(message: str) -> None:
    from tests.bench.run import log  # noqa: PLC0415

    log(message)


def _sha256_of_object(stack: Stack, target: str, key: str) -> str:
    info = stack.targets[target]
    body = info.client().get_object(Bucket=info.bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(4 * MiB), b""):
        digest.update(chunk)
    return digest.hexdigest()


def fit(stack: Stack, target: str, memory_sizes: list[int], size: int) -> list[dict[str, Any]]:
    """A ``size`` result in a worker held to each memory size (and its CPU share)."""
    rows = []
    for memory_mb in memory_sizes:
        limits = LambdaLimits(memory_mb)
        try:
            env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}
            with WorkerProcess(limits) as worker:
                worker.call("load", env=stack.environment(target, **env))
                worker.call("invoke", event=_event(stack, [stack.new_reference(1024, "warm")]))
                reference_id = f"fit-{uuid.uuid4().hex[:12]}"
                info = stack.emulator(target).add_result(reference_id, size=size, filename="result.csv")
                before = limits.usage()
                result = worker.call("invoke", event=_event(stack, [reference_id]))
                peak, failcnt = limits.peak(), limits.failures()
                throttled = limits.throttled_s()
            if result["answer"]["batchItemFailures"]:
                raise RuntimeError(f"the handler failed the {size}-byte record at {memory_mb} MB")
            exact = _sha256_of_object(stack, target, f"tao-results/{reference_id}/result.csv") == info.sha256
            stack.clear_results(target)
        finally:
            limits.close()
        sizing = memory_budget.derive(memory_mb)
        rows.append(
            {
                "memory_mb": memory_mb,
                "vcpu": cpu_share(memory_mb),
                "part_mib": sizing.part_size // MiB,
                "upload_concurrency": sizing.upload_concurrency,
                "buffer_mib": sizing.buffer_bytes // MiB,
                "size": size,
                "byte_exact": exact,
                "cgroup_before_mib": before / MiB,
                "cgroup_peak_mib": peak / MiB,
                "headroom_mib": memory_mb - peak / MiB,
                "failcnt": failcnt,
                "process_peak_rss_mib": result["peak_rss"] / MiB,
                "wall_s": result["wall_s"],
                "mib_per_s": size / MiB / result["wall_s"],
                "cpu_s": result["cpu_s"],
                "cpu_s_per_gib": result["cpu_s"] * GiB / size,
                "throttled_s": throttled,
            }
        )
        _log(
            f"fit {memory_mb} MB: cgroup peak {peak / MiB:.1f} MiB, {rows[-1]['mib_per_s']:.0f} MiB/s, "
            f"byte-exact {exact}"
        )
    return rows


def _event(stack: Stack, reference_ids: list[str]) -> dict[str, Any]:
    """Lambda's event for these references, built directly (no SQS round trips: the sweep sends
    thousands, and on success the handler makes no SQS call, so nothing measured changes)."""
    messages = [
        {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": uuid.uuid4().hex,
            "Body": '{"referenceId": "%s"}' % reference_id,  # noqa: UP031
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": str(int(time.time() * 1000)),
                "SenderId": "AIDAEXAMPLE",
                "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
            },
            "MD5OfBody": hashlib.md5(reference_id.encode(), usedforsecurity=False).hexdigest(),
        }
        for reference_id in reference_ids
    ]
    return sqs_event(messages, stack.resources.queue_arn)


def _billed_ms(wall_s: float) -> int:
    return math.ceil(wall_s * 1000)  # Lambda bills duration rounded up to the millisecond


def small_results(
    stack: Stack, target: str, memory_mb: int, count: int, size: int, latency_ms: int
) -> dict[str, Any]:
    """``count`` results of ``size`` bytes in batches of 10 through one warm worker."""
    limits = LambdaLimits(memory_mb)
    emulator = stack.emulator(target)
    emulator.configure(latency_ms=latency_ms)
    billed_ms, invocations, failed = 0, 0, 0
    try:
        with WorkerProcess(limits) as worker:
            worker.call("load", env=stack.environment(target, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb)))
            worker.call("invoke", event=_event(stack, [stack.new_reference(size, "warm")]))
            started = time.monotonic()
            for first in range(0, count, 10):
                references = [stack.new_reference(size, "small") for _ in range(min(10, count - first))]
                result = worker.call("invoke", event=_event(stack, references))
                billed_ms += _billed_ms(result["wall_s"])
                invocations += 1
                failed += len(result["answer"]["batchItemFailures"])
            elapsed = time.monotonic() - started
            peak = limits.peak()
    finally:
        emulator.configure(latency_ms=0)
        limits.close()
        stack.clear_results(target)
    if failed:
        raise RuntimeError(f"{failed} small results failed at {memory_mb} MB")
    return {
        "count": count,
        "invocations": invocations,
        "billed_s": billed_ms / 1000,
        "gb_s": billed_ms / 1000 * memory_mb / 1024,
        "elapsed_s": elapsed,
        "cgroup_peak_mib": peak / MiB,
    }


def large_result(stack: Stack, target: str, memory_mb: int, size: int) -> dict[str, Any]:
    from tests.bench.run import handler_copy  # noqa: PLC0415

    limits = LambdaLimits(memory_mb)
    try:
        result = handler_copy(
            stack, target, size, limits=limits, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb)
        )
    finally:
        limits.close()
    billed = _billed_ms(result["wall_s"]) / 1000
    return {
        "size": size,
        "billed_s": billed,
        "gb_s": billed * memory_mb / 1024,
        "mib_per_s": size / MiB / result["wall_s"],
        "cpu_s": result["cpu_s"],
        "cgroup_peak_mib": result["cgroup_peak"] / MiB,
        "part_mib": memory_budget.derive(memory_mb).part_size // MiB,
    }


def sweep(
    stack: Stack,
    target: str,
    memory_sizes: list[int],
    *,
    small_count: int,
    small_size: int,
    latency_ms: int,
    large_size: int,
) -> dict[str, Any]:
    rows = []
    for memory_mb in memory_sizes:
        small = small_results(stack, target, memory_mb, small_count, small_size, latency_ms)
        _log(f"sweep {memory_mb} MB: {small_count} small in {small['billed_s']:.1f} billed s")
        large = large_result(stack, target, memory_mb, large_size)
        _log(f"sweep {memory_mb} MB: {large_size // MiB} MiB in {large['billed_s']:.1f} s")
        rows.append({"memory_mb": memory_mb, "vcpu": cpu_share(memory_mb), "small": small, "large": large})
    return {
        "target": target,
        "small_count": small_count,
        "small_size": small_size,
        "latency_ms": latency_ms,
        "large_size": large_size,
        "rows": rows,
        "costs": costs(rows, small_count, large_size),
        "prices": PRICES,
        "prices_note": PRICES_NOTE,
    }


def costs(rows: list[dict[str, Any]], small_count: int, large_size: int) -> list[dict[str, Any]]:
    """Dollars per 1,000 small results and per GiB, per memory size (Lambda + S3 requests)."""
    out = []
    for row in rows:
        small, large = row["small"], row["large"]
        per_thousand = 1000 / small_count
        small_lambda = (
            small["gb_s"] * PRICES["lambda_gb_second"] + small["invocations"] * PRICES["lambda_request"]
        ) * per_thousand
        small_s3 = 1000 * PRICES["s3_put"]  # one PutObject each
        per_gib = GiB / large_size
        parts = math.ceil(GiB / (large["part_mib"] * MiB))
        large_lambda = (large["gb_s"] * PRICES["lambda_gb_second"] + PRICES["lambda_request"]) * per_gib
        large_s3 = (parts + 2) * PRICES["s3_put"]  # Create + parts + Complete
        out.append(
            {
                "memory_mb": row["memory_mb"],
                "small_lambda_usd": small_lambda,
                "small_total_usd": small_lambda + small_s3,
                "gib_lambda_usd": large_lambda,
                "gib_total_usd": large_lambda + large_s3,
                "gib_s3_requests": parts + 2,
            }
        )
    return out
