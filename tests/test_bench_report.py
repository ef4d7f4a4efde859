"""The goals ``make bench`` judges a run by (bench/report.py): issue 15's, from the run's own steps."""

from __future__ import annotations

from report import goals_met


def _step(rate: float, *, e2e_p99: float, post_p99: float, sustained: bool = True) -> dict:
    return {
        "offered_rate": rate,
        "sustained": sustained,
        "e2e_latency_ms": {"ALL": {"p99": e2e_p99}},
        "post_latency_ms": {"p99": post_p99},
    }


def test_a_run_that_sustains_150_per_s_with_fast_answers_at_50_meets_every_goal() -> None:
    run = {
        "max_sustained_rate": 150,
        "steps": [_step(50, e2e_p99=23.1, post_p99=10.6), _step(150, e2e_p99=716, post_p99=607)],
    }

    assert goals_met(run) == {"sustained_rate": True, "e2e_p99": True, "post_p99": True}


def test_each_goal_is_judged_on_its_own() -> None:
    slow_post = {"max_sustained_rate": 100, "steps": [_step(50, e2e_p99=99.9, post_p99=30.1)]}

    assert goals_met(slow_post) == {"sustained_rate": False, "e2e_p99": True, "post_p99": False}


def test_a_run_without_a_50_per_s_step_cannot_judge_latency_and_says_so() -> None:
    nothing_sustained = {
        "max_sustained_rate": None,
        "steps": [_step(200, e2e_p99=2400, post_p99=2200, sustained=False)],
    }

    assert goals_met(nothing_sustained) == {"sustained_rate": False, "e2e_p99": None, "post_p99": None}
