from django.apps import AppConfig


class SharedEventsConfig(AppConfig):
    name = "shared_events.django"
    label = "shared_events"
    verbose_name = "Events (outbox and inbox)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_save

        from shared_events.django import auth, openapi  # noqa: F401 - registers the token scheme's schema

        post_save.connect(
            auth.revoke_tokens_on_password_change,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="shared_events.revoke_tokens_on_password_change",
        )
