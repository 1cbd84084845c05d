"""``tao-results``: enqueue requests, inspect and redrive dead letters, run the function locally,
check a deployment (``doctor``, see tao_results_cli.doctor).

Every command talks to AWS unless ``AWS_ENDPOINT_URL`` points elsewhere (a local moto server, for
instance); credentials and region come from the usual AWS configuration. User errors (a missing or
unknown queue, a bad referenceId, no credentials, an unreachable endpoint) print one line to stderr
and exit with status 2; other failures exit with 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from tao_results.errors import aws_error_details
from tao_results.message import (
    ENVELOPE_DIRECT,
    ENVELOPE_EVENTBRIDGE,
    REFERENCE_ID_PATTERN,
    is_valid_reference_id,
)
from tao_results_cli import doctor
from tao_results_cli.aws import (
    CREDENTIAL_CODES,
    StackNotFound,
    describe_client_error,
    is_missing_queue,
    queue_account,
    queue_arn,
    queue_region,
    sqs_client,
)
from tao_results_cli.local.context import FunctionSettings
from tao_results_cli.local.function_output import (
    FunctionOutput,
    capturing_function_output,
    where_it_went,
)
from tao_results_cli.local.loader import HandlerLoadError, load_handler
from tao_results_cli.local.runner import LocalEventSourceMapping, RunnerConfig, install_stop_signals
from tao_results_cli.local.stats import MessageEvent, RunStats
from tao_results_cli.queues import (
    DeadLetter,
    QueueOperationError,
    enqueue,
    invalid_reference_ids,
    list_dead_letters,
    move_task_unsupported,
    redrive_by_copy,
    start_move_task,
    wait_for_move_task,
)
from tao_results_cli.request_bodies import (
    DEFAULT_DETAIL_TYPE,
    DEFAULT_EVENT_SOURCE,
    ENVELOPES,
    RequestRefused,
    RequestShape,
    request_body,
)
from tao_results_cli.status import format_status, read_status

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

PROG = "tao-results"
USER_ERROR = 2
FAILURE = 1


class UserError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors in a single line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


# ------------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    _add_enqueue(commands)
    dlq = commands.add_parser("dlq", help="inspect and redrive the dead-letter queue", description=DLQ_HELP)
    dlq_commands = dlq.add_subparsers(dest="dlq_command", metavar="COMMAND", parser_class=OneLineParser)
    dlq_commands.required = True
    _add_dlq_list(dlq_commands)
    _add_dlq_redrive(dlq_commands)
    _add_run_local(commands)
    _add_doctor(commands)
    _add_status(commands)
    return parser


DESCRIPTION = (
    "Enqueue TAO result requests, inspect and redrive dead letters, run the function locally, "
    "check a deployment. "
    "Talks to AWS unless AWS_ENDPOINT_URL is set (e.g. to a local moto server)."
)
DLQ_HELP = (
    "Dead letters are JSON envelopes written by the function (reason, httpStatus, referenceId, "
    "detail, originalBody, ...) or raw requests moved by SQS itself after maxReceiveCount receives."
)


def _queue_option(parser: argparse.ArgumentParser, flag: str, env: str, what: str) -> None:
    parser.add_argument(
        flag,
        default=os.environ.get(env),
        metavar="URL",
        help=f"{what} (default: ${env})",
    )


ENQUEUE_HELP = f"""\
Send one request per referenceId (SendMessageBatch, 10 at a time). Every referenceId is checked
against {REFERENCE_ID_PATTERN.pattern}, and every body is read back with the function's own parser
(tao_results.message.parse_request) before anything is sent: what is sent is what the function
accepts, as meant. A request is {{"referenceId": ...}}, with an optional taskToken (a Step Functions
callback token) and an optional passthrough (any JSON value up to 4 KiB serialised, echoed in
every event and callback about the request), in one of three envelopes (README, "Integrations"):

  direct       the request itself
  sns          an SNS notification as SQS receives it without raw message delivery (the request
               as JSON text in "Message"; unsigned, the function reads Type and Message only)
  eventbridge  an EventBridge event as a rule with an SQS target delivers it (the request in
               "detail"; account and region are the queue's)
"""


def _add_enqueue(commands: Any) -> None:
    parser = commands.add_parser(
        "enqueue",
        help="send requests to the source queue, in any shape the function accepts",
        description=ENQUEUE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _queue_option(parser, "--queue-url", "SOURCE_QUEUE_URL", "the source queue")
    parser.add_argument("refs", nargs="*", metavar="REF", help="referenceIds; '-' reads them from stdin")
    parser.add_argument(
        "-f",
        "--file",
        type=Path,
        help="read referenceIds from FILE, one per line, '#' comments allowed (default: none)",
    )
    parser.add_argument(
        "--envelope",
        choices=ENVELOPES,
        default=ENVELOPE_DIRECT,
        help="how each request travels: %(choices)s (default: %(default)s)",
    )
    parser.add_argument(
        "--numeric-ids",
        action="store_true",
        help="send each referenceId as a JSON number, as the vendor's example 12345; every one must "
        "be digits without leading zeros (default: JSON strings)",
    )
    parser.add_argument(
        "--task-token",
        metavar="TOKEN",
        help="a Step Functions task token (1-2048 characters), answered with SendTaskSuccess or "
        "SendTaskFailure when the function has STEP_FUNCTIONS_CALLBACKS=true; one referenceId only "
        "(default: none)",
    )
    parser.add_argument(
        "--passthrough",
        metavar="JSON",
        help="a JSON value (at most 4 KiB serialised) put in every request and echoed by the function "
        "(default: none)",
    )
    parser.add_argument(
        "--event-source",
        metavar="SOURCE",
        help=f"--envelope eventbridge: the event's source (default: {DEFAULT_EVENT_SOURCE})",
    )
    parser.add_argument(
        "--detail-type",
        metavar="TYPE",
        help=f"--envelope eventbridge: the event's detail-type (default: {DEFAULT_DETAIL_TYPE})",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success (default: one summary line)"
    )
    parser.set_defaults(func=cmd_enqueue)


def _add_dlq_list(commands: Any) -> None:
    parser = commands.add_parser(
        "list",
        help="show dead letters without consuming them",
        description="Show dead letters as a table (or JSON). Messages are received with a short "
        "visibility timeout and made visible again right away; they are not deleted. Raw messages "
        "moved by SQS's redrive policy are shown with reason max_receive_count_exceeded. MESSAGE ID "
        "is the id of the source message that failed (the dead letter's messageId, the id the "
        "function's log lines name); --json also gives the DLQ message's own id (dlqMessageId).",
    )
    _queue_option(parser, "--dlq-url", "DEAD_LETTER_QUEUE_URL", "the dead-letter queue")
    parser.add_argument(
        "--max", type=_positive_int, default=100, metavar="N", help="show at most N (default: %(default)s)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON array instead of a table (default: a table)"
    )
    parser.add_argument(
        "--hold",
        type=_positive_int,
        default=30,
        metavar="SECONDS",
        help="how long messages may stay hidden while the queue is read; reset to 0 at the end "
        "(default: %(default)s)",
    )
    parser.set_defaults(func=cmd_dlq_list)


def _add_dlq_redrive(commands: Any) -> None:
    parser = commands.add_parser(
        "redrive",
        help="move dead letters back to a source queue",
        description="Move every dead letter back, bodies verbatim, with SQS's StartMessageMoveTask "
        "(to --to-queue-url, else to the queue each message came from) and wait for it to finish. "
        "Where the endpoint lacks StartMessageMoveTask, or with --copy, messages are received, sent "
        "to --to-queue-url and deleted from the DLQ only once the send succeeded. The destination "
        "is never taken from the environment: name it, or let SQS return each message where it "
        "came from.",
    )
    _queue_option(parser, "--dlq-url", "DEAD_LETTER_QUEUE_URL", "the dead-letter queue")
    parser.add_argument(
        "--to-queue-url",
        metavar="URL",
        help="destination queue; the copy path needs it (default: none: the move task returns each "
        "message to the queue it came from)",
    )
    parser.add_argument(
        "--copy",
        action="store_true",
        help="skip StartMessageMoveTask; receive, send, then delete (default: the move task, copying "
        "only where the endpoint lacks it)",
    )
    parser.add_argument(
        "--max", type=_positive_int, metavar="N", help="copy path: move at most N messages (default: all)"
    )
    parser.add_argument(
        "--rate",
        type=_positive_int,
        metavar="N",
        help="move task: MaxNumberOfMessagesPerSecond (default: SQS's, up to 500 per second)",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="move task: start it and return (default: wait for it)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="move task: wait at most this long (default: %(default)s)",
    )
    parser.set_defaults(func=cmd_dlq_redrive)


def _add_run_local(commands: Any) -> None:
    parser = commands.add_parser(
        "run-local",
        help="run the function here against a real queue (a local event source mapping)",
        description="Poll the queue like Lambda's SQS event source mapping and invoke the handler in "
        "this process: same event, context and batchItemFailures handling; visibility and the "
        "redrive policy are left to SQS. The function's own settings (TAO_BASE_URL, RESULTS_BUCKET, "
        "...) come from the environment, applied before the handler is imported. Ctrl-C finishes "
        "the current batch and stops; a second Ctrl-C interrupts.",
    )
    _queue_option(parser, "--queue-url", "SOURCE_QUEUE_URL", "the source queue")
    parser.add_argument(
        "--function-logs",
        default="-",
        metavar="PATH",
        help="where the function's own output (JSON log lines, EMF metrics) goes: a file (appended), "
        "'-' for stderr, 'none' to drop it; this command's lines stay on stdout (default: -)",
    )
    parser.add_argument(
        "--function-dir",
        type=Path,
        default=Path("functions/download_result"),
        help="the function's code (default: %(default)s)",
    )
    parser.add_argument(
        "--layer-dir",
        type=Path,
        default=Path("layers/tao_results"),
        help="the layer's directory, put on sys.path before the function's (default: %(default)s)",
    )
    parser.add_argument(
        "--handler",
        default="app:lambda_handler",
        metavar="MODULE:FUNCTION",
        help="the handler, as the template's Handler: a module of --function-dir (or --layer-dir) and "
        "the function in it to invoke (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=10, help="records per invocation (default: %(default)s)"
    )
    parser.add_argument(
        "--batching-window",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long to gather records before invoking, as the mapping's "
        "MaximumBatchingWindowInSeconds (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=1,
        help="pollers invoking the handler in parallel, in this process (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="the function's timeout: the context's remaining time counts down from it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--memory",
        type=_positive_int,
        default=1024,
        metavar="MB",
        help="memory_limit_in_mb (default: %(default)s)",
    )
    parser.add_argument(
        "--function-name",
        default="download-result",
        help="the context's function_name (default: %(default)s)",
    )
    parser.add_argument(
        "--visibility",
        type=int,
        metavar="SECONDS",
        help="VisibilityTimeout passed to ReceiveMessage (default: the queue's own, as Lambda)",
    )
    parser.add_argument(
        "--wait-time",
        type=int,
        metavar="SECONDS",
        help="how long each ReceiveMessage long-polls, its WaitTimeSeconds (default: 20, as "
        "Lambda; 1 with --until-empty, so the run ends soon after the queue is empty)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra function environment, repeatable (default: none; POWERTOOLS_LOG_LEVEL is INFO "
        "unless set, so that the function's lines say where each message went)",
    )
    parser.add_argument(
        "--until-empty",
        action="store_true",
        help="stop once no message is visible, in flight or delayed (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="--until-empty: how long the queue must stay empty (default: %(default)s)",
    )
    parser.add_argument(
        "--max-seconds", type=float, metavar="N", help="stop after N seconds (default: no limit)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per message (default: one each)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the runner's own activity (default: warnings only)"
    )
    parser.set_defaults(func=cmd_run_local)


DOCTOR_HELP = """\
Check a deployment before traffic arrives and print one row per check (PASS, FAIL or SKIP):
settings valid; secret readable and well-formed; a token obtained (and with which client
authentication); the Download API answers for --reference-id and its signed URL passes
SIGNED_URL_ALLOWED_HOSTS; the bucket accepts a write under RESULTS_PREFIX (a probe object
{prefix}.doctor/<uuid>, put then deleted); the DLQ exists; the source queue's VisibilityTimeout is
at least 6 x the function's Timeout and its event source mapping reports batch item failures.
Every check goes through the function's own library code.

With --stack-name the stack's outputs name the function and the source queue, and the settings are
the function's environment (GetFunctionConfiguration). Without it the settings are this
environment's variables, the same names as the function's: TAO_BASE_URL,
TAO_CREDENTIALS_SECRET_ID, RESULTS_BUCKET, DEAD_LETTER_QUEUE_URL, and the optional ones (README,
Configuration); --function-name and --source-queue-url (default $SOURCE_QUEUE_URL) name what the
environment does not (either is found from the other through the event source mapping).

Reads the caller may not make (AccessDenied on CloudFormation, Lambda, the source queue) are SKIP
with a note; a check whose prerequisite failed is SKIP. Exit status: 0 when nothing FAILs, 1 with
the failing checks named on the last line, 2 for a usage error (unknown stack, no credentials).
"""


def _add_doctor(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check a deployment: settings, secret, token, Download API, bucket, queues",
        description=DOCTOR_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stack-name",
        metavar="NAME",
        help="read the deployment from this stack (default: none: the settings of this environment)",
    )
    parser.add_argument(
        "--function-name",
        metavar="NAME",
        help="the function, name or ARN (default: the stack's, else found from the source queue)",
    )
    parser.add_argument(
        "--source-queue-url",
        metavar="URL",
        help="the source queue (default: the stack's SourceQueueUrl, else $SOURCE_QUEUE_URL)",
    )
    parser.add_argument(
        "--reference-id",
        metavar="ID",
        help="a referenceId whose result is ready: asks the Download API for its signed URL "
        "(default: none: the Download API check is SKIP)",
    )
    parser.set_defaults(func=cmd_doctor)


DEFAULT_STACK_NAME = "tao-results-to-s3"  # samconfig.toml's stack_name


def _add_status(commands: Any) -> None:
    parser = commands.add_parser(
        "status",
        help="a deployed stack's queue depths, dead-letter reasons and last hour's copies",
        description="Read the stack's outputs (CloudFormation DescribeStacks), then print visible, "
        "in-flight and delayed messages on the source queue and the DLQ, the DLQ's reasons by count "
        "(peeked like 'dlq list': each peeked message's ApproximateReceiveCount goes up by one), and "
        "the last hour's ResultsCopied and BytesCopied from CloudWatch when the caller may read them.",
    )
    parser.add_argument(
        "--stack-name",
        default=DEFAULT_STACK_NAME,
        metavar="NAME",
        help="the CloudFormation stack (default: %(default)s, samconfig.toml's stack_name)",
    )
    parser.add_argument(
        "--max",
        type=_positive_int,
        default=100,
        metavar="N",
        help="peek at most N dead letters for the reasons (default: %(default)s)",
    )
    parser.set_defaults(func=cmd_status)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


# ------------------------------------------------------------------------------------------- common


def require_url(value: str | None, flag: str, env: str) -> str:
    if not value:
        raise UserError(f"no queue URL: pass {flag} or set {env}")
    if not value.startswith(("http://", "https://")):
        raise UserError(
            f"{flag} must be a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME): {value!r}"
        )
    return value


def existing_queue_arn(sqs: SQSClient, url: str) -> str:
    """The queue's ARN; a missing queue is a user error."""
    try:
        return queue_arn(sqs, url)
    except ClientError as error:
        if is_missing_queue(error):
            raise UserError(f"queue does not exist: {url}") from error
        raise


def describe_error(error: BaseException) -> tuple[int, str]:
    """Exit status and one-line message for an error raised by a command."""
    if isinstance(error, UserError | HandlerLoadError):
        return USER_ERROR, str(error)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            USER_ERROR,
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(error, NoRegionError):
        return USER_ERROR, "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION)"
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        return USER_ERROR, f"cannot reach the SQS endpoint ({endpoint}): {error}"
    if isinstance(error, ParamValidationError):
        return USER_ERROR, " ".join(str(error).split())
    if isinstance(error, ClientError):
        code, message = aws_error_details(error).code, aws_error_details(error).message.strip()
        if is_missing_queue(error):
            return USER_ERROR, f"queue does not exist: {message or code}"
        if code in CREDENTIAL_CODES:
            return USER_ERROR, f"AWS refused the credentials: {code}: {message}"
        return FAILURE, describe_client_error(error)
    if isinstance(error, QueueOperationError | ReadTimeoutError | BotoCoreError):
        return FAILURE, str(error)
    return FAILURE, f"{type(error).__name__}: {error}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tao-results`` console script."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        status, message = describe_error(error)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return status


# ------------------------------------------------------------------------------------------ enqueue


def read_references(refs: Iterable[str], file: Path | None, stdin: IO[str]) -> list[str]:
    """References from the arguments ('-' = stdin) and ``--file``, blank lines and comments skipped."""
    collected: list[str] = []
    for ref in refs:
        collected += _reference_lines(stdin) if ref == "-" else [ref]
    if file is not None:
        try:
            with file.open(encoding="utf-8") as handle:
                collected += _reference_lines(handle)
        except OSError as error:
            raise UserError(f"cannot read {file}: {error.strerror}") from error
    return collected


def _reference_lines(lines: Iterable[str]) -> list[str]:
    stripped = (line.strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def cmd_enqueue(args: argparse.Namespace) -> int:
    url = require_url(args.queue_url, "--queue-url", "SOURCE_QUEUE_URL")
    references = read_references(args.refs, args.file, sys.stdin)
    if not references:
        raise UserError("no referenceIds given (arguments, '-' for stdin, or --file)")
    bad = invalid_reference_ids(references)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UserError(f"invalid referenceId {bad[0]!r}{more}: must match {REFERENCE_ID_PATTERN.pattern}")
    shape = request_shape(args, len(references))
    request_bodies(references, shape)  # refuse before any AWS call
    sqs = sqs_client(url)
    arn = existing_queue_arn(sqs, url)
    shape = replace(shape, account=queue_account(arn), region=queue_region(arn))
    result = enqueue(sqs, url, references, bodies=request_bodies(references, shape))
    for reference, reason in result.failed:
        print(f"{PROG}: not sent: {reference}: {reason}", file=sys.stderr)
    if not args.quiet:
        how = "" if shape.envelope == ENVELOPE_DIRECT else f" in {shape.envelope} envelopes"
        print(f"enqueued {result.sent_count} of {len(references)} message(s){how} to {url}")
    return FAILURE if result.failed else 0


def request_shape(args: argparse.Namespace, count: int) -> RequestShape:
    """The options of ``enqueue`` as a :class:`RequestShape`; a contradiction is a user error."""
    eventbridge_only = [
        flag
        for flag, value in (("--event-source", args.event_source), ("--detail-type", args.detail_type))
        if value is not None
    ]
    if eventbridge_only and args.envelope != ENVELOPE_EVENTBRIDGE:
        raise UserError(f"{eventbridge_only[0]} applies to --envelope eventbridge only")
    if args.task_token is not None and count > 1:
        # One token is one waiting task: a second answer to it would fail as TaskTimedOut/InvalidToken.
        raise UserError(f"--task-token answers one waiting task: give one referenceId, not {count}")
    options: dict[str, Any] = {
        "envelope": args.envelope,
        "numeric_ids": args.numeric_ids,
        "task_token": args.task_token,
        "event_source": args.event_source or DEFAULT_EVENT_SOURCE,
        "detail_type": args.detail_type or DEFAULT_DETAIL_TYPE,
    }
    if args.passthrough is not None:
        try:
            options["passthrough"] = json.loads(args.passthrough)
        except (ValueError, RecursionError) as error:
            raise UserError(f"--passthrough is not JSON: {error}") from None
    return RequestShape(**options)


def request_bodies(references: Sequence[str], shape: RequestShape) -> list[str]:
    try:
        return [request_body(reference, shape) for reference in references]
    except RequestRefused as error:
        raise UserError(f"not sending anything: {error}") from error


# ----------------------------------------------------------------------------------------- dlq list


def cmd_dlq_list(args: argparse.Namespace) -> int:
    url = require_url(args.dlq_url, "--dlq-url", "DEAD_LETTER_QUEUE_URL")
    sqs = sqs_client(url)
    existing_queue_arn(sqs, url)
    letters = list_dead_letters(sqs, url, limit=args.max)
    if args.json:
        print(json.dumps([letter.to_json() for letter in letters], indent=2))
    else:
        print(dead_letter_table(letters))
    return 0


def dead_letter_table(letters: Sequence[DeadLetter]) -> str:
    if not letters:
        return "(no dead letters)"
    header = ("REASON", "HTTP", "REFERENCE ID", "AGE", "MESSAGE ID")
    rows = [
        (
            letter.reason,
            "-" if letter.http_status is None else str(letter.http_status),
            letter.reference_id or "-",
            format_age(letter.age_seconds),
            letter.original_message_id,
        )
        for letter in letters
    ]
    return format_table(header, rows) + f"\n{len(letters)} dead letter(s)"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


# -------------------------------------------------------------------------------------- dlq redrive


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    dlq_url = require_url(args.dlq_url, "--dlq-url", "DEAD_LETTER_QUEUE_URL")
    destination = args.to_queue_url
    if destination:
        require_url(destination, "--to-queue-url", "(no variable: name the queue)")
    sqs = sqs_client(dlq_url)
    dlq_arn = existing_queue_arn(sqs, dlq_url)
    destination_arn = existing_queue_arn(sqs, destination) if destination else None
    if not args.copy:
        started = _try_move_task(sqs, args, dlq_arn, destination_arn)
        if started is not None:
            return started
        print("StartMessageMoveTask is not supported by this endpoint; copying instead", file=sys.stderr)
    if not destination:
        raise UserError("the copy path needs --to-queue-url (the destination is never guessed)")
    result = redrive_by_copy(sqs, dlq_url, destination, limit=args.max)
    print(f"moved {result.moved} message(s) to {destination} by copy; {result.failed} not moved")
    return FAILURE if result.failed else 0


def _try_move_task(
    sqs: SQSClient, args: argparse.Namespace, dlq_arn: str, destination_arn: str | None
) -> int | None:
    """Run the redrive with StartMessageMoveTask; ``None`` when the endpoint does not have it."""
    probe = sqs_client(args.dlq_url, max_attempts=1)
    started_ms = int(time.time() * 1000)
    try:
        handle = start_move_task(probe, dlq_arn, destination_arn, args.rate)
    except ClientError as error:
        if move_task_unsupported(error):
            return None
        raise
    target = destination_arn or "each message's source queue"
    if args.no_wait:
        print(f"started message move task {handle} to {target}")
        return 0
    result = wait_for_move_task(sqs, dlq_arn, handle, started_ms, timeout=args.timeout)
    total = "?" if result.to_move is None else str(result.to_move)
    print(f"message move task {result.status}: moved {result.moved} of {total} message(s) to {target}")
    if result.failure_reason:
        print(f"{PROG}: move task failed: {result.failure_reason}", file=sys.stderr)
    return 0 if result.status == "COMPLETED" else FAILURE


# ------------------------------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    try:
        report = read_status(args.stack_name, peek_limit=args.max)
    except StackNotFound as error:
        raise UserError(str(error)) from error
    print(format_status(report))
    return 0


# ---------------------------------------------------------------------------------------- run-local


def parse_env_pairs(pairs: Iterable[str]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--env expects KEY=VALUE, got {pair!r}")
        environment[key] = value
    return environment


SHORT_POLL_SECONDS = 1  # --until-empty: a poller must not sit in a 20 s long poll once the queue is empty
LAMBDA_WAIT_SECONDS = 20  # what Lambda's pollers use


def cmd_run_local(args: argparse.Namespace) -> int:
    url = require_url(args.queue_url, "--queue-url", "SOURCE_QUEUE_URL")
    wait_time = args.wait_time
    if wait_time is None:
        wait_time = SHORT_POLL_SECONDS if args.until_empty else LAMBDA_WAIT_SECONDS
    config = RunnerConfig(
        queue_url=url,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        wait_time_seconds=wait_time,
        batching_window_seconds=args.batching_window,
        visibility_timeout=args.visibility,
        function=FunctionSettings(args.function_name, "$LATEST", args.memory, args.timeout),
        until_empty=args.until_empty,
        settle_seconds=args.settle,
        max_seconds=args.max_seconds,
    )
    try:
        config.validate()
    except ValueError as error:
        raise UserError(str(error)) from error
    for directory in (args.layer_dir, args.function_dir):
        if not directory.is_dir():
            raise UserError(f"not a directory: {directory}")
    environment = parse_env_pairs(args.env)
    if "POWERTOOLS_LOG_LEVEL" not in environment and "POWERTOOLS_LOG_LEVEL" not in os.environ:
        environment["POWERTOOLS_LOG_LEVEL"] = "INFO"
    sqs = sqs_client(url, pool_size=config.concurrency + 4)
    existing_queue_arn(sqs, url)
    with function_log_sink(args.function_logs) as (sink, where):
        bucket = environment.get("RESULTS_BUCKET") or os.environ.get("RESULTS_BUCKET")
        output = FunctionOutput(sink, bucket)
        with runner_logging(sys.stderr, verbose=args.verbose), capturing_function_output(output) as terminal:
            stdout = terminal.stdout
            print(f"polling {url}; the function's logs go to {where}", file=stdout, flush=True)
            tally = DestinationTally()
            hooks = [] if args.quiet else [MessagePrinter(output, tally, stdout)]
            mapping = LocalEventSourceMapping(config, sqs=sqs, on_message=hooks)
            mapping.prepare()  # the runtime's AWS_LAMBDA_* variables, before the handler is imported
            mapping.handler = load_handler(args.handler, [args.layer_dir, args.function_dir], environment)
            stop = threading.Event()
            restore = install_stop_signals(stop, lambda text: print(text, file=terminal.stderr))
            try:
                stats = mapping.run(stop)
            finally:
                restore()
            print(run_summary(stats, mapping.stop_reason, tally if hooks else None), file=stdout)
    return 0


@contextmanager
def runner_logging(stream: IO[str], *, verbose: bool) -> Iterator[None]:
    """The runner's own log lines (``tao_results_cli.*``) to ``stream``, the terminal's stderr.

    Not a handler on the root logger: in Lambda the root logger's output is the function's (its
    libraries' warnings land in the log stream), so here it goes where ``--function-logs`` says.
    """
    logger = logging.getLogger("tao_results_cli")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


@contextmanager
def function_log_sink(target: str) -> Iterator[tuple[IO[str] | None, str]]:
    """The stream the function's output goes to, and how to name it to the user."""
    if target == "-":
        yield sys.stderr, "stderr"
    elif target == "none":
        yield None, "nowhere (--function-logs none)"
    else:
        path = Path(target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a", encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write the function's logs to {path}: {error.strerror}") from error
        with handle:
            yield handle, str(path)


class DestinationTally:
    """How many messages ended where, from the per-message lines (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def describe(self) -> str:
        labels = {"s3": "→ S3", "dlq": "→ DLQ", "retry": "retried", "kept": "kept (batch failed)",
                  "unknown": "destination unknown"}  # fmt: skip
        parts = [f"{self.counts[kind]} {label}" for kind, label in labels.items() if self.counts.get(kind)]
        return ", ".join(parts) or "no message handled"


class MessagePrinter:
    """One line per message per invocation, saying where it went: ``→ s3://…`` or ``→ DLQ (reason)``."""

    def __init__(self, output: FunctionOutput, tally: DestinationTally, stream: IO[str]) -> None:
        self.output = output
        self.tally = tally
        self.stream = stream

    def __call__(self, event: MessageEvent) -> None:
        kind, text = where_it_went(event, self.output)
        self.tally.add(kind)
        reference = event.reference_id or "<no referenceId>"
        print(
            f"{time.strftime('%H:%M:%S')} {reference} [{event.message_id[:8]}] "
            f"receive #{event.receive_count} {text} ({event.duration_ms / 1000:.1f}s invocation)",
            file=self.stream,
            flush=True,
        )


def run_summary(stats: RunStats, reason: str | None, tally: DestinationTally | None = None) -> str:
    messages = stats.messages()
    where = f": {tally.describe()}" if tally is not None else ""
    return (
        f"stopped ({reason}) after {stats.elapsed:.1f}s: {stats.invocations} invocation(s), "
        f"{len(messages)} message(s){where}"
    )


# ------------------------------------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.reference_id is not None and not is_valid_reference_id(args.reference_id):
        raise UserError(
            f"invalid --reference-id {args.reference_id!r}: must match {REFERENCE_ID_PATTERN.pattern}"
        )
    if args.source_queue_url is not None:
        require_url(args.source_queue_url, "--source-queue-url", "SOURCE_QUEUE_URL")
    _require_aws_configuration()
    options = doctor.DoctorOptions(
        stack_name=args.stack_name,
        function_name=args.function_name,
        source_queue_url=args.source_queue_url,
        reference_id=args.reference_id,
    )
    try:
        results = doctor.Doctor(options, os.environ).run()
    except StackNotFound as error:
        raise UserError(f"stack does not exist: {error.stack_name}") from error
    print(doctor.format_table(results))
    print(doctor.verdict_line(results))
    return 0 if doctor.passed(results) else FAILURE


def _require_aws_configuration() -> None:
    """Without credentials or a region every check would fail the same way: one line instead."""
    # Not aws.region(): the doctor checks through the function's own clients (AwsClients), which
    # take the region from boto3's configuration alone, as in Lambda.
    import boto3  # noqa: PLC0415 - the commands' own clients come from tao_results_cli.aws

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise NoCredentialsError
    if not session.region_name:
        raise UserError("no AWS region configured: set AWS_DEFAULT_REGION (or a region in your profile)")


if __name__ == "__main__":
    sys.exit(main())
