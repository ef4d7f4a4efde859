"""The services' database settings (``service_settings.database_from_env``), on a real connection."""

from __future__ import annotations

import pytest
from django.db import connection

from shared_events.django.service_settings import database_from_env


@pytest.mark.django_db
def test_a_service_connection_runs_without_jit_compilation():
    # PostgreSQL compiles a statement whose estimated cost is high; for short OLTP statements that cost
    # hundreds of milliseconds to save a few (the escalation sweep: 270 ms of compiling to run in 23).
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_a_database_url_with_options_of_its_own_keeps_them(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://app@db:5432/app?options=-c%20statement_timeout%3D5000")
    assert database_from_env(tmp_path, "hospital")["OPTIONS"]["options"] == "-c statement_timeout=5000"
    monkeypatch.setenv("DATABASE_URL", "postgres://app@db:5432/app?sslmode=require")
    assert database_from_env(tmp_path, "hospital")["OPTIONS"] == {"sslmode": "require", "options": "-c jit=off"}
