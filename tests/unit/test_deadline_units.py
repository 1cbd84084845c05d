"""The deadline's arithmetic: margin clamp, budgets, horizons (a fake clock; no I/O)."""

import pytest

from tao_results.deadline import Deadline, current_deadline, deadline_scope, effective_margin
from tao_results.errors import TransientError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_margin_too_large_for_the_invocation_is_clamped_to_half_of_it():
    assert effective_margin(20.0, 900.0) == 20.0
    assert effective_margin(20.0, 15.0) == 7.5
    assert effective_margin(20.0, 0.0) == 0.0


def test_from_context_applies_the_clamp():
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 15_000

    deadline = Deadline.from_context(Context(), 20.0)
    assert deadline.margin == 7.5
    assert 7.0 < deadline.remaining() <= 7.5


def test_budget_is_the_smaller_of_the_ceiling_and_the_time_left():
    clock = Clock()
    deadline = Deadline(110.0, clock, margin=4.0)
    assert deadline.budget(60.0, "call") == 10.0
    assert deadline.budget(3.0, "call") == 3.0
    clock.now = 110.0
    with pytest.raises(TransientError, match="deadline"):
        deadline.budget(60.0, "call")


def test_cleanup_and_abandon_horizons_lie_inside_the_margin():
    clock = Clock()
    deadline = Deadline(110.0, clock, margin=4.0)
    assert deadline.for_cleanup().remaining() == 12.0
    assert deadline.abandon_in() == 13.0


def test_the_scope_publishes_the_deadline_to_this_thread_only_for_the_block():
    deadline = Deadline(110.0, Clock())
    assert current_deadline() is None
    with deadline_scope(deadline):
        assert current_deadline() is deadline
    assert current_deadline() is None
