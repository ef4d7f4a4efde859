"""What ``make bench-ab`` reports (bench/ab.py): each side's runs, their mean and spread, the change of the means."""

from __future__ import annotations

from ab import TOTAL, compare, table


def _run(*steps: tuple[float, dict[str, float], float]) -> dict:
    """A run as system_bench.py writes it: per step, its rate, the CPU ms per request by process and the total."""
    return {
        "steps": [
            {
                "offered_rate": rate,
                "processes": {"cpu_ms_per_request": dict(cpu), "cpu_ms_per_request_system": total},
                "e2e_latency_ms": {"ALL": {"p99": 100.0}},
                "post_latency_ms": {"p99": 30.0},
                "decision_rate": rate,
            }
            for rate, cpu, total in steps
        ]
    }


def test_the_change_of_the_means_is_told_apart_from_the_spread_of_the_runs():
    base = [_run((30.0, {"broker": 7.0, "bench client": 2.0}, 40.0)), _run((30.0, {"broker": 6.0}, 44.0))]
    change = [_run((30.0, {"broker": 5.0}, 39.0)), _run((30.0, {"broker": 5.2}, 41.0))]
    rows = compare(base, change)["30.0"]
    assert rows["broker"]["base"] == {"runs": [7.0, 6.0], "mean": 6.5, "spread": 1.0}
    assert rows["broker"]["change_of_means"] == -1.4 and rows["broker"]["beyond_spread"]
    assert rows[TOTAL]["change_of_means"] == -2.0 and not rows[TOTAL]["beyond_spread"]  # 4.0 apart within a side
    assert "bench client" not in rows, "the load generator is not part of the system"
    text = table(compare(base, change))
    assert "-1.40" in text and "-2.00  (within the spread)" in text


def test_only_the_rates_every_run_measured_are_compared():
    base = [_run((30.0, {"broker": 7.0}, 40.0), (40.0, {"broker": 6.0}, 38.0))]
    change = [_run((30.0, {"broker": 6.0}, 39.0))]
    assert list(compare(base, change)) == ["30.0"]


def test_one_run_a_side_has_no_spread_to_judge_a_change_by():
    rows = compare([_run((30.0, {"broker": 7.0}, 40.0))], [_run((30.0, {"broker": 6.0}, 38.0))])["30.0"]
    assert rows["broker"]["change_of_means"] == -1.0 and rows["broker"]["beyond_spread"] is None
    assert "no spread to judge by" in table({"30.0": rows})
