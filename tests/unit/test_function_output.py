"""run-local's reading of the function's own log lines: where each message went."""

from __future__ import annotations

import io
import json

from tao_results_cli.local.function_output import FunctionOutput


def _line(**record: object) -> str:
    return json.dumps(record) + "\n"


def test_a_redelivery_whose_result_is_already_stored_is_reported_as_s3() -> None:
    sink = io.StringIO()
    output = FunctionOutput(sink, bucket="results")
    output.write(_line(message="Result copied", key="p/ref-1/a.csv", correlation_id="ref-1"))
    output.write(
        _line(
            message="Result already stored, not uploaded again", key="p/ref-1/a.csv", correlation_id="ref-1"
        )
    )

    first = output.destination("m-1", "ref-1")
    second = output.destination("m-2", "ref-1")

    assert first is not None and first.kind == "s3" and first.where == "s3://results/p/ref-1/a.csv"
    assert second is not None and second.kind == "s3"
    assert second.where == "s3://results/p/ref-1/a.csv (already stored, not uploaded again)"
    assert output.destination("m-3", "ref-1") is None  # each line is used once
    assert sink.getvalue().count("\n") == 2  # the function's lines still reach the sink
