"""``make demo``: the real function, end to end, on this machine, in well under two minutes.

Starts moto's server and the TAO emulator (a child process) on loopback ports, creates the bucket,
the credentials secret, the source queue (redrive to the DLQ after 3 receives) and the DLQ,
registers results and faults, enqueues a realistic mix of requests, then runs the REAL
``lambda_handler`` through the local SQS event source mapping until every message is settled in
S3 or in the DLQ. Prints a line per message per invocation (the scenario, and where the message went:
``→ s3://…``, ``→ DLQ (reason)`` or back to the queue), then a table of where each request ended,
with the S3 bytes checked against the emulator's sha256. The function's own output (JSON log lines,
EMF metric documents) goes to a file (``--function-logs``), as it would go to CloudWatch Logs.
Exits non-zero if anything is not where it should be. Every process it started is stopped, Ctrl-C included.

Run from the repository root: ``python -m tao_results_demo [--timeout 100] [--large-mib 120]
[--function-logs .demo/function.log]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from local_aws import (
    MotoServer,
    StackResources,
    aws_client,
    create_resources,
    function_environment,
)
from tao_emulator import EmulatorAdmin, Fault, ResultInfo, running_emulator_process
from tao_results.classification import DOWNLOAD_API_OUTCOMES, error_for_status
from tao_results.config import Settings, load_settings
from tao_results.errors import PermanentError
from tao_results.message import parse_request
from tao_results.url_policy import SignedUrlPolicy
from tao_results_cli.local.context import FunctionSettings
from tao_results_cli.local.function_output import FunctionOutput, capturing_function_output, where_it_went
from tao_results_cli.local.loader import load_handler
from tao_results_cli.local.runner import LocalEventSourceMapping, RunnerConfig, install_stop_signals
from tao_results_cli.local.stats import MessageEvent, RunStats
from tao_results_cli.queues import DeadLetter, enqueue, list_dead_letters
from tao_results_demo.demo_metrics import AwsSideMetrics

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"
PREFIX = "tao-results/"
MALFORMED = "<malformed>"
MALFORMED_BODY = "this is not JSON {referenceId: oops"
FOREIGN_URL = "http://127.0.0.2:9/"  # a host the allow-list does not name
KIB, MIB = 1024, 1024 * 1024
MAX_RECEIVE_COUNT = 3
VISIBILITY_SECONDS = 30  # >= the function timeout, as Lambda requires; the function itself
FUNCTION_TIMEOUT = 30.0  # shortens visibility to a 1-3 s backoff on transient failures


@dataclass(frozen=True)
class Ending:
    """Where a request must end: S3 (``reason`` None) or the DLQ with this reason and httpStatus."""

    reason: str | None = None
    http_status: int | None = None

    def describe(self) -> str:
        if self.reason is None:
            return "S3"
        return f"DLQ {self.reason}" + (f" ({self.http_status})" if self.http_status else "")


# How a failing scenario ends, computed by the function's own code from the scenario's input (its
# classification tables, its request parser, its signed-URL policy): the EXPECTED column and the
# check both read it, so neither can drift from what the function does.
Classify = Callable[[Settings], PermanentError]


def _download_api_answers(status: int) -> Classify:
    def classify(settings: Settings) -> PermanentError:
        error = error_for_status(status, DOWNLOAD_API_OUTCOMES, "the demo's fault")
        if not isinstance(error, PermanentError):
            raise ValueError(f"HTTP {status} from the Download API is retried, it never ends in the DLQ")
        return error

    return classify


def _signed_url(url: str) -> Classify:
    def classify(settings: Settings) -> PermanentError:
        policy = SignedUrlPolicy(settings.signed_url_allowed_hosts, settings.allow_plain_http)
        return _raised(lambda: policy.check(url))

    return classify


def _body(body: str) -> Classify:
    return lambda settings: _raised(lambda: parse_request(body))


def _raised(call: Callable[[], object]) -> PermanentError:
    try:
        call()
    except PermanentError as error:
        return error
    raise ValueError("the function accepts this: it does not end in the DLQ")


@dataclass(frozen=True)
class Scenario:
    """One request of the mix; ``dead_letter`` (None: it must land in S3) says how it fails."""

    reference_id: str
    story: str
    setup: Callable[[EmulatorAdmin, str], ResultInfo | None]
    dead_letter: Classify | None = None

    def ending(self, settings: Settings) -> Ending:
        if self.dead_letter is None:
            return Ending()
        error = self.dead_letter(settings)
        return Ending(error.reason, error.http_status)


def _result(size: int, **options: Any) -> Callable[[EmulatorAdmin, str], ResultInfo]:
    return lambda admin, ref: admin.add_result(ref, size=size, **options)


def _csv(rows: int) -> Callable[[EmulatorAdmin, str], ResultInfo]:
    lines = ["student_id,class_id,status"] + [f"S{n:06d},C{n % 30:03d},imported" for n in range(rows)]
    content = ("\n".join(lines) + "\n").encode()
    return lambda admin, ref: admin.add_result(ref, content=content, filename="import-report.csv")


def _with_fault(
    fault: Callable[[str], Fault], result: Callable[[EmulatorAdmin, str], ResultInfo] | None = None
) -> Callable[[EmulatorAdmin, str], ResultInfo | None]:
    def setup(admin: EmulatorAdmin, ref: str) -> ResultInfo | None:
        info = result(admin, ref) if result else None
        admin.add_fault(fault(ref))
        return info

    return setup


def scenarios(large_mib: int) -> list[Scenario]:
    return [
        Scenario("demo-small-csv", "a few KiB of CSV", _csv(150)),
        Scenario("demo-medium", "6 MiB", _result(6 * MIB, filename="medium.csv")),
        Scenario("demo-large", f"{large_mib} MiB, multipart", _result(large_mib * MIB, filename="large.csv")),
        Scenario(
            "demo-flaky-500",
            "two 500s, then fine",
            _with_fault(
                lambda ref: Fault(
                    "download",
                    "status",
                    ref,
                    times=2,
                    status=500,
                    body='{"message": "boom"}',
                    content_type="application/json",
                ),
                _result(64 * KIB),
            ),
        ),
        Scenario(
            "demo-expired-url",
            "first signed URL already expired",
            _with_fault(lambda ref: Fault("download", "expired_url", ref, times=1), _result(256 * KIB)),
        ),
        Scenario("demo-pending", "404 for the first 2 calls", _result(32 * KIB, ready_after_calls=2)),
        Scenario(
            "demo-unknown-404",
            "unknown reference, retried during the grace period",
            lambda admin, ref: None,
            # still within NOT_FOUND_GRACE_SECONDS on the last delivery: dead-lettered as the 404 it is
            _download_api_answers(404),
        ),
        Scenario(
            "demo-no-scope-403",
            "403 Insufficient scope",
            _with_fault(
                lambda ref: Fault(
                    "download",
                    "status",
                    ref,
                    times=None,
                    status=403,
                    body='{"message": "Insufficient scope"}',
                    content_type="application/json",
                ),
                _result(KIB),
            ),
            _download_api_answers(403),
        ),
        Scenario(
            "demo-foreign-host",
            "signed URL to another host",
            _with_fault(
                lambda ref: Fault(
                    "download", "signed_url", ref, times=None, url=FOREIGN_URL + "{signed_path}"
                ),
                _result(KIB),
            ),
            _signed_url(FOREIGN_URL + "results/demo-foreign-host"),
        ),
        Scenario(MALFORMED, "body is not JSON", lambda admin, ref: None, _body(MALFORMED_BODY)),
    ]


# ------------------------------------------------------------------------------------------ outcome


@dataclass
class Landing:
    """Where one request ended, as found in S3 and the DLQ afterwards."""

    s3_key: str | None = None
    s3_size: int | None = None
    s3_sha256: str | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def describe(self) -> str:
        places = []
        if self.s3_key is not None:
            places.append(f"s3://{self.s3_key} ({human_size(self.s3_size or 0)})")
        for letter in self.dead_letters:
            status = f" ({letter.http_status})" if letter.http_status is not None else ""
            places.append(f"DLQ: {letter.reason}{status}")
        return "; ".join(places) or "nowhere (not settled)"


def verdict(expected: Ending, landing: Landing, info: ResultInfo | None) -> tuple[bool, str]:
    """Whether the request ended exactly where it should, and why not."""
    if expected.reason is None:
        if landing.dead_letters:
            return False, "also dead-lettered"
        if landing.s3_key is None or info is None:
            return False, "not in S3"
        if (landing.s3_size, landing.s3_sha256) != (info.size, info.sha256):
            return False, "bytes differ from the emulator's"
        return True, "sha256 matches"
    if landing.s3_key is not None:
        return False, "unexpectedly in S3"
    if len(landing.dead_letters) != 1:
        return False, f"{len(landing.dead_letters)} dead letters"
    [letter] = landing.dead_letters
    if letter.reason != expected.reason:
        return False, f"reason {letter.reason}"
    if letter.http_status != expected.http_status:
        return False, f"httpStatus {letter.http_status}"
    return True, "as expected"


def human_size(size: int) -> str:
    for unit, scale in (("MiB", MIB), ("KiB", KIB)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def find_landings(resources: StackResources, refs: list[str]) -> dict[str, Landing]:
    s3 = aws_client("s3", resources.endpoint_url)
    sqs = aws_client("sqs", resources.endpoint_url)
    landings = {ref: Landing() for ref in refs}
    for ref, landing in landings.items():
        if ref == MALFORMED:
            continue
        listed = s3.list_objects_v2(Bucket=resources.bucket, Prefix=f"{PREFIX}{ref}/").get("Contents", [])
        if listed:
            key = listed[0]["Key"]
            landing.s3_key, landing.s3_size = f"{resources.bucket}/{key}", int(listed[0]["Size"])
            landing.s3_sha256 = sha256_of_object(s3, resources.bucket, key)
    for letter in list_dead_letters(sqs, resources.dead_letter_queue_url, limit=100):
        ref = letter.reference_id if letter.reference_id in landings else MALFORMED
        landings[ref].dead_letters.append(letter)
    return landings


def sha256_of_object(s3: Any, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(4 * MIB), b""):
        digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ running


class Progress:
    """Prints a line per message per invocation: the scenario, and where the message went.

    Remembers when each message was last handled. ``output`` is the function's stdout, read for
    the lines that say where each message went; ``stream`` is where the demo's own lines go.
    """

    def __init__(
        self, started: float, names: dict[str, str], stories: dict[str, str], output: FunctionOutput
    ) -> None:
        self.started = started
        self.names = names  # messageId -> referenceId or <malformed>
        self.stories = stories  # referenceId -> the scenario's one-line description
        self.output = output
        self.stream: Any = sys.stdout
        self.last_event: dict[str, float] = {}
        self._lock = threading.Lock()
        self._width = max(len(f"{name} ({story})") for name, story in stories.items())

    def __call__(self, event: MessageEvent) -> None:
        now = time.monotonic()
        name = self.names.get(event.message_id, event.reference_id or MALFORMED)
        kind, where = where_it_went(event, self.output)
        if kind == "retry" and event.receive_count >= MAX_RECEIVE_COUNT:
            where = where.replace("SQS delivers it again", "SQS moves it to the DLQ (maxReceiveCount)")
        scenario = f"{name} ({self.stories.get(name, '?')})"
        with self._lock:
            self.last_event[event.message_id] = now
            print(
                f"  {now - self.started:6.1f}s  {scenario:<{self._width}}  #{event.receive_count}  "
                f"{where} ({event.duration_ms / 1000:.1f}s invocation)",
                file=self.stream,
                flush=True,
            )


def send_requests(resources: StackResources, plan: list[Scenario]) -> dict[str, str]:
    """Enqueue the mix; returns messageId -> name."""
    sqs = aws_client("sqs", resources.endpoint_url)
    refs = [scenario.reference_id for scenario in plan if scenario.reference_id != MALFORMED]
    result = enqueue(sqs, resources.queue_url, refs)
    if result.failed:
        raise RuntimeError(f"could not enqueue: {result.failed}")
    names = {message_id: ref for ref, message_id in result.sent.items()}
    raw = sqs.send_message(QueueUrl=resources.queue_url, MessageBody=MALFORMED_BODY)
    names[raw["MessageId"]] = MALFORMED
    return names


def run_function(
    resources: StackResources,
    environment: dict[str, str],
    progress: Progress,
    max_seconds: float,
    aws_side: AwsSideMetrics,
) -> tuple[RunStats, str | None]:
    config = RunnerConfig(
        queue_url=resources.queue_url,
        batch_size=3,
        concurrency=4,
        wait_time_seconds=1,
        function=FunctionSettings("download-result", "$LATEST", 1024, FUNCTION_TIMEOUT),
        until_empty=True,
        settle_seconds=1.5,
        max_seconds=max_seconds,
    )
    sqs = aws_client("sqs", resources.endpoint_url)
    mapping = LocalEventSourceMapping(
        config, sqs=sqs, on_message=[progress], on_invocation=[aws_side.on_invocation]
    )
    mapping.prepare()  # AWS_LAMBDA_* first: the handler reads its environment when imported
    paths = [ROOT / "layers" / "tao_results", ROOT / "functions" / "download_result"]
    with capturing_function_output(progress.output) as terminal, aws_side.sampling():
        stdout = progress.stream = terminal.stdout
        mapping.handler = load_handler("app:lambda_handler", paths, environment)
        stop = threading.Event()
        restore = install_stop_signals(stop, lambda text: print(f"\n{text}", file=stdout, flush=True))
        try:
            return mapping.run(stop), mapping.stop_reason
        finally:
            restore()


def print_report(
    plan: list[Scenario],
    endings: dict[str, Ending],
    infos: dict[str, ResultInfo | None],
    landings: dict[str, Landing],
    stats: RunStats,
    progress: Progress,
) -> bool:
    by_name: dict[str, list[Any]] = {}
    for message in stats.messages():
        by_name.setdefault(progress.names.get(message.message_id, MALFORMED), []).append(message)
    header = ("", "REFERENCE", "EXPECTED", "ENDED IN", "ATTEMPTS", "TIME", "CHECK")
    rows, all_ok = [], True
    for scenario in plan:
        expected = endings[scenario.reference_id]
        ok, why = verdict(expected, landings[scenario.reference_id], infos.get(scenario.reference_id))
        all_ok &= ok
        messages = by_name.get(scenario.reference_id, [])
        attempts = max((message.attempts for message in messages), default=0)
        ends = [progress.last_event.get(message.message_id) for message in messages]
        seconds = max((end for end in ends if end is not None), default=None)
        took = "-" if seconds is None else f"{seconds - progress.started:.1f}s"
        row = (
            "✓" if ok else "✗",
            scenario.reference_id,
            expected.describe(),
            landings[scenario.reference_id].describe(),
            str(attempts),
            took,
            why,
        )
        rows.append(row)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return all_ok


# ------------------------------------------------------------------------------------------ services


@contextmanager
def services(stack: ExitStack) -> Iterator[tuple[MotoServer, EmulatorAdmin]]:
    """moto's server and the emulator process, stopped on the way out whatever happens.

    Each runs in its own session: a terminal's Ctrl-C reaches only the demo, which finishes its
    batch and then stops them itself.
    """
    moto = MotoServer(start_new_session=True)
    stack.callback(moto.stop)
    moto.start()
    admin = stack.enter_context(
        running_emulator_process(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, start_new_session=True)
    )
    yield moto, admin


def terminate_on_sigterm() -> None:
    """SIGTERM outside the run loop unwinds like Ctrl-C, so the finally blocks stop the children."""

    def handle(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handle)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tao_results_demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--timeout", type=float, default=100.0, help="give up after this many seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--large-mib", type=int, default=120, help="size of the large result in MiB (default: %(default)s)"
    )
    parser.add_argument(
        "--function-logs",
        type=Path,
        default=Path(".demo/function.log"),
        metavar="PATH",
        help="the function's JSON log lines and EMF metrics, overwritten each run (default: %(default)s)",
    )
    parser.add_argument(
        "--function-log-level",
        default="INFO",
        help="POWERTOOLS_LOG_LEVEL for the function; above INFO the progress lines cannot say where "
        "each message went (default: %(default)s)",
    )
    return parser.parse_args(argv)


def demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    plan = scenarios(args.large_mib)
    print("starting moto's server (S3, SQS, Secrets Manager) and the TAO emulator...", flush=True)
    with ExitStack() as stack, services(stack) as (moto, admin):
        print(f"moto server at {moto.endpoint_url}, TAO emulator at {admin.base_url}")
        resources = create_resources(
            moto.endpoint_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            max_receive_count=MAX_RECEIVE_COUNT,
            visibility_timeout=VISIBILITY_SECONDS,
        )
        infos = {scenario.reference_id: scenario.setup(admin, scenario.reference_id) for scenario in plan}
        environment = function_environment(
            resources,
            admin.base_url,
            RESULTS_PREFIX=PREFIX,
            NOT_FOUND_GRACE_SECONDS="60",
            RETRY_BACKOFF_BASE_SECONDS="1",
            RETRY_BACKOFF_MAX_SECONDS="3",
            DEADLINE_MARGIN_SECONDS="5",
            POWERTOOLS_LOG_LEVEL=args.function_log_level,
        )
        settings = load_settings(environment)
        endings = {scenario.reference_id: scenario.ending(settings) for scenario in plan}
        names = send_requests(resources, plan)
        print(
            f"enqueued {len(names)} requests; running the function (batch 3, 4 pollers, maxReceiveCount 3);"
            f" its logs and metrics go to {args.function_logs}\n"
        )
        args.function_logs.parent.mkdir(parents=True, exist_ok=True)
        log_file = stack.enter_context(args.function_logs.open("w", encoding="utf-8"))
        stories = {scenario.reference_id: scenario.story for scenario in plan}
        progress = Progress(time.monotonic(), names, stories, FunctionOutput(log_file, resources.bucket))
        queue_urls = {"source": resources.queue_url, "dead-letter": resources.dead_letter_queue_url}
        aws_side = AwsSideMetrics(aws_client("sqs", resources.endpoint_url), queue_urls)
        stats, reason = run_function(resources, environment, progress, args.timeout, aws_side)
        aws_side.write(args.function_logs.with_name("aws-metrics.log"))
        print(f"\nlocal event source mapping stopped ({reason}); checking S3 and the DLQ...\n")
        landings = find_landings(resources, [scenario.reference_id for scenario in plan])
        all_ok = print_report(plan, endings, infos, landings, stats, progress)
        print(f"\n{stats.invocations} invocations, {time.monotonic() - started:.1f}s in total")
        emulator_stats = admin.stats()
        print(f"emulator: {json.dumps({k: v for k, v in emulator_stats.items() if 'fault' in k})}")
    if reason == "stopped":
        print("interrupted: the table above is partial", file=sys.stderr)
        return 130
    if reason != "until_empty":
        print(f"✗ the queue was not drained within {args.timeout:.0f}s", file=sys.stderr)
        return 1
    print(
        "✓ every request is where it should be" if all_ok else "✗ some requests are not where they should be"
    )
    return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    terminate_on_sigterm()
    try:
        return demo(args)
    except KeyboardInterrupt:
        print("\ninterrupted; every process this demo started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
