"""Recalls the bank issued to this hospital and the state of each listed unit here. Never deleted."""

from __future__ import annotations

from django.db import models

from shared_events.enums import RecallReason, RecallSeverity, RecallUnitState, choices


class HospitalRecall(models.Model):
    id = models.BigAutoField(primary_key=True)
    recall_id = models.UUIDField()
    hospital = models.ForeignKey("hospitals.Hospital", on_delete=models.PROTECT, related_name="recalls")
    reason = models.CharField(max_length=30, choices=choices(RecallReason))
    severity = models.CharField(max_length=6, choices=choices(RecallSeverity))
    issued_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    last_acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [models.UniqueConstraint(fields=["recall_id", "hospital"], name="recall_once_per_hospital")]

    def __str__(self) -> str:
        return f"recall {str(self.recall_id)[:8]} ({self.reason})"


class HospitalRecallUnit(models.Model):
    id = models.BigAutoField(primary_key=True)
    recall = models.ForeignKey(HospitalRecall, on_delete=models.PROTECT, related_name="units")
    bank_unit_id = models.UUIDField()
    din = models.CharField(max_length=13)
    component = models.CharField(max_length=16)
    blood_group = models.CharField(max_length=3)
    request_id = models.UUIDField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=choices(RecallUnitState))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["din", "id"]
        constraints = [models.UniqueConstraint(fields=["recall", "bank_unit_id"], name="recall_unit_once_here")]

    def __str__(self) -> str:
        return f"{self.din}: {self.state}"
