"""The mail interface: the console and SMTP backends pass the same checks (Warehouse style)."""

from __future__ import annotations

import socketserver
import threading

import pytest

from inbox.errors import PermanentDeliveryError, TransientDeliveryError
from inbox.mailer import ConsoleMailer, Email, SmtpMailer, build_mailer


class FakeSmtp(socketserver.ThreadingTCPServer):
    """Just enough SMTP for a conformance test: records each DATA block."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, refuse: set[str] = frozenset()):
        self.received: list[str] = []
        self.refuse = refuse
        super().__init__(("127.0.0.1", 0), _SmtpHandler)


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self):
        def say(line: str):
            self.wfile.write((line + "\r\n").encode())

        say("220 fake ESMTP")
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line.split(" ")[0].upper()
            if verb == "EHLO":
                say("250-fake")
                say("250 8BITMIME")
            elif verb == "RCPT":
                address = line.split(":", 1)[1].strip("<> ")
                say("550 no such user" if address in self.server.refuse else "250 ok")
            elif verb == "DATA":
                say("354 go on")
                lines = []
                while (data := self.rfile.readline().decode()) not in (".\r\n", ""):
                    lines.append(data)
                self.server.received.append("".join(lines))
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")


@pytest.fixture
def smtp_server():
    server = FakeSmtp(refuse={"nobody@example.test"})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["console", "smtp"])
def mailer(request, smtp_server):
    if request.param == "console":
        return ConsoleMailer("Coccinelle <no-reply@example.test>")
    host, port = smtp_server.server_address
    return build_mailer(f"smtp://{host}:{port}?starttls=false", "Coccinelle <no-reply@example.test>")


def delivered(mailer, smtp_server) -> list[str]:
    if isinstance(mailer, ConsoleMailer):
        return [f"{m.subject}\n{m.body}" for m in mailer.sent]
    return smtp_server.received


def test_every_backend_sends_a_message(mailer, smtp_server):
    message_id = mailer.send(Email(to="agent@example.test", subject="TKT-000001 vous est assigné",
                                   body="Bonjour,\nUn ticket vous attend."))
    assert message_id.startswith("<") and message_id.endswith(">")
    [text] = delivered(mailer, smtp_server)
    assert "TKT-000001" in text and "Un ticket vous attend." in text


def test_every_backend_refuses_a_malformed_recipient(mailer):
    with pytest.raises(PermanentDeliveryError):
        mailer.send(Email(to="not-an-address", subject="x", body="x"))
    with pytest.raises(PermanentDeliveryError):
        mailer.send(Email(to="a@example.test\nBcc: b@example.test", subject="x", body="x"))


def test_smtp_sorts_refusals_from_outages(smtp_server):
    host, port = smtp_server.server_address
    with pytest.raises(PermanentDeliveryError):
        SmtpMailer(f"smtp://{host}:{port}?starttls=false", "x@example.test").send(
            Email(to="nobody@example.test", subject="x", body="x"))
    with pytest.raises(TransientDeliveryError):
        SmtpMailer("smtp://127.0.0.1:1", "x@example.test", timeout=2).send(Email(to="a@example.test", subject="x", body="x"))


def test_mail_url_chooses_the_backend_and_never_shows_the_password():
    assert isinstance(build_mailer(None, "x@example.test"), ConsoleMailer)
    smtp = build_mailer("smtps://user:s3cr%40t@mail.example.test", "x@example.test")
    assert isinstance(smtp, SmtpMailer) and smtp.port == 465 and smtp.tls and smtp.password == "s3cr@t"
    assert "s3cr" not in repr(smtp)
