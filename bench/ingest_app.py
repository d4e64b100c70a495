"""What gunicorn serves in bench/ingest.py: the real app, plus a bare Flask "hello" on one path,
in the same worker processes, so both rates come from the same server in the same run."""

from __future__ import annotations

from flask import Flask

from inbox import create_app

HELLO_PATH = "/__bench/hello"

app = create_app()
hello = Flask("hello")


@hello.get(HELLO_PATH)
def say_hello():
    return "hello"


def application(environ, start_response):
    if environ.get("PATH_INFO") == HELLO_PATH:
        return hello.wsgi_app(environ, start_response)
    return app.wsgi_app(environ, start_response)
