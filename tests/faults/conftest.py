"""The fault scenarios' figures, one line each, at the end of the run (``fault_report.py``)."""

from __future__ import annotations

import pytest
from fault_report import LINES, REPORT_FILE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LINES:
        terminalreporter.section("fault scenarios")
        for line in LINES:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(also in {REPORT_FILE})")
