"""``python -m tests.bench``: the issue #5 benchmarks, side by side, against the same local servers.

Sub-benchmarks (``--only a,b``): ``throughput`` (1 GiB through the handler vs boto3's tuned raw
upload of the same bytes from memory, interleaved), ``memory`` (peak RSS growth per file size),
``small`` (a batch of 10 small results vs a batch of 1 with 50 ms latency, plus failure isolation),
``requests`` (TAO calls per message, tokens per container, keep-alive), ``coldstart`` (importing
the handler vs ``import boto3``), ``moto`` (the same throughput comparison against moto).
Results go to stdout as a table, to ``docs/benchmarks.md`` and ``docs/benchmarks.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tao_results.config import Settings
from tests.bench import cgroups, lambda_cost
from tests.bench.cgroups import LambdaLimits
from tests.bench.stack import ROOT, Stack, WorkerProcess, open_stack

MiB = 1 << 20
GiB = 1 << 30
RAW_CANDIDATES = [(8 * MiB, 4), (8 * MiB, 10), (16 * MiB, 4), (32 * MiB, 4), (64 * MiB, 4), (8 * MiB, 2)]


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# One measured handler invocation in a fresh warm container
# --------------------------------------------------------------------------------------------------


def handler_copy(
    stack: Stack,
    target: str,
    size: int,
    *,
    experiments: list[str] | None = None,
    limits: LambdaLimits | None = None,
    **overrides: str,
) -> dict[str, Any]:
    """Fresh worker, load, warm-up invocation (1 KiB), then one measured invocation of ``size``.

    With ``limits`` the worker runs inside Lambda's memory cgroup and CPU quota; the result then
    carries the cgroup's peak over the whole life of the worker (``cgroup_peak``: init, warm-up
    and the copy, as Lambda's limit applies to all of them) and after the warm-up
    (``cgroup_before``).
    """
    with WorkerProcess(limits) as worker:
        worker.call("load", env=stack.environment(target, **overrides), experiments=experiments or [])
        warm = stack.event([stack.new_reference(1024, "warm")])
        worker.call("invoke", event=warm)
        stack.settle(warm)
        reference_id = stack.new_reference(size)
        event = stack.event([reference_id])
        before = stack.emulator(target).stats()
        cgroup_before = limits.usage() if limits is not None else 0
        result = worker.call("invoke", event=event)
        after = stack.emulator(target).stats()
        stack.settle(event)
        if limits is not None:
            result["cgroup_before"] = cgroup_before
            result["cgroup_peak"] = limits.peak()
            result["cgroup_failcnt"] = limits.failures()
            result["cpu_throttled_s"] = limits.throttled_s()
    if result["answer"]["batchItemFailures"]:
        raise RuntimeError(f"the handler failed the record ({target}, {size} bytes)")
    head = (
        stack.targets[target]
        .client()
        .head_object(Bucket=stack.targets[target].bucket, Key=f"tao-results/{reference_id}/result.csv")
    )
    if head["ContentLength"] != size:
        raise RuntimeError(f"object is {head['ContentLength']} bytes, expected {size}")
    stack.clear_results(target)
    result["size"] = size
    result["download_calls"] = after["download_calls"].get(reference_id, 0)
    result["storage_gets"] = after["storage_gets"].get(reference_id, 0)
    result["token_requests"] = after["token_requests"] - before["token_requests"]
    return result


class RawUploader:
    """A worker holding the emulator's bytes for one reference in memory, for boto3's raw upload."""

    def __init__(self, stack: Stack, target: str, size: int) -> None:
        self.stack, self.target, self.size = stack, target, size
        self.worker = WorkerProcess()
        info = stack.targets[target]
        self.worker.call(
            "raw_prepare", endpoint_url=info.endpoint_url, bucket=info.bucket, reference_id="raw", size=size
        )
        self.count = 0

    def upload(self, chunk: int, concurrency: int) -> dict[str, Any]:
        self.count += 1
        result = self.worker.call(
            "raw_upload", key=f"raw/{self.count}", chunk_size=chunk, concurrency=concurrency
        )
        self.stack.clear_results(self.target)
        return result

    def direct(self, part_size: int, concurrency: int) -> dict[str, Any]:
        self.count += 1
        result = self.worker.call(
            "raw_parts", key=f"direct/{self.count}", part_size=part_size, concurrency=concurrency
        )
        self.stack.clear_results(self.target)
        return result

    def close(self) -> None:
        self.worker.close()


# --------------------------------------------------------------------------------------------------
# Sub-benchmarks
# --------------------------------------------------------------------------------------------------


def tune_raw(stack: Stack, target: str, size: int, repetitions: int) -> dict[str, Any]:
    """Try boto3 TransferConfigs; the best (median wall time) is the raw baseline."""
    uploader = RawUploader(stack, target, size)
    try:
        runs: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in RAW_CANDIDATES}
        for _ in range(repetitions):
            for candidate in RAW_CANDIDATES:
                runs[candidate].append(uploader.upload(*candidate))
    finally:
        uploader.close()
    table = [
        {
            "chunk_mib": chunk // MiB,
            "concurrency": concurrency,
            "wall_s": median([r["wall_s"] for r in results]),
            "cpu_s": median([r["cpu_s"] for r in results]),
        }
        for (chunk, concurrency), results in runs.items()
    ]
    best = min(table, key=lambda row: row["wall_s"])
    log(f"raw TransferConfig scan on {target} at {size // MiB} MiB: best {best}")
    return {"size": size, "candidates": table, "best": best}


def throughput(
    stack: Stack,
    target: str,
    size: int,
    repetitions: int,
    raw_config: dict[str, Any],
    variants: dict,
    *,
    direct: bool = False,
) -> dict[str, Any]:
    """Handler (per variant) and raw upload, interleaved, ``repetitions`` times each.

    ``direct``: also the leanest direct ``upload_part`` loop (16 MiB parts, 4 threads), the ceiling.
    """
    chunk, concurrency = raw_config["chunk_mib"] * MiB, raw_config["concurrency"]
    uploader = RawUploader(stack, target, size)
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], **{name: [] for name in variants}}
    try:
        for repetition in range(repetitions):
            for name, (experiments, overrides) in variants.items():
                runs[name].append(handler_copy(stack, target, size, experiments=experiments, **overrides))
                log(f"{target} {size // MiB} MiB {name} #{repetition + 1}: {_brief(runs[name][-1])}")
            runs["raw"].append(uploader.upload(chunk, concurrency))
            log(f"{target} {size // MiB} MiB raw #{repetition + 1}: {_brief(runs['raw'][-1])}")
            if direct:
                runs.setdefault("direct", []).append(uploader.direct(16 * MiB, 4))
                log(f"{target} {size // MiB} MiB direct #{repetition + 1}: {_brief(runs['direct'][-1])}")
    finally:
        uploader.close()
    summary = {name: _summarise(results, size) for name, results in runs.items()}
    return {"size": size, "raw_config": raw_config, "runs": runs, "summary": summary}


def _brief(result: dict[str, Any]) -> str:
    return (
        f"{result['wall_s']:.2f} s, cpu {result['cpu_s']:.2f} s, "
        f"peak growth {result['peak_growth'] / MiB:.1f} MiB"
    )


def _summarise(results: list[dict[str, Any]], size: int) -> dict[str, float]:
    wall = median([r["wall_s"] for r in results])
    cpu = median([r["cpu_s"] for r in results])
    return {
        "wall_s": wall,
        "mib_per_s": size / MiB / wall,
        "cpu_s": cpu,
        "cpu_s_per_gib": cpu * GiB / size,
        "peak_growth_mib": max(r["peak_growth"] for r in results) / MiB,
        "n": len(results),
    }


def memory(
    stack: Stack, target: str, sizes: list[int], experiments: list[str], known: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        result = known.get(size) or handler_copy(stack, target, size, experiments=experiments)
        rows.append(
            {
                "size": size,
                "wall_s": result["wall_s"],
                "mib_per_s": size / MiB / result["wall_s"],
                "cpu_s": result["cpu_s"],
                "peak_growth_mib": result["peak_growth"] / MiB,
                "rss_before_mib": result["rss_before"] / MiB,
                "peak_rss_mib": result["peak_rss"] / MiB,
            }
        )
        log(f"memory {target} {size / MiB:.0f} MiB: {rows[-1]['peak_growth_mib']:.1f} MiB growth")
    return rows


def small_batches(
    stack: Stack, target: str, repetitions: int, latency_ms: int, size: int, variants: dict
) -> dict[str, Any]:
    """Batch of 10 vs batch of 1, small results, ``latency_ms`` on every TAO and storage answer."""
    out: dict[str, Any] = {"latency_ms": latency_ms, "size": size, "variants": {}}
    stack.tao.configure(latency_ms=latency_ms)
    try:
        for name, (experiments, overrides) in variants.items():
            with WorkerProcess() as worker:
                worker.call("load", env=stack.environment(target, **overrides), experiments=experiments)
                warm = stack.event([stack.new_reference(size, "warm")])
                worker.call("invoke", event=warm)
                stack.settle(warm)
                one: list[float] = []
                ten: list[float] = []
                requests: list[dict[str, Any]] = []
                for _ in range(repetitions):
                    for count, sink in ((1, one), (10, ten)):
                        references = [stack.new_reference(size, "small") for _ in range(count)]
                        event = stack.event(references)
                        before = stack.tao.stats()
                        result = worker.call("invoke", event=event)
                        after = stack.tao.stats()
                        stack.settle(event)
                        if result["answer"]["batchItemFailures"]:
                            raise RuntimeError(f"small batch failed: {result['answer']}")
                        sink.append(result["wall_s"])
                        requests.append(_request_counts(references, before, after))
                isolation = _failure_isolation(stack, worker, target, size)
            stack.clear_results(target)
            out["variants"][name] = {
                "batch_1_s": median(one),
                "batch_10_s": median(ten),
                "ratio": median(ten) / median(one),
                "requests": requests,
                "isolation": isolation,
            }
            log(f"small {name}: 1 → {median(one):.3f} s, 10 → {median(ten):.3f} s")
    finally:
        stack.tao.configure(latency_ms=0)
    return out


def _request_counts(references: list[str], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        "records": len(references),
        "download_calls": [after["download_calls"].get(r, 0) for r in references],
        "storage_gets": [after["storage_gets"].get(r, 0) for r in references],
        "token_requests": after["token_requests"] - before["token_requests"],
        "connections": after["connections_accepted"] - before["connections_accepted"],
    }


def _failure_isolation(stack: Stack, worker: WorkerProcess, target: str, size: int) -> dict[str, Any]:
    """A batch of 10 where one reference is unknown (404) and one gets storage 500s every time."""
    from tao_emulator import Fault  # noqa: PLC0415

    good = [stack.new_reference(size, "iso") for _ in range(8)]
    failing = stack.new_reference(size, "iso-500")
    stack.tao.add_fault(Fault("storage", "status", reference_id=failing, times=None, status=500))
    missing = "iso-missing-reference"
    event = stack.event([*good, failing, missing])
    result = worker.call("invoke", event=event)
    stack.settle(event)
    stack.tao.clear_faults()
    failed_ids = {f["itemIdentifier"] for f in result["answer"]["batchItemFailures"]}
    by_reference = {json.loads(r["body"])["referenceId"]: r["messageId"] for r in event["Records"]}
    info = stack.targets[target]
    client = info.client()
    stored = 0
    for reference_id in good:
        try:
            client.head_object(Bucket=info.bucket, Key=f"tao-results/{reference_id}/result.csv")
            stored += 1
        except Exception:
            pass
    return {
        "good_stored": stored,
        "good_total": len(good),
        "failed_is_only_the_500": failed_ids == {by_reference[failing]},
        "missing_dead_lettered_not_failed": by_reference[missing] not in failed_ids,
        "wall_s": result["wall_s"],
    }


def requests_reuse(stack: Stack, target: str, size: int, batches: int) -> dict[str, Any]:
    """Token requests and TCP connections to TAO over several batches in one warm container."""
    with WorkerProcess() as worker:
        start = stack.tao.stats()
        worker.call("load", env=stack.environment(target))
        per_batch = []
        for _ in range(batches):
            references = [stack.new_reference(size, "req") for _ in range(10)]
            event = stack.event(references)
            before = stack.tao.stats()
            worker.call("invoke", event=event)
            after = stack.tao.stats()
            stack.settle(event)
            per_batch.append(_request_counts(references, before, after))
        end = stack.tao.stats()
    stack.clear_results(target)
    return {
        "batches": per_batch,
        "token_requests_total": end["token_requests"] - start["token_requests"],
        "connections_total": end["connections_accepted"] - start["connections_accepted"],
        "records_total": 10 * batches,
        # Two keep-alive pools (API, storage) of RECORD_CONCURRENCY connections each (http.new_session).
        "pool_bound": 2
        * int(stack.environment(target).get("RECORD_CONCURRENCY", str(Settings.record_concurrency))),
    }


def cold_start(repetitions: int, variants: dict[str, list[str]]) -> dict[str, Any]:
    """Fresh interpreters: ``import app`` (the init phase) vs ``import boto3``, interleaved."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), str(ROOT / "layers" / "tao_results"), str(ROOT / "functions" / "download_result")]
        ),
        "TAO_BASE_URL": "https://tao.example.com",
        "TAO_CREDENTIALS_SECRET_ID": "tao/credentials",
        "RESULTS_BUCKET": "results",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "tao-results-to-s3",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    programs = {"boto3": "import boto3"}
    for name, experiments in variants.items():
        prefix = f"import tests.bench.experiments as e; e.apply({experiments!r}); " if experiments else ""
        programs[name] = prefix + "import app"
    times: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repetitions):
        for name, program in programs.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", program], env=env, check=True, cwd=ROOT)
            times[name].append(time.perf_counter() - started)
    baseline = median(times["boto3"])
    summary = {
        name: {"median_s": median(values), "ratio": median(values) / baseline, "n": len(values)}
        for name, values in times.items()
    }
    importtime = subprocess.run(  # noqa: PLW1510 - only its stderr is read
        [sys.executable, "-X", "importtime", "-c", "import app"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stderr
    heavy = sorted(
        (
            (int(parts[1]), parts[2].strip())
            for line in importtime.splitlines()
            if line.startswith("import time:")
            and (parts := line.split("|"))
            and parts[1].strip().isdigit()
            and len(parts[2]) - len(parts[2].lstrip()) <= 3
        ),
        reverse=True,
    )[:6]
    return {"summary": summary, "top_imports_ms": [(name, us / 1000) for us, name in heavy]}


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------

ALL = ["coldstart", "throughput", "memory", "small", "requests", "tls", "fit", "lambda", "moto"]
FIT_MEMORY_MB = [128, 256, 1769]
SWEEP_MEMORY_MB = [128, 256, 512, 1024, 1769]
# Not in the default run: larger parts halve S3 request charges (docs/scaling.md), at what cost?
PART_SIZE_VARIANTS = {
    "16 MiB parts, 48 MiB budget (default)": ([], {}),
    "8 MiB parts, 40 MiB budget": ([], {"PART_SIZE_BYTES": str(8 * MiB), "TRANSFER_BUFFER_MIB": "40"}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", default=",".join(ALL), help="comma-separated sub-benchmarks (also: partsize)"
    )
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition (smoke test)")
    parser.add_argument(
        "--experiments", default="", help="comma-separated tests/bench/experiments.py names to compare"
    )
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--json", default=str(ROOT / "docs" / "benchmarks.json"))
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    experiments = [name.strip() for name in args.experiments.split(",") if name.strip()]
    repetitions = 1 if args.quick else args.repetitions
    large = (64 if args.quick else args.large_mib) * MiB
    memory_sizes = sorted({16 * MiB, 64 * MiB, 256 * MiB, large, (128 if args.quick else 2048) * MiB})
    # The experiments so far touch the init phase only: they run in coldstart and small; the
    # transfer benchmarks measure the library as it is (SeaweedFS' noise would swamp a no-op).
    variants: dict[str, tuple[list[str], dict[str, str]]] = {"handler": ([], {})}
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "arguments": vars(args),
        "experiments": experiments,
    }
    started = time.monotonic()
    if "coldstart" in only:
        log("cold start")
        cold_variants = {"app": [], **({"app+exp": experiments} if experiments else {})}
        results["coldstart"] = cold_start(5 if args.quick else 21, cold_variants)
    with ExitStack() as exits:
        stack = open_stack(exits, seaweed=True, tls=True)
        results["notes"] = stack.notes
        real = "seaweedfs" if "seaweedfs" in stack.targets else "moto"
        results["real_target"] = real
        results["servers"] = {name: info.endpoint_url for name, info in stack.targets.items()}
        log(f"servers up: {results['servers']}")
        if "throughput" in only:
            raw = tune_raw(stack, real, min(large, 256 * MiB), 1 if args.quick else 2)
            results["raw_scan"] = raw
            results["throughput"] = throughput(
                stack, real, large, repetitions, raw["best"], variants, direct=True
            )
        if "memory" in only:
            known: dict[int, dict[str, Any]] = {}
            if "throughput" in results:
                known[large] = min(results["throughput"]["runs"]["handler"], key=lambda r: r["wall_s"])
            results["memory"] = memory(stack, real, memory_sizes, [], known)
        if "small" in only:
            small_variants = {
                f"default (RECORD_CONCURRENCY={Settings.record_concurrency})": ([], {}),
                "RECORD_CONCURRENCY=4": ([], {"RECORD_CONCURRENCY": "4"}),
            }
            if experiments:
                small_variants["default +exp"] = (experiments, {})
            results["small"] = small_batches(stack, real, 3 if args.quick else 5, 50, 4096, small_variants)
        if "requests" in only:
            results["requests"] = requests_reuse(stack, real, 4096, 3)
        if "partsize" in only:
            results["partsize"] = {
                name: _summarise(
                    [
                        handler_copy(stack, real, large, experiments=exp, **overrides)
                        for _ in range(repetitions)
                    ],
                    large,
                )
                for name, (exp, overrides) in PART_SIZE_VARIANTS.items()
            }
            log(f"part sizes: {results['partsize']}")
        tls_target = "seaweedfs-tls" if "seaweedfs-tls" in stack.targets else None
        if tls_target is None and {"tls", "fit", "lambda"} & set(only):
            results["notes"].append("no TLS target (SeaweedFS did not start): tls, fit and lambda skipped")
        if "tls" in only and tls_target:
            raw = tune_raw(stack, tls_target, min(large, 256 * MiB), 1)
            results["tls_raw_scan"] = raw
            results["tls"] = throughput(
                stack, tls_target, large, repetitions, raw["best"], variants, direct=True
            )
        limits_missing = cgroups.unavailable()
        if limits_missing and {"fit", "lambda"} & set(only):
            note = f"cgroups unavailable ({limits_missing}): fit and lambda SKIPPED"
            log(f"WARNING: {note}")
            results["notes"].append(note)
        elif tls_target:
            if "fit" in only:
                fit_sizes = [128] if args.quick else FIT_MEMORY_MB
                results["fit"] = lambda_cost.fit(
                    stack, tls_target, fit_sizes, (256 if args.quick else 2048) * MiB
                )
            if "lambda" in only:
                results["lambda"] = lambda_cost.sweep(
                    stack,
                    tls_target,
                    [128, 1769] if args.quick else SWEEP_MEMORY_MB,
                    small_count=50 if args.quick else 1000,
                    small_size=4096,
                    latency_ms=50,
                    large_size=(64 if args.quick else 1024) * MiB,
                )
        if "moto" in only:
            size = (32 if args.quick else 256) * MiB
            results["moto"] = throughput(
                stack,
                "moto",
                size,
                1 if args.quick else 2,
                results.get("raw_scan", {}).get("best") or {"chunk_mib": 8, "concurrency": 4},
                {"handler": ([], {})},
            )
    results["elapsed_s"] = time.monotonic() - started
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    from tests.bench.report import write_report  # noqa: PLC0415 - matplotlib only here

    table = write_report(results, Path(args.output))
    print(table)
    return 0


def _machine() -> dict[str, Any]:
    import boto3  # noqa: PLC0415
    import botocore  # noqa: PLC0415

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    weed = None
    try:
        from tests.bench.seaweed import weed_binary  # noqa: PLC0415

        binary = weed_binary()
        if binary:
            weed = subprocess.run(
                [binary, "version"], capture_output=True, text=True, check=False
            ).stdout.strip()
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB, 1),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "seaweedfs": weed,
    }
