"""One pytest run of ``tests/`` imports every helper module by its bare name, so no two may share one.

Its import path holds ``pytest.ini``'s ``pythonpath`` (this directory, ``scripts``, ``bench``) and,
put there by pytest itself, every test directory without an ``__init__.py`` (``faults``). A name in
two of them resolves to whichever came first on the path: ``bench/report.py`` and the fault
scenarios' ``report.py`` once did, and the bench report's tests failed to import.
"""

from __future__ import annotations

import configparser
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
NOT_IMPORTED_BY_NAME = {"conftest", "__init__"}


def _import_path() -> list[Path]:
    ini = configparser.ConfigParser()
    ini.read(TESTS / "pytest.ini")
    configured = [(TESTS / entry).resolve() for entry in ini["pytest"]["pythonpath"].split()]
    test_dirs = {path.parent for path in TESTS.rglob("test_*.py")}
    return [*configured, *sorted(test_dirs - set(configured))]


def test_the_import_path_holds_the_fault_scenarios_and_the_bench() -> None:
    path = _import_path()

    assert TESTS / "faults" in path
    assert TESTS.parent / "bench" in path


def test_no_two_modules_on_the_tests_import_path_share_a_name() -> None:
    where: defaultdict[str, list[str]] = defaultdict(list)
    for directory in _import_path():
        for module in directory.glob("*.py"):
            if module.stem not in NOT_IMPORTED_BY_NAME:
                where[module.stem].append(str(module.relative_to(TESTS.parent)))

    assert {name: places for name, places in where.items() if len(places) > 1} == {}
