from django.apps import AppConfig


class SharedEventsConfig(AppConfig):
    name = "shared_events.django"
    label = "shared_events"
    verbose_name = "Events (outbox and inbox)"
    default_auto_field = "django.db.models.BigAutoField"
