"""Log lines that carry the ``correlationid`` of the work they belong to.

The consumer sets it while it handles an event (the envelope's
``correlationid``), the relay while it publishes a row, and
``CorrelationIdMiddleware`` for a web request (``X-Correlation-ID`` or a new
id). ``CorrelationIdFilter`` (on the console handler) copies it onto every
record; ``JsonFormatter`` writes one JSON object per line (``LOG_FORMAT=json``,
the default when ``DEBUG`` is off) and the plain format shows it too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

NO_CORRELATION = "-"
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlationid)s] %(message)s"

correlation_id: ContextVar[str] = ContextVar("correlationid", default=NO_CORRELATION)


@contextmanager
def correlation(value: str | None) -> Iterator[None]:
    """Log lines written inside the block carry ``value`` as their correlationid."""
    token = correlation_id.set(value or NO_CORRELATION)
    try:
        yield
    finally:
        correlation_id.reset(token)


class CorrelationIdFilter(logging.Filter):
    """Adds ``record.correlationid`` (an explicit ``extra={"correlationid": ...}`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlationid"):
            record.correlationid = correlation_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "correlationid": getattr(record, "correlationid", correlation_id.get()),
            "message": record.getMessage(),
        }
        for extra in ("event_id", "event_type"):
            if hasattr(record, extra):
                entry[extra] = getattr(record, extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
