"""gunicorn settings of this service's web process: the shared ones (shared_events.gunicorn_config), ASGI.

The image's command is ``gunicorn --config gunicorn.conf.py``, run in this folder. Uvicorn
workers serve ASGI, for the Server-Sent Events feed; open streams must not hold a stop for
long, so a stopping worker gets 5 seconds unless ``GUNICORN_GRACEFUL_TIMEOUT`` says otherwise.
"""

import os

from shared_events.gunicorn_config import *  # noqa: F403 - gunicorn reads the settings from this module

wsgi_app = "config.asgi:application"
worker_class = "uvicorn_worker.UvicornWorker"
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 5)
