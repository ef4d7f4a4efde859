"""Kafka client settings from the environment: SASL/SSL for a secured cluster."""

from __future__ import annotations

import ssl

import confluent_kafka
import pytest

from shared_events.kafka_config import SECURITY_SETTINGS, admin_config, consumer_config, producer_config

SECURED = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # nothing listens: the clients never connect
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "hospital-service",
    "KAFKA_SASL_PASSWORD": "from-the-environment",
}


@pytest.fixture
def secured_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in SECURITY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    env = SECURED | {"KAFKA_SSL_CA_LOCATION": ssl.get_default_verify_paths().cafile}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_conventional_security_variables_become_librdkafka_settings(secured_env):
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "hospital-service",
        "sasl.password": "from-the-environment",
        "ssl.ca.location": secured_env["KAFKA_SSL_CA_LOCATION"],
    }
    for config in (producer_config(), consumer_config("g"), admin_config()):
        assert {key: config[key] for key in expected} == expected
        assert config["bootstrap.servers"] == "127.0.0.1:1"


def test_librdkafka_accepts_them_and_reads_the_ca_file(secured_env):
    # Creating a client validates every setting name and loads the CA file; it connects later.
    confluent_kafka.Producer(producer_config())
    confluent_kafka.Consumer(consumer_config("g")).close()


def test_a_missing_ca_file_is_refused_at_start(secured_env, monkeypatch, tmp_path):
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", str(tmp_path / "missing-ca.pem"))
    with pytest.raises(confluent_kafka.KafkaException, match=r"ssl\.ca\.location"):
        confluent_kafka.Producer(producer_config())


def test_empty_variables_are_ignored(monkeypatch):
    # docker compose passes `${KAFKA_SASL_USERNAME:-}` as "" when .env leaves it unset.
    for name in SECURITY_SETTINGS:
        monkeypatch.setenv(name, "")
    config = producer_config()
    assert not {"security.protocol", "sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location"} & set(
        config
    )


def test_a_kafka_config_variable_wins_over_the_conventional_name(secured_env, monkeypatch):
    monkeypatch.setenv("KAFKA_CONFIG_SASL_MECHANISM", "PLAIN")
    assert producer_config()["sasl.mechanism"] == "PLAIN"
