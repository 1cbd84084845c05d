"""``make local-stack`` (``python -m tao_results_demo.local_stack``) as a user runs it, over sockets.

Starts it as a child process, reads the ``export`` lines it prints, enqueues with ``tao-results
enqueue`` and drains with ``tao-results run-local --until-empty`` using only those variables, then
sends SIGINT and checks that it exits 0 with both of its servers gone.
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tao_results_demo.local_stack import READY

ROOT = Path(__file__).resolve().parents[2]


def read_until_ready(process: subprocess.Popen[str], timeout: float) -> list[str]:
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while READY not in seen:
        try:
            seen.append(lines.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"local-stack not ready within {timeout}s: {seen}")
    return seen


def parse_exports(lines: list[str]) -> dict[str, str]:
    variables = {}
    for line in lines:
        if line.startswith("export "):
            [assignment] = shlex.split(line[len("export ") :])
            name, _, value = assignment.partition("=")
            variables[name] = value
    return variables


def responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # an answer, even an error, means something still listens
    except OSError:
        return False


def test_local_stack_serves_enqueue_and_run_local_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    env_file = tmp_path / "local.env"
    base = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "TAO_"))}
    base["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "layers" / "tao_results"), str(ROOT / "tools")]
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tao_results_demo.local_stack", "--env-file", str(env_file)],
        cwd=ROOT,
        env=base,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = read_until_ready(process, timeout=60)
        assert responds(parse_exports(lines)["TAO_BASE_URL"])  # the check below can fail
        variables = parse_exports(lines)
        assert {"AWS_ENDPOINT_URL", "SOURCE_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "TAO_BASE_URL"} <= set(
            variables
        )
        assert {"RESULTS_BUCKET", "TAO_CREDENTIALS_SECRET_ID", "AWS_ACCESS_KEY_ID", "AWS_REGION"} <= set(
            variables
        )
        assert parse_exports(env_file.read_text().splitlines()) == variables
        cli_env = {**base, **variables}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "tao_results_cli.cli", *args],
                cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=90, check=False,
            )  # fmt: skip

        enqueued = cli("enqueue", "local-1", "local-2", "not-there")
        assert enqueued.returncode == 0, enqueued.stderr
        ran = cli("run-local", "--until-empty", "--timeout", "60", "--function-logs", "none",
                  "--env", "NOT_FOUND_GRACE_SECONDS=0")  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        bucket = variables["RESULTS_BUCKET"]
        assert f"→ s3://{bucket}/" in next(line for line in ran.stdout.splitlines() if " local-1 " in line)
        assert "→ DLQ (not_found, HTTP 404)" in next(
            line for line in ran.stdout.splitlines() if "not-there" in line
        )
        assert "3 message(s): 2 → S3, 1 → DLQ" in ran.stdout
        listed = cli("dlq", "list")
        assert "not_found" in listed.stdout, listed.stderr
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    assert not responds(variables["AWS_ENDPOINT_URL"] + "/moto-api/")
    assert not responds(variables["TAO_BASE_URL"])
