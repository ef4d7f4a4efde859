"""Settings for pytest: PostgreSQL on 127.0.0.1 (pytest-django makes test_hospital)."""

import os

os.environ.setdefault("SECRET_KEY", "hospital-tests-only")
# seed_demo refuses the published development password with DEBUG off (as in tests).
os.environ.setdefault("DEMO_PASSWORD", "demo-password-for-tests")
# Suites log in far more often than a person; the throttle itself is tested with its own rate.
os.environ.setdefault("LOGIN_THROTTLE_RATE", "10000/minute")
# TEST_DB_SUFFIX keeps parallel checkouts on one PostgreSQL apart.
os.environ.setdefault(
    "DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/hospital{os.environ.get('TEST_DB_SUFFIX', '')}"
)

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# Threads the tests start (live server requests, consumer, relay) must not keep sessions
# open past the test, or the test database cannot be dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
