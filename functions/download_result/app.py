"""Lambda entry point: SQS batch of referenceIds → TAO Advance results in S3.

Configuration is read and validated here, once, at cold start; all behaviour lives in the
``tao_results`` layer (see tao_results.wiring and tao_results.batch).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from tao_results.config import load_settings
from tao_results.wiring import build_batch_handler

batch_handler = build_batch_handler(load_settings(os.environ))
logger, metrics, tracer = (
    batch_handler.telemetry.logger,
    batch_handler.telemetry.metrics,
    batch_handler.telemetry.tracer,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(batch_handler.handle_batch(event, context))
