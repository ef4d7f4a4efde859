"""Fresh PostgreSQL databases for the cross-service tests (a module of its own: ``tests/faults`` has a
``conftest`` too, so ``from conftest import ...`` would find either one)."""

from __future__ import annotations

import psycopg2


def fresh_database(name: str) -> str:
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return f"postgres://postgres@127.0.0.1:5432/{name}"
