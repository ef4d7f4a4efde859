"""gunicorn settings of this service's web process: the shared ones (shared_events.gunicorn_config), WSGI.

The image's command is ``gunicorn --config gunicorn.conf.py``, run in this folder.
"""

from shared_events.gunicorn_config import *  # noqa: F403 - gunicorn reads the settings from this module

wsgi_app = "config.wsgi"
