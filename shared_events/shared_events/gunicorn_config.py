"""Gunicorn settings of every service's web process, from the environment.

The image (the repository's Dockerfile) runs ``gunicorn --config gunicorn.conf.py`` in the
service's folder; that file imports these settings and names the application (hospital and
bloodbank: ``config.wsgi``; notification: ``config.asgi:application`` with uvicorn workers,
for its Server-Sent Events feed). Defaults suit a container with a few cores behind a proxy.

Environment (default):
- ``PORT`` (8000): listen on ``0.0.0.0:PORT``.
- ``GUNICORN_WORKERS`` (2 x usable cores + 1): processes.
- ``GUNICORN_THREADS`` (4): threads per process (gthread; the uvicorn worker ignores it).
- ``GUNICORN_TIMEOUT`` (30): seconds before a silent worker is killed and replaced.
- ``GUNICORN_GRACEFUL_TIMEOUT`` (20): seconds a stopping worker may finish its requests
  (keep it under the container's stop grace period).
- ``GUNICORN_KEEPALIVE`` (5): seconds an idle keep-alive connection stays open.
- ``GUNICORN_MAX_REQUESTS`` (10000): a worker is replaced after this many requests (+ up to
  10 % jitter), which bounds any slow leak. A replacement is not free even with ``preload_app``
  (below): each of the new worker's threads opens a database connection, a new PostgreSQL backend
  that plans its prepared statements again, and the fork's pages are copied as they are touched,
  about 0.2 s of CPU in all (bench/results/README.md, twelfth step). At 1000 that came every 7 s
  at 150 requests/s with two workers; at 10000 a worker lives about two minutes at that rate.

The application is loaded once, in the master, before the workers are forked (``preload_app``):
a replaced worker starts serving at once instead of importing Django and every app again. That
import took about a second of CPU per worker, which at 50 requests/s (a replacement every 20 s per
worker with 2 workers) was a third of the hospital web's CPU (py-spy) and a stall of every other
process on a 2-core machine. Nothing at import opens a connection or starts a thread (database
connections are per thread and lazy; the metrics' files are per process, reopened after a fork).

Access log lines show the path without its query string: the live feed's single-use
``?ticket=`` (and anything else a client puts in a URL) is never written down.
Neither gunicorn nor uvicorn believes ``X-Forwarded-*`` from anyone (``forwarded_allow_ips``
empty): Django decides, from ``NUM_PROXIES`` (``shared_events.django.auth.client_ip``).

With ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus_client multiprocess mode), a worker
that exits is marked dead so its live gauges leave ``/metrics``.
"""

from __future__ import annotations

import logging
import os
from typing import Any


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


bind = f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int("GUNICORN_WORKERS", 2 * len(os.sched_getaffinity(0)) + 1)
worker_class = "gthread"  # notification_service/gunicorn.conf.py: uvicorn_worker.UvicornWorker
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = max_requests // 10
preload_app = True  # the application imported once, in the master: a replaced worker is a fork (see above)
worker_tmp_dir = "/dev/shm"  # noqa: S108 - heartbeat files (mkstemp) off the container's overlay filesystem
accesslog = "-"
# gunicorn's default with %(U)s (the path) for %(r)s (the request line, query string included), no referer.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
forwarded_allow_ips = ""  # uvicorn would otherwise take X-Forwarded-For from 127.0.0.1 as the client
errorlog = "-"
control_socket_disable = True  # no gunicornc in the containers (and $HOME is read-only there)


class WithoutQueryString(logging.Filter):
    """uvicorn's access lines (``client - "METHOD path?query HTTP/x" status``) without the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5 and isinstance(record.args[2], str):
            client, method, path, version, status = record.args
            record.args = (client, method, path.split("?", 1)[0], version, status)
        return True


# On the logger, which the uvicorn worker keeps (it only swaps its handlers); the workers inherit it.
logging.getLogger("uvicorn.access").addFilter(WithoutQueryString())


def child_exit(_server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from shared_events.django.metrics import mark_process_dead  # in the master, only when needed

        mark_process_dead(worker.pid)
