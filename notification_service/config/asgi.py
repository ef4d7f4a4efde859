import os

from django.core.asgi import get_asgi_application

from shared_events.django.runtime import settle_garbage_collector

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()
settle_garbage_collector()
