"""Settings for pytest: PostgreSQL on 127.0.0.1 (pytest-django makes test_hospital)."""

import os

os.environ.setdefault("SECRET_KEY", "hospital-tests-only")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hospital")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
