from django.apps import AppConfig


class TraceabilityConfig(AppConfig):
    name = "traceability"
    verbose_name = "Traceability (dispatch, fates, recalls)"
