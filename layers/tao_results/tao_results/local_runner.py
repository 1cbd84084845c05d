"""The local SQS event source mapping (see :mod:`tao_results.local.runner`), under its short name.

Example::

    from tao_results.local_runner import LocalEventSourceMapping, RunnerConfig, load_handler

    handler = load_handler("app:lambda_handler", ["functions/download_result"], environment)
    mapping = LocalEventSourceMapping(RunnerConfig(queue_url, until_empty=True), handler)
    stats = mapping.run()
"""

from tao_results.local.context import FunctionSettings, LocalLambdaContext
from tao_results.local.events import read_batch_answer, sqs_event
from tao_results.local.loader import Handler, HandlerLoadError, load_handler
from tao_results.local.runner import LocalEventSourceMapping, RunnerConfig, install_stop_signals
from tao_results.local.stats import InvocationEvent, MessageEvent, MessageStats, Outcome, RunStats

__all__ = [
    "FunctionSettings",
    "Handler",
    "HandlerLoadError",
    "InvocationEvent",
    "LocalEventSourceMapping",
    "LocalLambdaContext",
    "MessageEvent",
    "MessageStats",
    "Outcome",
    "RunStats",
    "RunnerConfig",
    "install_stop_signals",
    "load_handler",
    "read_batch_answer",
    "sqs_event",
]
