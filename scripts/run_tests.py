"""Run every test suite, one pytest per Django project, against one Apache Kafka node.

``make test`` runs this inside ``python kafka/broker.py --port 0 --`` so
``KAFKA_BOOTSTRAP_SERVERS`` points at a broker of its own. Exits non-zero if any
suite fails. Extra arguments go to every pytest run (e.g. ``-x``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "var" / "test-results"
SUITES = ("shared_events", "bloodbank_service", "hospital_service", "notification_service", "tests")


def main(argv: list[str]) -> int:
    only = [a for a in argv if a in SUITES]
    extra = [a for a in argv if a not in SUITES]
    REPORTS.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, int, float, tuple[int, int]]] = []
    for suite in only or SUITES:
        started = time.monotonic()
        print(f"\n=== {suite} ===", flush=True)
        report = REPORTS / f"{suite}.xml"
        report.unlink(missing_ok=True)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *extra]
        code = subprocess.call(command, cwd=ROOT / suite)
        results.append((suite, code, time.monotonic() - started, _counts(report)))
    print("\n=== summary ===")
    total_passed = total_failed = 0
    for suite, code, seconds, (passed, failed) in results:
        failed = failed or (1 if code != 0 else 0)  # a suite that crashed before reporting still fails
        total_passed, total_failed = total_passed + passed, total_failed + failed
        print(f"{suite:<22} {passed:4} passed {failed:3} failed  {seconds:6.1f}s  (exit {code})")
    print(f"{total_passed} passed, {total_failed} failed")
    return 1 if total_failed or any(code != 0 for _, code, _, _ in results) else 0


def _counts(report: Path) -> tuple[int, int]:
    """(passed, failed) from a JUnit XML report; (0, 0) if pytest wrote none."""
    if not report.exists():
        return 0, 0
    tests = failures = skipped = 0
    for suite in ElementTree.parse(report).getroot().iter("testsuite"):  # noqa: S314 - pytest wrote it
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return tests - failures - skipped, failures + skipped  # a skipped test is not a pass here


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
