"""Recalls at the hospital: quarantine what is held, answer for every unit, answer again on each change.

``hospital.recall.acknowledged`` carries, per listed unit, its state here; a transfused
unit carries the opaque patient reference and start time (the look-back: the hospital
identifies and follows up the recipient).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from hospitals.models import Hospital
from local_inventory.models import LocalUnit, LocalUnitStatus

from recalls.models import HospitalRecall, HospitalRecallUnit
from recalls.rules import recall_state
from shared_events import topics
from shared_events.django.outbox import publish
from shared_events.enums import RecallUnitState
from shared_events.schemas import RecallIssuedV1

log = logging.getLogger(__name__)

SYSTEM = "system"


def _held(hospital_id, bank_unit_id, request_id) -> LocalUnit | None:
    units = LocalUnit.objects.select_for_update().filter(hospital_id=hospital_id, bank_unit_id=bank_unit_id)
    if request_id is not None:
        units = units.filter(source_request_id=request_id)
    return units.order_by("-received_at").first()


def _quarantine(unit: LocalUnit, *, now: datetime) -> None:
    unit.status = LocalUnitStatus.QUARANTINED
    unit.status_reason = "recalled by the blood bank"
    unit.status_changed_at = now
    unit.save(update_fields=["status", "status_reason", "status_changed_at"])


def record_recall(*, data: RecallIssuedV1) -> list[HospitalRecall]:
    """``bloodbank.recall.issued``: for each listed hospital that is ours, quarantine and answer at once."""
    now = timezone.now()
    recalls = []
    with transaction.atomic():
        ours = set(Hospital.objects.filter(id__in=[h.hospital_id for h in data.hospitals]).values_list("id", flat=True))
        for listed in data.hospitals:
            if listed.hospital_id not in ours:
                continue
            recall, created = HospitalRecall.objects.get_or_create(
                recall_id=data.recall_id,
                hospital_id=listed.hospital_id,
                defaults={"reason": data.reason.value, "severity": data.severity.value, "issued_at": data.issued_at},
            )
            if not created:
                continue  # a repeat
            for entry in listed.units:
                held = _held(listed.hospital_id, entry.unit_id, entry.request_id)
                if held is not None and held.status == LocalUnitStatus.AVAILABLE:
                    _quarantine(held, now=now)
                HospitalRecallUnit.objects.create(
                    recall=recall,
                    bank_unit_id=entry.unit_id,
                    din=entry.din,
                    component=entry.component.value,
                    blood_group=entry.blood_group.value,
                    request_id=entry.request_id,
                    state=recall_state(held.status if held else None).value,
                )
            acknowledge(recall=recall, by=SYSTEM, now=now)
            recalls.append(recall)
            log.warning("recall %s: %d unit(s) of %s", data.recall_id, len(listed.units), listed.hospital_id)
    return recalls


def acknowledge(*, recall: HospitalRecall, by: str, now: datetime | None = None) -> None:
    """Publish every listed unit's state (with the look-back details of transfused units)."""
    now = now or timezone.now()
    answers = []
    for entry in recall.units.order_by("din", "id"):
        answer = {"unit_id": entry.bank_unit_id, "din": entry.din, "state": entry.state}
        if entry.state == RecallUnitState.TRANSFUSED:
            held = LocalUnit.objects.filter(hospital_id=recall.hospital_id, bank_unit_id=entry.bank_unit_id).order_by(
                "-received_at"
            )[0]
            answer |= {"patient_reference": held.patient_reference, "started_at": held.started_at}
        answers.append(answer)
    publish(
        topics.RECALL_ACKNOWLEDGED,
        {
            "recall_id": recall.recall_id,
            "hospital_id": recall.hospital_id,
            "units": answers,
            "acknowledged_by": by,
            "acknowledged_at": now,
        },
        subject=str(recall.recall_id),
    )
    recall.last_acknowledged_at = now
    recall.save(update_fields=["last_acknowledged_at"])


def unit_changed(*, unit: LocalUnit, by: str) -> None:
    """A held unit was received or got its fate: quarantine it if recalled, and answer each recall again.

    Call inside the transaction of the change.
    """
    entries = list(
        HospitalRecallUnit.objects.select_related("recall").filter(
            recall__hospital_id=unit.hospital_id, bank_unit_id=unit.bank_unit_id
        )
    )
    if not entries:
        return
    if unit.status == LocalUnitStatus.AVAILABLE:
        _quarantine(unit, now=timezone.now())  # received after the recall: never usable
    state = recall_state(unit.status).value
    for entry in entries:
        if entry.state != state:
            entry.state = state
            entry.save(update_fields=["state", "updated_at"])
            acknowledge(recall=entry.recall, by=by)
