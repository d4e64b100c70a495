"""WSGI entry point: `gunicorn wsgi:app`."""

from inbox import create_app

app = create_app()
