"""Kafka principals and ACLs, derived from the topic registry, applied idempotently with the Admin API.

One SCRAM principal per service (``hospital``, ``bloodbank``, ``notification``) and one
read-only principal for operators' tools (``kafkadrop``). What each may do follows from
``shared_events.topics`` (docs/events.md's table):

- the producer of a topic: WRITE and DESCRIBE on it;
- each consumer of a topic: READ and DESCRIBE on it;
- each service: WRITE, READ and DESCRIBE on its own ``dlq.<service>`` (its outbox
  publishes dead letters there, ``replay_dlq`` reads them back), and READ on the consumer
  groups whose id starts with ``<service>-service`` (its worker's and ``replay_dlq``'s);
- ``kafkadrop``: READ, DESCRIBE and DESCRIBE_CONFIGS on every topic, DESCRIBE on every
  group and on the cluster (lag and configs in the UI), READ on groups starting with
  ``kafdrop`` (its own consumer); it can write nothing.

Topic names carry ``KAFKA_TOPIC_PREFIX`` as the services see them (literal names). Only
``admin`` (the brokers' super user) may run this; passwords come from the environment
(``<PRINCIPAL>_KAFKA_PASSWORD``) or from the caller, never from code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from shared_events.kafka_config import admin_config
from shared_events.topics import DLQ_SERVICES, TOPICS, consumer_group, dlq_topic, topic_name

SERVICES = DLQ_SERVICES
READ_ONLY = "kafkadrop"
PRINCIPALS = (*SERVICES, READ_ONLY)
SCRAM_ITERATIONS = 8192
CLUSTER = "kafka-cluster"
KAFKADROP_GROUPS = "kafdrop"  # KafkaDrop's own consumer group id starts with this

# librdkafka calls Kafka's CLUSTER resource type BROKER (both 4 on the wire).
RESOURCE_TYPES = {"TOPIC": ResourceType.TOPIC, "GROUP": ResourceType.GROUP, "CLUSTER": ResourceType.BROKER}
PRODUCE = ("WRITE", "DESCRIBE")
CONSUME = ("READ", "DESCRIBE")
INSPECT = ("READ", "DESCRIBE", "DESCRIBE_CONFIGS")


@dataclass(frozen=True, order=True)
class Grant:
    """One principal's operations on one resource (``pattern``: LITERAL or PREFIXED)."""

    principal: str
    resource: str  # TOPIC, GROUP, CLUSTER
    name: str
    operations: tuple[str, ...]
    pattern: str = "LITERAL"

    def bindings(self) -> list[AclBinding]:
        return [
            AclBinding(
                RESOURCE_TYPES[self.resource],
                self.name,
                ResourcePatternType[self.pattern],
                f"User:{self.principal}",
                "*",
                AclOperation[operation],
                AclPermissionType.ALLOW,
            )
            for operation in self.operations
        ]


def password_variable(principal: str) -> str:
    """The environment variable holding ``principal``'s password: ``HOSPITAL_KAFKA_PASSWORD``..."""
    return f"{principal.upper()}_KAFKA_PASSWORD"


def topic_grants() -> list[Grant]:
    grants = []
    for spec in TOPICS.values():
        name = topic_name(spec.name)
        grants.append(Grant(spec.producer, "TOPIC", name, PRODUCE))
        grants += [Grant(consumer, "TOPIC", name, CONSUME) for consumer in spec.consumers]
        grants.append(Grant(READ_ONLY, "TOPIC", name, INSPECT))
    return grants


def dead_letter_grants() -> list[Grant]:
    grants = []
    for service in SERVICES:
        grants.append(Grant(service, "TOPIC", dlq_topic(service), ("WRITE", "READ", "DESCRIBE")))
        grants.append(Grant(READ_ONLY, "TOPIC", dlq_topic(service), INSPECT))
    return grants


