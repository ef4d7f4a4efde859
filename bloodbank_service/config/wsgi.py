import os

from django.core.wsgi import get_wsgi_application

from shared_events.django.runtime import settle_garbage_collector

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
settle_garbage_collector()
