"""``make local-stack``: moto and the TAO emulator on loopback, ready for ``tao-results``, until Ctrl-C.

Starts moto's server (S3, SQS, Secrets Manager) and the TAO emulator in child processes, creates
the bucket, the credentials secret, the DLQ and the source queue (redrive after 3 receives), and
registers a few results in the emulator. Then prints the ``export`` lines that ``tao-results
run-local``, ``enqueue``, ``dlq`` and ``doctor`` need (also written to ``--env-file`` for
``source``), and waits. Ctrl-C (or SIGTERM) stops both servers and exits 0; nothing survives it.

Run from the repository root: ``python -m tao_results_demo.local_stack [--results local-1 ...]``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from local_aws import FAKE_CREDENTIALS, create_resources, function_environment
from tao_results_demo.demo import CLIENT_ID, CLIENT_SECRET, services

READY = "# local stack ready; Ctrl-C stops it"
MAX_RECEIVE_COUNT = 3
VISIBILITY_SECONDS = 60  # run-local --timeout 60 matches it (Lambda wants visibility >= timeout)
KIB = 1024


def exports(variables: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines, quoted for a POSIX shell, sorted by name."""
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(variables.items())]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tao_results_demo.local_stack", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--results",
        nargs="*",
        default=["local-1", "local-2", "local-3"],
        metavar="REF",
        help="referenceIds the emulator has a result for; others answer 404 (default: %(default)s)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(".demo/local-stack.env"),
        metavar="PATH",
        help="the export lines again, for `source` (default: %(default)s)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    print("starting moto's server (S3, SQS, Secrets Manager) and the TAO emulator...", flush=True)
    with ExitStack() as stack, services(stack) as (moto, admin):
        resources = create_resources(
            moto.endpoint_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            max_receive_count=MAX_RECEIVE_COUNT,
            visibility_timeout=VISIBILITY_SECONDS,
        )
        for index, reference in enumerate(args.results):
            admin.add_result(reference, size=(index + 1) * 64 * KIB, filename=f"{reference}.csv")
        variables = {
            **function_environment(resources, admin.base_url),
            **FAKE_CREDENTIALS,
            "SOURCE_QUEUE_URL": resources.queue_url,
        }
        lines = exports(variables)
        args.env_file.parent.mkdir(parents=True, exist_ok=True)
        args.env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"moto server at {moto.endpoint_url}, TAO emulator at {admin.base_url}")
        print(
            f"bucket {resources.bucket}, queue {resources.queue_url}, DLQ {resources.dead_letter_queue_url}"
        )
        print(f"results for: {' '.join(args.results) or '(none)'}; any other referenceId answers 404\n")
        print(f"# in another terminal, paste these lines (or: source {args.env_file})")
        print("\n".join(lines))
        print("# then, for instance:")
        print(f"#   tao-results enqueue {' '.join(args.results[:2])}")
        print(f"#   tao-results run-local --until-empty --timeout {VISIBILITY_SECONDS}")
        print("#   tao-results dlq list")
        print(READY, flush=True)
        stop.wait()
        print("stopping moto and the TAO emulator...", flush=True)
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # The servers run in their own sessions (see demo.services): a terminal's Ctrl-C reaches only
    # this process, which then stops them itself.
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return run(args, stop)


if __name__ == "__main__":
    sys.exit(main())
