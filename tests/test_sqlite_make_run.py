"""`make run` without PostgreSQL: each service's database is a SQLite file. Every migration, the demo data and the
queries on a unit's attribute lists (JSON lists: jsonb's @> on PostgreSQL, json_each on SQLite) work there too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COUNT_ATTRIBUTES = """
from inventory.models import ProductDescription, Unit
irradiated = Unit.objects.filter(special_attributes__contains=["IRRADIATED"])
wanted = {"special_attributes__contains": ["IRRADIATED", "CMV_NEGATIVE"], "antigen_negative__contains": ["K"]}
both = Unit.objects.filter(**wanted)
assert irradiated.exists() and both.exists(), "the demo has irradiated, CMV-negative K-negative units"
assert all("IRRADIATED" in u.special_attributes for u in irradiated)
assert all({"IRRADIATED", "CMV_NEGATIVE"} <= set(u.special_attributes) and "K" in u.antigen_negative for u in both)
assert not Unit.objects.filter(antigen_negative__contains=["K", "k"]).exists()  # case-sensitive, every value
held = sum("IRRADIATED" in u.special_attributes for u in Unit.objects.all())
assert irradiated.count() == held, (irradiated.count(), held)
assert ProductDescription.objects.filter(attributes__contains=[]).count() == ProductDescription.objects.count()
print("ok", irradiated.count(), both.count())
"""


def _manage(service: str, database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{database}",
        "DEMO_PASSWORD": "demo-password-for-tests",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT / f"{service}_service",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Each service's SQLite file after ``migrate`` and ``seed_demo``, as ``make run`` prepares it, and any error."""
    folder = tmp_path_factory.mktemp("sqlite")
    prepared = {}
    for service in ("hospital", "bloodbank", "notification"):
        database, error = folder / f"{service}.sqlite3", ""
        for step in (("migrate", "--noinput"), ("seed_demo", "--development")):
            result = _manage(service, database, *step)
            if result.returncode != 0:
                error = f"manage.py {' '.join(step)}: {result.stderr[-3000:]}"
                break
        prepared[service] = (database, error)
    return prepared


@pytest.mark.parametrize("service", ["hospital", "bloodbank", "notification"])
def test_each_service_migrates_and_seeds_its_demo_data_on_sqlite(databases, service):
    database, error = databases[service]
    assert not error and database.stat().st_size > 0, error


def test_the_banks_attribute_filters_give_the_same_answers_on_sqlite(databases):
    database, error = databases["bloodbank"]
    assert not error, error
    result = _manage("bloodbank", database, "shell", "-c", COUNT_ATTRIBUTES)
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1].startswith("ok"), result.stderr[-3000:]
