"""Crash safety: SIGKILL the process running the handler in the middle of a large copy.

The handler runs in a child process (``python -m tao_results_cli.cli run-local``, the local event
source mapping), copying a large result through a slowed-down S3 proxy. Once parts are uploaded the
child is killed with SIGKILL: no ``finally``, no abort. Its message comes back when the visibility
timeout lapses; a fresh process copies it. The end state: one object with the emulator's bytes, no
dead letter, an empty queue, and only the killed process's orphaned upload left open -- which the
bucket's lifecycle rule in template.yaml removes (checked below).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tao_emulator import TaoEmulator
from tests.support.aws_stack import wait_until
from tests.support.faulty_s3_proxy import FaultyS3Proxy
from tests.support.harness import Harness, HarnessFactory
from tests.template.test_template import load_cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
MiB = 1024 * 1024


def run_local(h: Harness, s3_endpoint: str, *extra: str) -> subprocess.Popen[bytes]:
    """The local event source mapping with the real handler, in a child process."""
    env = {
        **os.environ,
        **h.environment,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "tao_results"), str(ROOT)]),
    }
    command = [
        sys.executable, "-m", "tao_results_cli.cli", "run-local",
        "--queue-url", h.resources.queue_url,
        "--function-dir", str(ROOT / "functions" / "download_result"),
        "--layer-dir", str(ROOT / "layers" / "tao_results"),
        "--wait-time", "1", "--timeout", "120", "-q", *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def upload_parts_stored(h: Harness) -> int:
    uploads = h.open_uploads()
    if not uploads:
        return 0
    upload = uploads[0]
    parts = h.s3.list_parts(Bucket=h.resources.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return len(parts.get("Parts", []))


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(64 * MiB + 123, marks=pytest.mark.slow, id="64MiB"),
        pytest.param(256 * MiB + 123, marks=pytest.mark.soak, id="256MiB"),
    ],
)
def test_sigkill_mid_copy_then_redelivery_leaves_one_correct_object(
    harness: HarnessFactory, tao: TaoEmulator, aws: Any, size: int
) -> None:
    info = tao.add_result("crash", size=size, filename="big.csv")
    h = harness()
    [message_id] = h.send({"referenceId": "crash"})
    with FaultyS3Proxy(aws.endpoint_url, part_delay_seconds=0.5) as proxy:
        # A 4 s visibility timeout for this receive: the message comes back soon after the kill.
        victim = run_local(h, proxy.endpoint_url, "--visibility", "4")
        try:
            wait_until(lambda: upload_parts_stored(h) >= 3, timeout=60, what="a copy in progress")
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.communicate(timeout=10)
        assert victim.returncode == -signal.SIGKILL
        [orphan] = h.open_uploads()
        assert h.keys() == []

        proxy.part_delay_seconds = 0.0
        rescuer = run_local(h, proxy.endpoint_url, "--visibility", "120", "--until-empty", "--settle", "1")
        output, _ = rescuer.communicate(timeout=180)
    assert rescuer.returncode == 0, output.decode(errors="replace")[-2000:]

    assert h.keys() == ["tao-results/crash/big.csv"]
    digest = hashlib.sha256()
    body = h.object("tao-results/crash/big.csv")["Body"]
    for chunk in iter(lambda: body.read(8 * MiB), b""):
        digest.update(chunk)
    assert digest.hexdigest() == info.sha256
    assert h.queue_counts() == (0, 0)
    assert h.dead_letters() == []
    # The rescuer completed or aborted its own upload; only the killed process's one is left,
    # for the bucket's lifecycle rule (below) to remove.
    assert [upload["UploadId"] for upload in h.open_uploads()] == [orphan["UploadId"]]
    assert orphan["Key"] == "tao-results/crash/big.csv"
    assert message_id


# ---- the lifecycle rule that cleans up after such crashes ----------------------------------------


def test_template_lifecycle_rule_aborts_orphaned_multipart_uploads() -> None:
    if not TEMPLATE.exists():
        pytest.skip("template.yaml is not there yet: this check runs once it is")
    template = load_cfn_yaml(TEMPLATE)
    buckets = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::S3::Bucket"
    }
    assert buckets, "the template creates no bucket"
    covering = []
    for name, bucket in buckets.items():
        rules = (bucket.get("Properties", {}).get("LifecycleConfiguration") or {}).get("Rules", [])
        for rule in rules:
            abort = rule.get("AbortIncompleteMultipartUpload")
            if not abort or rule.get("Status") != "Enabled":
                continue
            # A rule restricted to a prefix must still cover where results land.
            prefix = rule.get("Prefix") or (rule.get("Filter") or {}).get("Prefix") or ""
            assert isinstance(prefix, str) and "tao-results/".startswith(prefix), (name, prefix)
            assert "DaysAfterInitiation" in abort
            covering.append(name)
    assert covering, "no enabled AbortIncompleteMultipartUpload lifecycle rule on any bucket"
