from django.db import models


class Effect(models.Model):
    """What a test handler did: one row per handled event."""

    event_id = models.UUIDField()
    event_type = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject}"
