"""Request input validation (shared by the API and the dashboard form) and output shapes."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from blood_requests.lifecycle import PATIENT_REFERENCE_MAX_LENGTH, is_clinician_name, is_opaque_patient_reference
from blood_requests.models import (
    ANTIGEN_CHOICES,
    CANCEL_REASON_CHOICES,
    COMPONENT_CHOICES,
    INDICATION_CHOICES,
    PACK_STATUS_CHOICES,
    PRIORITY_CHOICES,
    PROTOCOL_CHOICES,
    REQUEST_BLOOD_GROUP_CHOICES,
    SPECIAL_REQUIREMENT_CHOICES,
    UNIT_ATTRIBUTE_CHOICES,
    BloodRequest,
    MtpPack,
    StatusChange,
)
from shared_events.din import InvalidDIN, normalize_din
from shared_events.enums import ANTIGENS, UNKNOWN_GROUP, CancelReason, Component, Indication, Priority, RequestProtocol


class BloodRequestCreateSerializer(serializers.Serializer):
    blood_group = serializers.ChoiceField(
        choices=REQUEST_BLOOD_GROUP_CHOICES,
        help_text="`UNKNOWN`: a patient not yet typed (emergency release): EMERGENCY only, with `authorised_by`; "
        "group O red cells, AB (then A) plasma, issued uncrossmatched.",
    )
    protocol = serializers.ChoiceField(
        choices=PROTOCOL_CHOICES,
        required=False,
        default=RequestProtocol.STANDARD.value,
        help_text="`MTP`: massive transfusion protocol packs (4 red cells + 4 plasma, from pack 2 also platelets); "
        "EMERGENCY only, with `authorised_by`, and no `component` or `units`.",
    )
    component = serializers.ChoiceField(
        choices=COMPONENT_CHOICES, required=False, help_text="Required, except for an MTP request (none then)."
    )
    units = serializers.IntegerField(
        min_value=1, max_value=20, required=False, help_text="1-20. Required, except for an MTP request (none then)."
    )
    priority = serializers.ChoiceField(choices=PRIORITY_CHOICES)
    needed_by = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Required, and in the future, for SCHEDULED requests."
    )
    allow_partial = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="Default: true for EMERGENCY, false for SCHEDULED. An UNKNOWN-group or MTP request is never "
        "all-or-nothing (false is refused).",
    )
    authorised_by = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=150,
        help_text="The clinician who authorised an emergency release (`UNKNOWN` group) or an MTP: required then. "
        "A name or username (letters, spaces, . ' - _; no numbers): it is sent to the blood bank, so never a "
        "patient's details.",
    )
    group_confirmed = serializers.BooleanField(
        required=False,
        default=False,
        help_text="True only when two independent ABO/RhD determinations agree. False (the default, the safe "
        "choice): group O red cells and AB plasma are given whatever the stated group; whole blood is refused.",
    )
    rhd_negative_required = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Default true. False (e.g. an adult male, a woman past childbearing age) lets an unknown or "
        "unconfirmed group receive RhD-positive group O red cells.",
    )
    special_requirements = serializers.ListField(
        child=serializers.ChoiceField(choices=SPECIAL_REQUIREMENT_CHOICES),
        required=False,
        default=list,
        max_length=len(SPECIAL_REQUIREMENT_CHOICES),
        help_text="Attributes every unit must carry where they apply (e.g. IRRADIATED for red cells and platelets).",
    )
    antigen_negative = serializers.ListField(
        child=serializers.ChoiceField(choices=ANTIGEN_CHOICES),
        required=False,
        default=list,
        max_length=len(ANTIGEN_CHOICES),
        help_text="Red-cell antigens the red cells (and whole blood) must lack, case-sensitive: "
        + ", ".join(ANTIGENS)
        + ".",
    )
    patient_reference = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=PATIENT_REFERENCE_MAX_LENGTH,
        help_text="An opaque token (e.g. a record number), never a patient's name: letters, digits, . _ : / # -",
    )
    indication = serializers.ChoiceField(
        choices=INDICATION_CHOICES,
        required=False,
        default=Indication.OTHER.value,
        help_text="Why the blood is needed, as a code: the only clinical context sent to the bank.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="A free-text note for this hospital's staff. It stays in this service and is never sent to "
        "the bank or the notification service.",
    )

    def validate_patient_reference(self, value: str) -> str:
        if value and not is_opaque_patient_reference(value):
            raise serializers.ValidationError(
                "Use an opaque reference (letters, digits and . _ : / # -, no spaces), never a patient's name."
            )
        return value

    def validate_authorised_by(self, value: str) -> str:
        value = " ".join(value.split())
        if value and not is_clinician_name(value):
            raise serializers.ValidationError(
                "The authorising clinician's name or username: letters, spaces and . ' - _ only, no numbers "
                "(no patient details: this is sent to the blood bank)."
            )
        return value

    def validate_special_requirements(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate_antigen_negative(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = request_rule_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def request_rule_errors(attrs: dict[str, Any]) -> dict[str, str]:
    """The rules across fields (transfusion.md sections 5-7), as field errors; empty when the request is valid."""
    errors: dict[str, str] = {}
    priority, needed_by = attrs["priority"], attrs.get("needed_by")
    emergency = priority == Priority.EMERGENCY
    unknown = attrs["blood_group"] == UNKNOWN_GROUP
    mtp = attrs.get("protocol", RequestProtocol.STANDARD.value) == RequestProtocol.MTP
    component = attrs.get("component")
    if priority == Priority.SCHEDULED and needed_by is None:
        errors["needed_by"] = "Required for a SCHEDULED request."
    elif needed_by is not None and needed_by <= timezone.now():
        errors["needed_by"] = "Must be in the future."
    if mtp:
        for field in ("component", "units"):
            if field in attrs:
                errors[field] = "An MTP request has no component or units: the packs say what is sent."
        if not emergency:
            errors["priority"] = "An MTP request is EMERGENCY."
    else:
        for field in ("component", "units"):
            if field not in attrs:
                errors[field] = "This field is required."
    if unknown and not emergency:
        errors["blood_group"] = "UNKNOWN (emergency release) is for EMERGENCY requests only."
    if (unknown or mtp) and not attrs.get("authorised_by"):
        what = "an MTP" if mtp else "an emergency release (UNKNOWN group)"
        errors["authorised_by"] = f"Required for {what}: the clinician who authorised it."
    if (unknown or mtp) and attrs.get("allow_partial") is False:
        errors["allow_partial"] = (
            "An MTP pack is always partly supplied if need be."
            if mtp
            else "An emergency release is never all-or-nothing: give what there is."
        )
    if unknown and attrs.get("group_confirmed"):
        errors["group_confirmed"] = "An unknown group cannot be confirmed."
    if component == Component.WHOLE_BLOOD and "component" not in errors:
        if unknown:
            errors["component"] = "Whole blood needs an ABO-identical donor: not for an unknown group."
        elif not attrs.get("group_confirmed"):
            errors["component"] = (
                "Whole blood needs a confirmed group (two determinations agree: set group_confirmed), "
                "or ask for red cells."
            )
    return errors


class StatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = StatusChange
        fields = ["status", "at", "detail"]


class DecisionSerializer(serializers.Serializer):
    reason_code = serializers.CharField(allow_null=True)
    detail = serializers.CharField()
    decided_at = serializers.DateTimeField()


def _decision(obj: BloodRequest | MtpPack) -> dict[str, Any] | None:
    if obj.decided_at is None:
        return None
    return DecisionSerializer(
        {"reason_code": obj.decision_reason_code or None, "detail": obj.decision_detail, "decided_at": obj.decided_at}
    ).data


class DispatchedUnitSerializer(serializers.Serializer):
    unit_id = serializers.UUIDField()
    din = serializers.CharField()
    product_code = serializers.CharField(allow_null=True, required=False, help_text="ISBT 128, e.g. E0398V00")
    division = serializers.CharField(required=False, default="00")
    component = serializers.CharField()
    blood_group = serializers.CharField()
    expires_at = serializers.DateTimeField()
    special_attributes = serializers.ListField(
        child=serializers.ChoiceField(choices=UNIT_ATTRIBUTE_CHOICES), required=False, default=list
    )


class AllocationSerializer(serializers.Serializer):
    unit_id = serializers.UUIDField()
    din = serializers.CharField()
    product_code = serializers.CharField(allow_null=True, required=False, help_text="ISBT 128, e.g. E0398V00")
    division = serializers.CharField(allow_null=True, required=False)
    component = serializers.CharField()
    blood_group = serializers.CharField()
    expires_at = serializers.DateTimeField()
    batch = serializers.CharField()
    special_attributes = serializers.ListField(
        child=serializers.ChoiceField(choices=UNIT_ATTRIBUTE_CHOICES), required=False, default=list
    )


class MtpPackSerializer(serializers.ModelSerializer):
    pack = serializers.IntegerField(source="number", read_only=True)
    status = serializers.ChoiceField(choices=PACK_STATUS_CHOICES, read_only=True)
    decision = serializers.SerializerMethodField()
    allocations = AllocationSerializer(many=True, read_only=True)
    dispatched_units = DispatchedUnitSerializer(many=True, read_only=True)
    released_unit_ids = serializers.ListField(child=serializers.UUIDField(), read_only=True)

    class Meta:
        model = MtpPack
        fields = [
            "pack",
            "status",
            "requested_at",
            "decision",
            "units_requested",
            "units_allocated",
            "uncrossmatched",
            "allocations",
            "released_unit_ids",
            "dispatched_units",
            "dispatched_at",
            "received_at",
        ]
        read_only_fields = fields

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, obj: MtpPack) -> dict[str, Any] | None:
        return _decision(obj)


class BloodRequestSerializer(serializers.ModelSerializer):
    hospital_id = serializers.UUIDField(read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    status_history = StatusChangeSerializer(source="history", many=True, read_only=True)
    decision = serializers.SerializerMethodField()
    allocations = AllocationSerializer(many=True, read_only=True)
    released_unit_ids = serializers.ListField(child=serializers.UUIDField(), read_only=True)
    dispatched_units = DispatchedUnitSerializer(many=True, read_only=True)
    special_requirements = serializers.ListField(
        child=serializers.ChoiceField(choices=SPECIAL_REQUIREMENT_CHOICES), read_only=True
    )
    antigen_negative = serializers.ListField(child=serializers.ChoiceField(choices=ANTIGEN_CHOICES), read_only=True)
    packs = MtpPackSerializer(
        many=True, read_only=True, help_text="MTP only (empty otherwise): each pack's decision, dispatch, receipt."
    )
    mtp_stopped_by = serializers.CharField(
        source="mtp_stopped_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = BloodRequest
        fields = [
            "id",
            "hospital_id",
            "protocol",
            "blood_group",
            "component",
            "units",
            "priority",
            "needed_by",
            "allow_partial",
            "authorised_by",
            "group_confirmed",
            "rhd_negative_required",
            "special_requirements",
            "antigen_negative",
            "patient_reference",
            "indication",
            "reason",
            "status",
            "uncrossmatched",
            "packs",
            "mtp_stopped_at",
            "mtp_stopped_by",
            "status_history",
            "decision",
            "units_allocated",
            "allocations",
            "released_unit_ids",
            "cancel_reason_code",
            "dispatched_units",
            "dispatched_at",
            "received_at",
            "cancel_reason",
            "requested_by",
            "times_published",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, obj: BloodRequest) -> dict[str, Any] | None:
        return _decision(obj)


class ReceiveSerializer(serializers.Serializer):
    dins = serializers.ListField(
        child=serializers.CharField(max_length=14),
        min_length=1,
        max_length=40,
        help_text="The DINs scanned from the bags (13 characters, or 14 with the check character, which is "
        "verified); a DIN twice for two units of one donation.",
    )
    pack = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="MTP only: the pack received (default: the oldest dispatched pack not yet received).",
    )

    def validate_dins(self, value: list[str]) -> list[str]:
        dins, errors = [], {}
        for index, text in enumerate(value):
            try:
                dins.append(normalize_din(text))
            except InvalidDIN as exc:
                errors[index] = [str(exc)]
        if errors:
            raise serializers.ValidationError(errors)
        return dins


class CancelSerializer(serializers.Serializer):
    reason_code = serializers.ChoiceField(
        choices=CANCEL_REASON_CHOICES,
        required=False,
        default=CancelReason.OTHER.value,
        help_text="Why, as a code: what the bank and the notifications are told.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        default="",
        help_text="A free-text note kept in this service only.",
    )
