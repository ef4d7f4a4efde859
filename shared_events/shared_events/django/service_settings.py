"""Settings every service shares, read from the environment.

A service's ``config/settings.py`` calls ``service_settings(...)`` and adds its
own apps. Production needs ``SECRET_KEY``; ``DEBUG`` is off unless set.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from shared_events.django.logging import PLAIN_FORMAT

SERVER_DESCRIPTION = (
    "The host serving this document: `make run` serves hospital, blood bank and notification on "
    "127.0.0.1:8001, 8002 and 8003; `docker compose up` publishes them on the same ports of its host."
)
API_LICENSE = "Proprietary: internal API of the blood bank system, no licence granted"


SCHEMA_COMMANDS = ("spectacular",)
"""Management commands that only print a document: they run without ``SECRET_KEY`` (a throwaway one)."""


def schema_only() -> bool:
    """Is this process ``manage.py spectacular``? It serves nothing and signs nothing: no secret is needed."""
    return Path(sys.argv[0]).name == "manage.py" and sys.argv[1:2] in [[command] for command in SCHEMA_COMMANDS]


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_env(base_dir: Path, service: str) -> dict[str, Any]:
    default_sqlite = f"sqlite:///{base_dir.parent / 'var' / f'{service}.sqlite3'}"
    db = dj_database_url.parse(os.environ.get("DATABASE_URL", default_sqlite), conn_max_age=60)
    if db["ENGINE"] == "django.db.backends.postgresql":
        # No JIT compilation: these are short OLTP statements, and PostgreSQL judges by estimated cost. A
        # query the planner overestimates (the escalation sweep's) spent 270 ms compiling to run in 23.
        # A DATABASE_URL that gives its own ``options`` keeps them.
        db.setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    if db["ENGINE"] == "django.db.backends.sqlite3":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        db["CONN_MAX_AGE"] = 0
        # Writers take the lock up front (no deadlock on upgrade) and wait for it.
        db["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    return db


def log_format(debug: bool) -> str:
    """``LOG_FORMAT``: ``json`` (the default unless DEBUG) or ``plain``."""
    value = os.environ.get("LOG_FORMAT", "plain" if debug else "json").strip().lower()
    if value not in {"json", "plain"}:
        raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {value!r}")
    return value


def _seconds_from_env(name: str, default: float) -> float:
    """A duration given in milliseconds by the environment variable ``name``, in seconds; else ``default``."""
    value = os.environ.get(name, "").strip()
    return float(value) / 1000 if value else default


def service_settings(
    *,
    base_dir: Path,
    service: str,
    title: str,
    apps: list[str],
    handlers: str | None,
    periodic: list[tuple[str, float]] | None = None,
    when_caught_up: list[str] | None = None,
    consumer_settings: dict[str, Any] | None = None,
    relay_linger: float = 0.0,
    consumer_batch_wait: float = 0.0,
) -> dict[str, Any]:
    debug = env_bool("DEBUG")
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        if schema_only():
            secret_key = secrets.token_urlsafe(50)  # signs nothing, and is gone when the command ends
        elif not debug:
            raise ImproperlyConfigured("SECRET_KEY must be set in the environment (DEBUG is off)")
        else:
            secret_key = "insecure-development-only-key"  # noqa: S105 - DEBUG only
    behind_tls = env_bool("HTTPS", default=False)
    # Trusted reverse proxies in front (compose: 1, the TLS proxy). Only then are X-Forwarded-For
    # (client address) and X-Forwarded-Proto (HTTPS) believed: a direct caller could write anything there.
    num_proxies = int(os.environ.get("NUM_PROXIES") or 0)
    return {
        "BASE_DIR": base_dir,
        "SECRET_KEY": secret_key,
        "DEBUG": debug,
        "ALLOWED_HOSTS": env_list("ALLOWED_HOSTS", "localhost,127.0.0.1"),
        "CSRF_TRUSTED_ORIGINS": env_list("CSRF_TRUSTED_ORIGINS", ""),
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "rest_framework",
            "knox",  # expiring API tokens stored as digests (shared_events.django.auth)
            "axes",  # login failures per account and address, in the database (shared_events.django.auth)
            "django_filters",
            "drf_spectacular",
            "drf_spectacular_sidecar",
            "shared_events.django",
            *apps,
        ],
        "MIDDLEWARE": [
            "shared_events.django.middleware.request_metrics",  # outermost: times every response
            "shared_events.django.middleware.correlation_id",
            "django.middleware.security.SecurityMiddleware",
            "shared_events.django.body_limits.body_size_limit",
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
            "axes.middleware.AxesMiddleware",  # a locked-out form login gets 429 (last: sees the response)
        ],
        # django-axes first: it refuses a locked-out account or address before any password is checked.
        "AUTHENTICATION_BACKENDS": [
            "axes.backends.AxesStandaloneBackend",
            "django.contrib.auth.backends.ModelBackend",
        ],
        "AXES_FAILURE_LIMIT": int(os.environ.get("LOGIN_FAILURE_LIMIT", "10")),
        "AXES_COOLOFF_TIME": timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15"))),
        # Either is enough to lock: one account guessed from many addresses, or many accounts from one.
        "AXES_LOCKOUT_PARAMETERS": ["username", "ip_address"],
        "AXES_CLIENT_IP_CALLABLE": "shared_events.django.auth.client_ip",
        "AXES_LOCKOUT_CALLABLE": "shared_events.django.auth.lockout_response",
        "AXES_RESET_ON_SUCCESS": False,  # a right password does not wipe an address's failures on other accounts
        # Counters every worker and process shares: the login throttle's cache is the database.
        "CACHES": {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}},
        # API tokens (django-rest-knox): a SHA-512 digest in the database, an expiry, revocable.
        "REST_KNOX": {
            "TOKEN_TTL": timedelta(hours=float(os.environ.get("TOKEN_TTL_HOURS", "10"))),
            "AUTH_HEADER_PREFIX": "Token",
            "AUTO_REFRESH": False,
        },
        "ROOT_URLCONF": "config.urls",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "WSGI_APPLICATION": "config.wsgi.application",
        "ASGI_APPLICATION": "config.asgi.application",
        "DATABASES": {"default": database_from_env(base_dir, service)},
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "AUTH_PASSWORD_VALIDATORS": [
            {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
            {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
        ],
        "LANGUAGE_CODE": "en-gb",
        "TIME_ZONE": "UTC",
        "USE_I18N": True,
        "USE_TZ": True,
        "STATIC_URL": "static/",
        "STATIC_ROOT": base_dir / "staticfiles",
        "LOGIN_URL": "/accounts/login/",
        # Request bodies above this are refused with a JSON 413 (shared_events.django.body_limits).
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 64 * 1024,
        "REST_FRAMEWORK": {
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "shared_events.django.token_auth.ExpiringTokenAuthentication",  # knox, one query less per call
                "rest_framework.authentication.SessionAuthentication",
            ],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            # JSON bodies only, bounded in size and depth (shared_events.django.body_limits).
            "DEFAULT_PARSER_CLASSES": ["shared_events.django.body_limits.BoundedJSONParser"],
            "DEFAULT_PAGINATION_CLASS": "shared_events.django.pagination.PageNumberPagination",
            "PAGE_SIZE": 50,
            "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
            # Token logins per client address (shared_events.django.auth); more get 429.
            "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("LOGIN_THROTTLE_RATE", "30/minute")},
            # The client address is REMOTE_ADDR, or X-Forwarded-For's entry from the nearest trusted proxy.
            "NUM_PROXIES": num_proxies,
        },
        "SPECTACULAR_SETTINGS": {
            "TITLE": title,
            "VERSION": "1.0.0",
            # 3.1: a nullable reference is ``oneOf: [{$ref}, {type: "null"}]``, which every tool reads alike.
            "OAS_VERSION": "3.1.0",
            # The host that serves the document (its location, /api/schema/, resolves the relative URL).
            "SERVERS": [{"url": "/", "description": SERVER_DESCRIPTION}],
            "LICENSE": {"name": API_LICENSE, "identifier": "LicenseRef-Proprietary"},  # an SPDX custom reference
            "SERVE_INCLUDE_SCHEMA": False,
            "COMPONENT_SPLIT_REQUEST": True,
            "DESCRIPTION": "Authenticate with `Authorization: Token <key>`; get the key from "
            "`POST /api/v1/auth/token/` (see **Authorize**); it expires, and `POST /api/v1/auth/logout/` "
            "revokes it. Bodies are JSON, at most 64 KiB.",
            # Errors, auth description and examples every endpoint shares (shared_events.django.openapi).
            "POSTPROCESSING_HOOKS": [
                "drf_spectacular.hooks.postprocess_schema_enums",
                "shared_events.django.openapi.document_common",
            ],
            # Swagger UI's assets from the drf-spectacular-sidecar package, not from a CDN.
            "SWAGGER_UI_DIST": "SIDECAR",
            "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
            "REDOC_DIST": "SIDECAR",
        },
        "SHARED_EVENTS": {
            "SERVICE": service,
            "SOURCE": f"{service}-service",
            "HANDLERS": handlers,
            "PERIODIC": periodic or [],
            # Run by the consumer right after a batch that left nothing more fetched.
            "WHEN_CAUGHT_UP": when_caught_up or [],
            # librdkafka settings of this service's consumer, over the defaults of kafka_config.
            "CONSUMER_SETTINGS": consumer_settings or {},
            # Seconds the outbox relay waits after a commit woke it, so that the commits of those
            # milliseconds go out in the same round (OUTBOX_RELAY_LINGER_MS overrides it).
            "RELAY_LINGER": _seconds_from_env("OUTBOX_RELAY_LINGER_MS", relay_linger),
            # Seconds a consumer batch waits for more events after its first, so that they share
            # one transaction (CONSUMER_BATCH_WAIT_MS overrides it).
            "CONSUMER_BATCH_WAIT": _seconds_from_env("CONSUMER_BATCH_WAIT_MS", consumer_batch_wait),
        },
        # Production hardening (manage.py check --deploy); HTTPS=1 behind TLS. X-Forwarded-Proto is
        # believed only from a trusted proxy (NUM_PROXIES), which sets it itself.
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https") if num_proxies else None,
        "SECURE_SSL_REDIRECT": behind_tls,
        # Probes on the private network (Prometheus, health checks) ask over plain HTTP: no redirect for them.
        "SECURE_REDIRECT_EXEMPT": [r"^(healthz|readyz|metrics)$"],
        "SESSION_COOKIE_SECURE": behind_tls,
        "CSRF_COOKIE_SECURE": behind_tls,
        "SECURE_HSTS_SECONDS": 31536000 if behind_tls else 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": behind_tls,
        "SECURE_HSTS_PRELOAD": behind_tls,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        # The worker's heartbeat (``manage.py worker_health`` reads it).
        "WORKER_HEARTBEAT_FILE": os.environ.get("WORKER_HEARTBEAT_FILE")
        or str(Path(tempfile.gettempdir()) / f"{service}-worker.heartbeat"),
        "WORKER_HEARTBEAT_MAX_AGE": float(os.environ.get("WORKER_HEARTBEAT_MAX_AGE", "30")),
        # JSON lines in production, readable lines in development; both carry the correlationid.
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"correlationid": {"()": "shared_events.django.logging.CorrelationIdFilter"}},
            "formatters": {
                "json": {"()": "shared_events.django.logging.JsonFormatter"},
                "plain": {"format": PLAIN_FORMAT},
            },
            "handlers": {
                "console": {
                    "class": "logging.StreamHandler",
                    "filters": ["correlationid"],
                    "formatter": log_format(debug),
                }
            },
            "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
            "loggers": {"django.db.backends": {"level": "WARNING"}},
        },
    }
