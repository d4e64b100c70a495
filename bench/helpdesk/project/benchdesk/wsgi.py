"""WSGI entry for gunicorn: `gunicorn benchdesk.wsgi:application` from bench/helpdesk/project/."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchdesk.settings")
application = get_wsgi_application()
