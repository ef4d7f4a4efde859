"""A minimal Django project that exercises the shared_events app on PostgreSQL."""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "shared-events-tests")
# TEST_DB_SUFFIX keeps parallel checkouts on one PostgreSQL apart.
os.environ.setdefault(
    "DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/shared_events{os.environ.get('TEST_DB_SUFFIX', '')}"
)

from shared_events.django.service_settings import service_settings

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent,
        service="hospital",
        title="shared_events tests",
        apps=["tests.testapp"],
        handlers="tests.testapp.handlers.HANDLERS",
    )
)
ROOT_URLCONF = "tests.urls"