def group_and_cluster_grants() -> list[Grant]:
    return [
        *(Grant(service, "GROUP", consumer_group(service), ("READ",), "PREFIXED") for service in SERVICES),
        Grant(READ_ONLY, "GROUP", "*", ("DESCRIBE",)),
        Grant(READ_ONLY, "GROUP", KAFKADROP_GROUPS, ("READ",), "PREFIXED"),
        Grant(READ_ONLY, "CLUSTER", CLUSTER, ("DESCRIBE", "DESCRIBE_CONFIGS")),
    ]


def grants() -> list[Grant]:
    """Every grant, for the topic names the services use now (``KAFKA_TOPIC_PREFIX``)."""
    return topic_grants() + dead_letter_grants() + group_and_cluster_grants()


def acl_bindings() -> list[AclBinding]:
    return [binding for grant in grants() for binding in grant.bindings()]


def passwords_from_env(principals: Iterable[str] = PRINCIPALS) -> dict[str, str]:
    """``{principal: password}`` from ``<PRINCIPAL>_KAFKA_PASSWORD``; a missing one is an error."""
    missing = [password_variable(p) for p in principals if not os.environ.get(password_variable(p))]
    if missing:
        raise ValueError(f"set {', '.join(missing)} (the principals' passwords)")
    return {p: os.environ[password_variable(p)] for p in principals}


def _client(timeout: float) -> AdminClient:
    """An admin client once the cluster answers (it may just have been started)."""
    client = AdminClient(admin_config())
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_topics(timeout=5)
            return client
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def set_passwords(client: AdminClient, passwords: Mapping[str, str], *, timeout: float) -> None:
    """Create each principal's SCRAM-SHA-512 credential, or replace its password (upsert)."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    alterations = [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()]
    for future in client.alter_user_scram_credentials(alterations, request_timeout=timeout).values():
        future.result()


def stale_bindings(client: AdminClient, wanted: set[AclBinding], *, timeout: float) -> list[AclBinding]:
    """The ACLs of the managed principals that the registry no longer asks for."""
    existing = []
    for principal in PRINCIPALS:
        pattern = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{principal}", None,
            AclOperation.ANY, AclPermissionType.ANY,
        )  # fmt: skip
        existing += client.describe_acls(pattern, request_timeout=timeout).result()
    return sorted(set(existing) - wanted)


def _exactly(binding: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype, binding.name, binding.resource_pattern_type, binding.principal, binding.host,
        binding.operation, binding.permission_type,
    )  # fmt: skip


def apply_access(
    passwords: Mapping[str, str], *, prune: bool = False, timeout: float = 30.0
) -> dict[str, list[AclBinding]]:
    """Set the principals' passwords and create the registry's ACLs (idempotent).

    With ``prune``, ACLs of these principals that the registry does not derive are deleted
    (a topic that went, a grant that was narrowed); not with ``KAFKA_TOPIC_PREFIX`` runs
    sharing a cluster, whose ACLs name other prefixes. Returns ``{"created": [...], "deleted": [...]}``.
    """
    client = _client(timeout)
    set_passwords(client, passwords, timeout=timeout)
    wanted = acl_bindings()
    for future in client.create_acls(wanted, request_timeout=timeout).values():
        future.result()
    stale = stale_bindings(client, set(wanted), timeout=timeout) if prune else []
    if stale:
        for future in client.delete_acls([_exactly(b) for b in stale], request_timeout=timeout).values():
            future.result()
    return {"created": wanted, "deleted": stale}


def acl_table() -> list[tuple[str, str, str, str]]:
    """(principal, resource, pattern, operations) rows for the docs, without ``KAFKA_TOPIC_PREFIX``."""
    rows = []
    for grant in sorted(grants(), key=lambda g: (PRINCIPALS.index(g.principal), g.resource != "TOPIC", g.name)):
        name = f"{grant.name}*" if grant.pattern == "PREFIXED" else grant.name
        rows.append((grant.principal, grant.resource.lower(), name, ", ".join(grant.operations)))
    return rows


if __name__ == "__main__":
    for row in acl_table():
        print("| " + " | ".join(f"`{cell}`" if i == 2 else cell for i, cell in enumerate(row)) + " |")
