#!/usr/bin/env python
"""django-helpdesk's side of bench/helpdesk.py: run with bench/helpdesk/.venv/bin/python."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchdesk.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
