"""What `make run` prints: the demo logins and a command that works as printed."""

from __future__ import annotations

from inbox.devserver import _banner

LOGINS = [("admin", "camille@coccinelle.test", "coccinelle-demo")]


def test_the_simulate_command_carries_the_public_url_when_it_is_not_the_default(capsys):
    # The simulated provider signs the public URL: without it, another shell's command would sign
    # http://127.0.0.1:5000 and get a 403 from a server on another port.
    _banner("http://127.0.0.1:5077", "Demo workspace created.", LOGINS, embedded_redis=True, sandbox=True)
    printed = capsys.readouterr().out
    assert "PUBLIC_BASE_URL=http://127.0.0.1:5077 .venv/bin/flask --app wsgi simulate inbound" in printed
    assert "camille@coccinelle.test" in printed

    _banner("http://127.0.0.1:5000", "Demo workspace created.", LOGINS, embedded_redis=True, sandbox=True)
    assert "Try: .venv/bin/flask --app wsgi simulate inbound" in capsys.readouterr().out
