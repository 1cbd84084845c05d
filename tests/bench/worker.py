"""A measured process: one warm "container" running the real handler, or the raw boto3 baseline.

``python -m tests.bench.worker`` reads JSON commands, one a line, on stdin and answers one JSON
line each on stdout. The process is what Lambda's execution environment is: the handler module is
loaded once (``load``), invocations reuse it. Around each measured call it records wall time, its
own CPU time (user + system, all threads) and memory: peak RSS is reset by writing ``5`` to
``/proc/self/clear_refs`` so ``VmHWM`` afterwards is the peak of that call alone; growth is that
peak minus the RSS just before the call.

Commands: ``{"op": "load", "env": {...}, "experiments": [...]}``,
``{"op": "invoke", "event": {...}}``, ``{"op": "raw_prepare", ...}``, ``{"op": "raw_upload", ...}``,
``{"op": "raw_parts", ...}``,
``{"op": "quit"}``.
"""

from __future__ import annotations

import gc
import importlib.util
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP_PATH = ROOT / "functions" / "download_result" / "app.py"
for extra in (ROOT / "layers" / "tao_results", ROOT / "functions" / "download_result", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


def _status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0]) * 1024
    return values


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _trust_bundle(path: str) -> None:
    """Make requests verify against ``path`` (certifi's roots plus the bench's local CA).

    The function's sessions ignore the environment (``trust_env = False``, http_sessions.py), so
    ``REQUESTS_CA_BUNDLE`` cannot reach them; botocore reads ``AWS_CA_BUNDLE`` itself. Only the
    benchmark does this: in AWS both TAO's storage and S3 have publicly trusted certificates.
    """
    import requests.adapters  # noqa: PLC0415

    requests.adapters.DEFAULT_CA_BUNDLE_PATH = path  # type: ignore[attr-defined]


class Measured:
    """Wall, CPU and peak-RSS growth of the code inside the ``with`` block."""

    def __enter__(self) -> Measured:
        gc.collect()
        self.peak_reset = _reset_peak()
        self.rss_before = _status()["VmRSS"]
        self.times = os.times()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.perf_counter() - self.started
        end = os.times()
        self.cpu_user = end.user - self.times.user
        self.cpu_system = end.system - self.times.system
        status = _status()
        self.peak = status["VmHWM"]
        self.rss_after = status["VmRSS"]

    def report(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall,
            "cpu_user_s": self.cpu_user,
            "cpu_system_s": self.cpu_system,
            "cpu_s": self.cpu_user + self.cpu_system,
            "rss_before": self.rss_before,
            "peak_rss": self.peak,
            "rss_after": self.rss_after,
            "peak_growth": self.peak - self.rss_before,
            "peak_reset": self.peak_reset,
        }


class Worker:
    def __init__(self) -> None:
        self.app: Any = None
        self.raw: dict[str, Any] = {}

    # --- the function ---------------------------------------------------------------------
    def load(self, env: dict[str, str], experiments: list[str] | None = None) -> dict[str, Any]:
        os.environ.update(env)  # boto3 reads AWS_ENDPOINT_URL(_S3) and credentials from here
        if experiments:
            from tests.bench import experiments as lab  # noqa: PLC0415

            lab.apply(experiments)
        ca_bundle = env.get("BENCH_CA_BUNDLE")
        if ca_bundle:
            _trust_bundle(ca_bundle)
        started = time.perf_counter()
        # Lambda's init phase, without importing the test harness (its emulator and moto helpers
        # would inflate the footprint a memory cgroup measures).
        spec = importlib.util.spec_from_file_location("app", APP_PATH)
        assert spec is not None and spec.loader is not None
        self.app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.app)
        return {"load_s": time.perf_counter() - started, "rss": _status()["VmRSS"]}

    def invoke(self, event: dict[str, Any], timeout_seconds: float = 900.0) -> dict[str, Any]:
        from tao_results_cli.local.context import FunctionSettings, new_context  # noqa: PLC0415

        context = new_context(
            FunctionSettings(timeout_seconds=timeout_seconds), "eu-west-1", "123456789012", "bench"
        )
        with Measured() as measured:
            answer = self.app.lambda_handler(event, context)
        return {**measured.report(), "answer": answer}

    # --- the raw baseline -----------------------------------------------------------------
    def raw_prepare(
        self, endpoint_url: str, bucket: str, reference_id: str, size: int, seed: int = 0
    ) -> dict[str, Any]:
        """The exact bytes the emulator serves for ``reference_id``, in memory, and a warm client."""
        from tao_emulator.results import _Body  # noqa: PLC0415 - the emulator's generator
        from tests.support.aws_stack import aws_client  # noqa: PLC0415

        data = bytearray(size)
        view, position = memoryview(data), 0
        for chunk in _Body(reference_id, size, None, seed).chunks():
            view[position : position + len(chunk)] = chunk
            position += len(chunk)
        self.raw = {"data": bytes(data), "endpoint_url": endpoint_url, "bucket": bucket}
        del data, view
        self.raw["client"] = aws_client("s3", endpoint_url)
        self.raw["client"].put_object(Bucket=bucket, Key="bench/warm-up", Body=b"warm")  # a warm client
        return {"rss": _status()["VmRSS"]}

    def raw_upload(self, key: str, chunk_size: int, concurrency: int, threshold: int | None = None) -> dict:
        import boto3  # noqa: PLC0415
        from boto3.s3.transfer import TransferConfig  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        from tests.support.aws_stack import FAKE_CREDENTIALS, REGION  # noqa: PLC0415

        client = boto3.client(
            "s3",
            endpoint_url=self.raw["endpoint_url"],
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(max_pool_connections=max(10, concurrency + 2)),
        )
        client.put_object(Bucket=self.raw["bucket"], Key="bench/warm-up", Body=b"warm")
        config = TransferConfig(
            multipart_threshold=threshold or chunk_size,
            multipart_chunksize=chunk_size,
            max_concurrency=concurrency,
        )
        body = io.BytesIO(self.raw["data"])
        with Measured() as measured:
            client.upload_fileobj(body, self.raw["bucket"], key, Config=config)
        return {**measured.report(), "size": len(self.raw["data"])}

    def raw_parts(self, key: str, part_size: int, concurrency: int) -> dict[str, Any]:
        """The leanest direct multipart loop: ``upload_part`` of slices of the bytes in memory.

        No TransferConfig machinery, no file object: one botocore call per part from a thread
        pool, with botocore's default checksum behaviour (CRC32) as the handler has.
        """
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        client, bucket, data = self.raw["client"], self.raw["bucket"], self.raw["data"]
        offsets = range(0, len(data), part_size)
        with Measured() as measured:
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

            def one(number: int, offset: int) -> dict[str, Any]:
                answer = client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data[offset : offset + part_size],
                )
                return {"PartNumber": number, "ETag": answer["ETag"]}

            with ThreadPoolExecutor(concurrency) as pool:
                parts = list(pool.map(one, range(1, len(offsets) + 1), offsets))
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return {**measured.report(), "size": len(data)}

    def quit(self) -> None:
        raise SystemExit(0)


def main() -> int:
    worker = Worker()
    out = sys.stdout
    sys.stdout = sys.stderr  # the handler's logs must not mix with the answers
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        op = command.pop("op")
        try:
            answer = {"ok": True, **(getattr(worker, op)(**command) or {})}
        except SystemExit:
            return 0
        except BaseException as error:
            answer = {
                "ok": False,
                "error": f"{type(error).__name__}: {error}",
                "trace": traceback.format_exc(),
            }
        out.write(json.dumps(answer, default=str) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
