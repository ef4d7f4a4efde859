"""Outbox and inbox tables, one of each in every service's database."""

from __future__ import annotations

from django.db import models


class OutboxEvent(models.Model):
    """A message to publish, written in the same transaction as the change it reports."""

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=200)
    key = models.CharField(max_length=200)
    value = models.BinaryField()
    headers = models.JSONField(default=dict)
    event_id = models.UUIDField(null=True, blank=True, db_index=True)
    event_type = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="outbox_unsent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.key} ({'sent' if self.sent_at else 'pending'})"


class InboxEvent(models.Model):
    """An event a consumer group has handled (or dead-lettered): the dedup record."""

    class Outcome(models.TextChoices):
        HANDLED = "HANDLED"
        DEAD_LETTERED = "DEAD_LETTERED"

    id = models.BigAutoField(primary_key=True)
    consumer_group = models.CharField(max_length=200)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=200)
    topic = models.CharField(max_length=200)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.HANDLED)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer_group", "event_id"], name="inbox_unique_event_per_group"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer_group} {self.event_type} {self.event_id}"
