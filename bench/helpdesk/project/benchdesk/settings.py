"""A minimal Django project serving django-helpdesk for the side-by-side bench (bench/helpdesk.py).

INSTALLED_APPS and HELPDESK_* as django-helpdesk's installation and configuration documents say,
teams mode off (its documented switch: no pinax-teams), REST API on, DEBUG off. The SQLite file
lives in bench/data/ (gitignored), next to Coccinelle's bench workspace.
"""

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DATA = PROJECT.parent.parent / "data"

SECRET_KEY = os.environ.get("HELPDESK_BENCH_SECRET_KEY", "bench-secret-key-not-for-production")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",  # domain for links in e-mails
    "django.contrib.humanize",  # elapsed times
    "rest_framework",  # the API
    "helpdesk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "benchdesk.urls"
WSGI_APPLICATION = "benchdesk.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.debug",
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("HELPDESK_BENCH_DB", str(DATA / "bench-helpdesk.db")),
}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SITE_ID = 1

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_ROOT = str(DATA / "helpdesk-media")
MEDIA_URL = "/media/"

LOGIN_URL = "helpdesk:login"
LOGIN_REDIRECT_URL = "helpdesk:home"
# No mail leaves the bench: messages are built as in production, then dropped.
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
DEFAULT_FROM_EMAIL = "helpdesk@bench.test"

# django-helpdesk (docs/configuration.rst, docs/teams.rst)
HELPDESK_TEAMS_MODE_ENABLED = False
HELPDESK_API_ENABLED = True
HELPDESK_KB_ENABLED = True
HELPDESK_PUBLIC_ENABLED = True
HELPDESK_REDIRECT_TO_LOGIN_BY_DEFAULT = True
HELPDESK_DEFAULT_SETTINGS = {
    "use_email_as_submitter": True,
    "email_on_ticket_assign": True,
    "email_on_ticket_change": True,
    "login_view_ticketlist": True,
    "email_on_ticket_apichange": True,
    "preset_replies": True,
    "tickets_per_page": 25,
}

LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
