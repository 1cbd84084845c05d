"""What AWS would publish about a demo run (AWS/SQS, AWS/Lambda), measured locally, for the picture.

A local run has no CloudWatch: the function's own metrics are in its output (EMF), but the queue
depths and the function's duration, errors and concurrency are AWS's. This records them from the
outside: the visible depth of both queues every half second (GetQueueAttributes), and each
invocation's start, duration and failure (the local event source mapping's ``on_invocation``).
:meth:`AwsSideMetrics.write` saves them as EMF-shaped documents whose dimension values are the
template's own ``${...}`` placeholders, which is how ``tests.support.dashboard_picture`` matches
them to the dashboard's widgets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tao_results_cli.local.stats import InvocationEvent

SAMPLE_SECONDS = 0.5
QUEUES = {"source": "${SourceQueue.QueueName}", "dead-letter": "${DeadLetterQueue.QueueName}"}
FUNCTION = "${DownloadResultFunction}"


def emf(timestamp: float, namespace: str, dimension: str, value: str, metrics: dict[str, float]) -> str:
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(timestamp * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[dimension]],
                    "Metrics": [{"Name": n} for n in metrics],
                }
            ],
        },
        dimension: value,
        **metrics,
    }
    return json.dumps(document, separators=(",", ":"))


class AwsSideMetrics:
    def __init__(self, sqs: Any, queue_urls: dict[str, str]) -> None:
        self.sqs = sqs
        self.queue_urls = queue_urls  # "source" / "dead-letter" -> URL
        self.lines: list[str] = []
        self.invocations: list[tuple[float, float, bool]] = []  # start, end (epoch s), failed
        self.samples: list[float] = []
        self._lock = threading.Lock()

    def on_invocation(self, event: InvocationEvent) -> None:
        end = time.time()
        with self._lock:
            self.invocations.append((end - event.duration_ms / 1000, end, event.error is not None))
            self.lines.append(
                emf(end, "AWS/Lambda", "FunctionName", FUNCTION,
                    {"Duration": event.duration_ms, "Errors": float(event.error is not None)})
            )  # fmt: skip

    @contextmanager
    def sampling(self) -> Iterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=self._sample, args=(stop,), name="demo-queue-sampler", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _sample(self, stop: threading.Event) -> None:
        while not stop.wait(SAMPLE_SECONDS):
            now = time.time()
            for name, url in self.queue_urls.items():
                try:
                    attributes = self.sqs.get_queue_attributes(
                        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]
                except Exception:  # a picture's sample, not worth stopping the demo for
                    continue
                visible = float(attributes.get("ApproximateNumberOfMessages", 0))
                line = emf(
                    now, "AWS/SQS", "QueueName", QUEUES[name], {"ApproximateNumberOfMessagesVisible": visible}
                )
                with self._lock:
                    self.lines.append(line)
            with self._lock:
                self.samples.append(now)

    def write(self, path: Path) -> None:
        with self._lock:
            lines = list(self.lines)
            for moment in self.samples:
                running = sum(1 for start, end, _ in self.invocations if start <= moment <= end)
                lines.append(
                    emf(moment, "AWS/Lambda", "FunctionName", FUNCTION, {"ConcurrentExecutions": running})
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
