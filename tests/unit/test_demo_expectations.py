"""``make demo``'s EXPECTED column and its check come from the function's own code, and each
dead-letter reason it expects is one the README's classification table documents."""

from __future__ import annotations

import re
from pathlib import Path

from local_aws import StackResources, function_environment
from tao_results.config import load_settings
from tao_results_cli.queues import DeadLetter
from tao_results_demo.demo import MALFORMED, Ending, Landing, scenarios, verdict

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = StackResources(
    endpoint_url="http://127.0.0.1:1",
    bucket="demo-results",
    secret_id="demo-secret",
    queue_url="http://127.0.0.1:1/123456789012/demo-requests",
    queue_arn="arn:aws:sqs:eu-west-1:123456789012:demo-requests",
    dead_letter_queue_url="http://127.0.0.1:1/123456789012/demo-dlq",
    dead_letter_queue_arn="arn:aws:sqs:eu-west-1:123456789012:demo-dlq",
)


def endings() -> dict[str, Ending]:
    settings = load_settings(function_environment(RESOURCES, "http://127.0.0.1:8080"))
    return {scenario.reference_id: scenario.ending(settings) for scenario in scenarios(large_mib=1)}


def readme_reasons() -> set[str]:
    """Every reason in the README's classification table (its reason column)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Error classification", 1)[1].split("\n\n")[1:3]
    rows = [line for part in table for line in part.splitlines() if line.startswith("|")]
    return {name for row in rows for cell in row.split("|")[4:5] for name in re.findall(r"`([a-z_]+)`", cell)}


def test_the_unknown_reference_ends_as_the_functions_not_found() -> None:
    assert endings()["demo-unknown-404"] == Ending("not_found", 404)
    assert endings()["demo-unknown-404"].describe() == "DLQ not_found (404)"


def test_every_expected_ending() -> None:
    found = endings()
    assert {ref: ending.describe() for ref, ending in found.items() if ending.reason} == {
        "demo-unknown-404": "DLQ not_found (404)",
        "demo-no-scope-403": "DLQ insufficient_scope (403)",
        "demo-foreign-host": "DLQ signed_url_rejected",
        MALFORMED: "DLQ malformed_message",
    }
    assert sum(ending.reason is None for ending in found.values()) == 6


def test_every_expected_reason_is_in_the_readmes_classification_table() -> None:
    documented = readme_reasons()
    assert {"not_found", "insufficient_scope", "malformed_message", "retries_exhausted"} <= documented
    expected = {ending.reason for ending in endings().values() if ending.reason}
    assert expected <= documented, expected - documented


def test_the_check_holds_a_dead_letter_to_the_expected_reason_and_status() -> None:
    def letter(reason: str, status: int | None) -> Landing:
        dead = DeadLetter("d", "m", reason, status, "r", None, None, "{}", {})
        return Landing(dead_letters=[dead])

    expected = Ending("not_found", 404)
    assert verdict(expected, letter("not_found", 404), None) == (True, "as expected")
    assert verdict(expected, letter("max_receive_count_exceeded", None), None)[0] is False
    assert verdict(expected, letter("not_found", None), None) == (False, "httpStatus None")
