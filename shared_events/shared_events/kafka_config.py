"""Kafka client settings, from the environment only.

``KAFKA_BOOTSTRAP_SERVERS`` names the brokers. ``KAFKA_EMBEDDED=1`` applies the
low-latency, fast-join values the embedded broker needs (``architecture.md``,
"The embedded broker"); without it librdkafka's production defaults apply.
Any ``KAFKA_CONFIG_<NAME>`` variable is passed through as librdkafka setting
``<name>`` with ``_`` read as ``.`` (e.g. ``KAFKA_CONFIG_SECURITY_PROTOCOL``,
``KAFKA_CONFIG_SASL_USERNAME``). The conventional names in ``SECURITY_SETTINGS``
(``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_USERNAME`` ...) are read too; empty
ones are ignored (compose passes unset variables as ``""``), and a
``KAFKA_CONFIG_<NAME>`` for the same setting wins.
"""

from __future__ import annotations

import logging
import os
from typing import Any

EMBEDDED_CONSUMER_SETTINGS = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "fetch.wait.max.ms": 10,
}


# Conventional environment names for a secured cluster, read as librdkafka settings the same way
# (``KAFKA_SASL_USERNAME`` -> ``sasl.username``).
SECURITY_SETTINGS = (
    "KAFKA_SECURITY_PROTOCOL",  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    "KAFKA_SASL_MECHANISM",  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",  # CA certificate file (PEM) of the brokers
)


def _setting(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower().replace("_", ".")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def embedded() -> bool:
    return _truthy(os.environ.get("KAFKA_EMBEDDED"))


def base_config() -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        # librdkafka's own lines go through Python logging (JSON in production), not raw to stderr.
        "logger": logging.getLogger("librdkafka"),
    }
    for name in SECURITY_SETTINGS:
        if os.environ.get(name):
            config[_setting(name, "KAFKA_")] = os.environ[name]
    for name, value in os.environ.items():
        if name.startswith("KAFKA_CONFIG_"):
            config[_setting(name, "KAFKA_CONFIG_")] = value
    return config


def producer_config(**overrides: Any) -> dict[str, Any]:
    config = base_config() | {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": int(os.environ.get("KAFKA_LINGER_MS", "1")),
    }
    return config | overrides


def consumer_config(group_id: str, **overrides: Any) -> dict[str, Any]:
    config = base_config() | {
        "group.id": group_id,
        "enable.auto.offset.store": False,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky" if not embedded() else "range",
    }
    if embedded():
        config |= EMBEDDED_CONSUMER_SETTINGS
    return config | overrides


def admin_config() -> dict[str, Any]:
    return base_config()
