from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications import stream_access
        from shared_events.django.auth import credentials_revoked

        # Logout everywhere or a new password: the user's live-feed tickets and open streams end too.
        credentials_revoked.connect(
            stream_access.revoke_streams_with_credentials, dispatch_uid="notifications.revoke_streams"
        )
