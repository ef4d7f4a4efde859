"""Kafka client settings, from the environment only.

``KAFKA_BOOTSTRAP_SERVERS`` names the brokers. Producers are idempotent with
``acks=all``; consumers use the ``cooperative-sticky`` assignor and, when
``KAFKA_GROUP_INSTANCE_ID`` is set (each worker replica its own; ``@hostname``
takes the host's name), static
membership, so that a restarted worker gets its partitions back without a
rebalance. Any ``KAFKA_CONFIG_<NAME>`` variable is passed through as librdkafka setting
``<name>`` with ``_`` read as ``.`` (e.g. ``KAFKA_CONFIG_SECURITY_PROTOCOL``,
``KAFKA_CONFIG_SASL_USERNAME``). The conventional names in ``SECURITY_SETTINGS``
(``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_USERNAME`` ...) are read too; empty
ones are ignored (compose passes unset variables as ``""``), and a
``KAFKA_CONFIG_<NAME>`` for the same setting wins.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

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


def env_settings() -> dict[str, Any]:
    """The ``KAFKA_CONFIG_*`` settings: they win over every default here."""
    return {
        _setting(name, "KAFKA_CONFIG_"): value for name, value in os.environ.items() if name.startswith("KAFKA_CONFIG_")
    }


def base_config() -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        # librdkafka's own lines go through Python logging (JSON in production), not raw to stderr.
        "logger": logging.getLogger("librdkafka"),
    }
    for name in SECURITY_SETTINGS:
        if os.environ.get(name):
            config[_setting(name, "KAFKA_")] = os.environ[name]
    return config | env_settings()


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
        # Incremental rebalances: a member joining or leaving moves only the partitions that change hands.
        "partition.assignment.strategy": "cooperative-sticky",
    }
    instance = os.environ.get("KAFKA_GROUP_INSTANCE_ID", "").strip()
    if instance == "@hostname":  # compose: each replica's container name, kept across restarts
        instance = socket.gethostname()
    if instance:
        # Static membership: a worker back within session.timeout.ms keeps its partitions (no rebalance).
        config["group.instance.id"] = f"{group_id}:{instance}"
    return config | env_settings() | overrides


def admin_config() -> dict[str, Any]:
    return base_config()
