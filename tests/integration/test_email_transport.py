"""Email over real protocols on 127.0.0.1: smtplib → the sandbox SMTP server, imaplib ← the
sandbox IMAP server. No Flask app, no database: the adapter's transport alone."""

from __future__ import annotations

import socket
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from inbox.channels.base import ChannelConfig, OutboundAttachment, OutboundMessage
from inbox.channels.email import (
    EmailChannel, fetch_unseen, make_reply_token, mark_seen, parse_bounce, plus_token, read_reply_token,
    reply_address,
)
from inbox.errors import ChannelError, PermanentDeliveryError, TransientDeliveryError
from inbox.kinds import ChannelKind, DeliveryStatus, Provider
from inbox.sandbox.imap import FakeImap
from inbox.sandbox.smtp import FakeSmtp, self_signed_certificate, server_tls_context

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"
ADDRESS = "support@coccinelle.test"
SECRET = "test-reply-secret"
SMTP_USER, SMTP_PASSWORD = "support@coccinelle.test", "smtp-password-0001"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    return cert, server_tls_context(cert, key)


@pytest.fixture
def smtp(tls):
    """A submission server: STARTTLS required, then AUTH required (like port 587)."""
    server = FakeSmtp(username=SMTP_USER, password=SMTP_PASSWORD, tls_context=tls[1], require_tls=True).start()
    yield server
    server.stop()


@pytest.fixture
def imap():
    server = FakeImap().start()
    yield server
    server.stop()


def channel(smtp_server: FakeSmtp | None = None, *, ca_file=None, **overrides) -> EmailChannel:
    credentials = {"reply_token_secret": SECRET, "smtp_security": "starttls",
                   "smtp_username": SMTP_USER, "smtp_password": SMTP_PASSWORD, "smtp_timeout": "3"}
    if smtp_server is not None:
        credentials.update(smtp_host="127.0.0.1", smtp_port=str(smtp_server.address[1]))
    if ca_file:
        credentials["tls_ca_file"] = str(ca_file)
    credentials.update(overrides)
    return EmailChannel(ChannelConfig(
        kind=ChannelKind.EMAIL, provider=Provider.SMTP, address=ADDRESS, credentials=credentials,
        settings={"display_name": "Service client Coccinelle", "signature": "L'équipe Coccinelle",
                  "inbound": "imap"}))


def imap_config(server: FakeImap, **overrides) -> ChannelConfig:
    credentials = {"imap_host": "127.0.0.1", "imap_port": str(server.address[1]), "imap_security": "none",
                   "imap_username": server.username, "imap_password": server.password, "imap_timeout": "3"}
    credentials.update(overrides)
    return ChannelConfig(kind=ChannelKind.EMAIL, provider=Provider.SMTP, address=ADDRESS,
                         credentials=credentials, settings={"inbound": "imap"})


def reply(**kw) -> OutboundMessage:
    defaults = dict(
        to="elodie.martin@exemple.fr", subject="Re: Commande n°4521 pas reçue",
        body="Bonjour Élodie,\n\nVotre colis a été retrouvé ; il arrive demain.\n.Une ligne qui commence par un point.",
        attachments=(OutboundAttachment("bon de livraison.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n"),),
        meta={"in_reply_to": "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>",
              "references": ["<176216172300.1201.5514729102345@coccinelle.test>"], "conversation_id": 42})
    defaults.update(kw)
    return OutboundMessage(**defaults)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- sending -----------------------------------------------------------------------------------------
def test_agent_reply_goes_out_over_starttls_threaded_with_both_parts_signature_and_attachment(smtp, tls):
    receipt = channel(smtp, ca_file=tls[0]).send(reply())

    [mail] = smtp.wait_for(1)
    assert mail.tls and mail.auth_user == SMTP_USER and mail.helo == "coccinelle.test"
    assert (mail.mail_from, mail.rcpt_tos) == (ADDRESS, ("elodie.martin@exemple.fr",))
    msg = mail.message
    assert receipt.status == DeliveryStatus.SENT
    assert receipt.provider_message_id == msg["Message-ID"] and msg["Message-ID"].endswith("@coccinelle.test>")
    assert msg["In-Reply-To"] == "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>"
    assert msg["References"].split() == ["<176216172300.1201.5514729102345@coccinelle.test>",
                                         "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>"]
    assert str(msg["From"]) == "Service client Coccinelle <support@coccinelle.test>"
    assert msg["Subject"] == "Re: Commande n°4521 pas reçue" and msg["Date"]
    token = plus_token([msg["Reply-To"].addresses[0].addr_spec], ADDRESS)
    assert read_reply_token(token, SECRET) == 42

    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    assert text.startswith("Bonjour Élodie,\n\nVotre colis a été retrouvé")
    assert "\n.Une ligne qui commence par un point." in text  # dot-stuffing undone by the server
    assert text.rstrip().endswith("-- \nL'équipe Coccinelle")
    assert "<p>Bonjour Élodie,</p>" in html and "signature" in html
    [pdf] = list(msg.iter_attachments())
    assert pdf.get_filename() == "bon de livraison.pdf" and pdf.get_content() == b"%PDF-1.4\n%%EOF\n"


def test_implicit_tls_smtps(tls):
    with FakeSmtp(username=SMTP_USER, password=SMTP_PASSWORD, tls_context=tls[1], implicit_tls=True) as server:
        channel(server, ca_file=tls[0], smtp_security="tls").send(reply(attachments=()))
        [mail] = server.wait_for(1)
        assert mail.tls and mail.auth_user == SMTP_USER


def test_sandbox_url_override_sends_in_clear_without_login():
    with FakeSmtp() as server:
        adapter = EmailChannel(ChannelConfig(kind=ChannelKind.EMAIL, provider=Provider.SMTP, address=ADDRESS,
                                             credentials={"smtp_host": "smtp.unreachable.invalid"},
                                             api_base_url=server.url))
        adapter.send(reply(attachments=(), meta={}))
        [mail] = server.wait_for(1)
        assert not mail.tls and mail.auth_user is None and "In-Reply-To" not in mail.message


def test_451_is_transient_and_the_retry_goes_through(smtp, tls):
    smtp.fail_next(451, "4.7.1 Greylisted, please try again later")
    adapter = channel(smtp, ca_file=tls[0])
    with pytest.raises(TransientDeliveryError, match="451 4.7.1 Greylisted"):
        adapter.send(reply())
    assert smtp.messages == []
    adapter.send(reply())
    assert len(smtp.wait_for(1)) == 1


def test_550_mailbox_unavailable_is_permanent_with_the_servers_words(smtp, tls):
    smtp.fail_next(550, "5.1.1 <elodie.martin@exemple.fr>: Recipient address rejected: User unknown", stage="rcpt")
    with pytest.raises(PermanentDeliveryError) as error:
        channel(smtp, ca_file=tls[0]).send(reply())
    assert error.value.code == "550"
    assert "5.1.1 <elodie.martin@exemple.fr>: Recipient address rejected: User unknown" in error.value.message
    assert smtp.messages == []


def test_554_after_data_is_permanent(smtp, tls):
    smtp.fail_next(554, "5.7.1 Message rejected as spam", stage="data")
    with pytest.raises(PermanentDeliveryError, match="spam"):
        channel(smtp, ca_file=tls[0]).send(reply())


def test_wrong_smtp_password_is_permanent(smtp, tls):
    with pytest.raises(PermanentDeliveryError) as error:
        channel(smtp, ca_file=tls[0], smtp_password="wrong").send(reply())
    assert error.value.code == "535"


def test_connection_refused_is_transient():
    adapter = channel(smtp_host="127.0.0.1", smtp_port=str(unused_port()), smtp_security="none")
    with pytest.raises(TransientDeliveryError, match="could not talk"):
        adapter.send(reply())


def test_silent_server_before_data_is_transient(smtp, tls):
    smtp.stall_next("greeting", 3)
    start = time.monotonic()
    with pytest.raises(TransientDeliveryError):
        channel(smtp, ca_file=tls[0], smtp_timeout="0.3").send(reply())
    assert time.monotonic() - start < 2


def test_no_answer_after_data_is_permanent_because_the_mail_may_be_sent(smtp, tls):
    smtp.stall_next("data", 3)
    with pytest.raises(PermanentDeliveryError, match="may have been sent") as error:
        channel(smtp, ca_file=tls[0], smtp_timeout="0.5").send(reply())
    assert error.value.code == "timeout"


def test_untrusted_certificate_is_permanent(smtp):
    with pytest.raises(PermanentDeliveryError, match="certificate") as error:
        channel(smtp).send(reply())  # no tls_ca_file: the self-signed sandbox is not trusted
    assert error.value.code == "tls"


def test_starttls_required_but_not_offered_is_permanent():
    with FakeSmtp() as server:
        with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
            channel(server).send(reply())
        assert server.messages == []


# -- receiving over IMAP -----------------------------------------------------------------------------
def test_fetch_unseen_reports_uidvalidity_and_marks_nothing(imap):
    plain = (FIXTURES / "plain_fr.eml").read_bytes()
    first = imap.deliver(plain)
    imap.deliver((FIXTURES / "auto_reply.eml").read_bytes(), flags=(r"\Seen",))
    third = imap.deliver((FIXTURES / "reply_gmail_fr.eml").read_bytes())
    config = imap_config(imap)

    fetched = fetch_unseen(config)
    assert [(v, uid) for v, uid, _ in fetched] == [(imap.mailbox().uidvalidity, first), (imap.mailbox().uidvalidity, third)]
    assert fetched[0][2] == plain
    assert not imap.is_seen(first) and not imap.is_seen(third)
    assert fetch_unseen(config) == fetched  # nothing was marked: a crash before commit loses nothing
    assert "EXAMINE INBOX" in imap.commands and any("BODY.PEEK[]" in c for c in imap.commands)


def test_mark_seen_only_when_asked_and_only_what_was_committed(imap):
    uids = [imap.deliver((FIXTURES / name).read_bytes()) for name in ("plain_fr.eml", "reply_outlook_en.eml")]
    config = imap_config(imap)
    [(uidvalidity, uid, _), _second] = fetch_unseen(config)
    mark_seen(config, [uid], uidvalidity=uidvalidity)
    assert imap.is_seen(uids[0]) and not imap.is_seen(uids[1])
    assert [u for _, u, _ in fetch_unseen(config)] == [uids[1]]


def test_mark_seen_refuses_after_the_mailbox_was_renumbered(imap):
    imap.deliver((FIXTURES / "plain_fr.eml").read_bytes())
    config = imap_config(imap)
    [(old_validity, uid, _)] = fetch_unseen(config)
    new_validity = imap.renumber()
    with pytest.raises(ChannelError, match="UIDVALIDITY"):
        mark_seen(config, [uid], uidvalidity=old_validity)
    [(validity, _, _)] = fetch_unseen(config)
    assert validity == new_validity != old_validity


def test_fetch_limit_takes_the_oldest_first(imap):
    for i in range(5):
        imap.deliver(f"From: a@example.org\nMessage-ID: <{i}@example.org>\n\nmessage {i}\n".encode())
    assert [uid for _, uid, _ in fetch_unseen(imap_config(imap), limit=2)] == [1, 2]


def test_fetched_mail_parses_with_its_imap_key(imap):
    imap.deliver((FIXTURES / "bounce.eml").read_bytes())
    adapter = EmailChannel(imap_config(imap))
    [(uidvalidity, uid, raw)] = fetch_unseen(adapter.config)
    message = adapter.parse_imap(uidvalidity, uid, raw)
    assert message.meta["replay_key"] == f"imap:INBOX:{uidvalidity}:{uid}"
    assert message.automated and message.meta["bounce"]["original_message_id"].endswith("@coccinelle.test>")


def test_wrong_imap_password_is_a_channel_error(imap):
    with pytest.raises(ChannelError, match="IMAP login failed"):
        fetch_unseen(imap_config(imap, imap_password="wrong"))


def test_unreachable_imap_server_is_a_channel_error():
    with pytest.raises(ChannelError, match="could not reach"):
        fetch_unseen(ChannelConfig(kind=ChannelKind.EMAIL, provider=Provider.SMTP, address=ADDRESS,
                                   credentials={"imap_host": "127.0.0.1", "imap_port": str(unused_port()),
                                                "imap_security": "none", "imap_password": "x"}))


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_imap_over_tls(tls, security):
    with FakeImap(tls_context=tls[1], implicit_tls=security == "tls") as server:
        server.deliver((FIXTURES / "plain_fr.eml").read_bytes())
        config = imap_config(server, imap_security=security, tls_ca_file=str(tls[0]))
        [(uidvalidity, uid, _)] = fetch_unseen(config)
        mark_seen(config, [uid], uidvalidity=uidvalidity)
        assert server.is_seen(uid)


def test_imap_rfc822_fetch_marks_seen_like_a_real_server(imap):
    """The sandbox behaves as RFC 3501 says, which is why fetch_unseen must PEEK."""
    import imaplib
    uid = imap.deliver(b"From: a@example.org\n\nhi\n")
    conn = imaplib.IMAP4(*imap.address, timeout=3)
    try:
        conn.login(imap.username, imap.password)
        conn.select("INBOX")
        typ, data = conn.uid("FETCH", str(uid), "(RFC822)")
        assert typ == "OK" and data[0][1] == b"From: a@example.org\n\nhi\n"
        assert imap.is_seen(uid)
        typ, data = conn.uid("STORE", str(uid), "-FLAGS", r"(\Seen)")
        assert typ == "OK" and not imap.is_seen(uid)
        typ, data = conn.search(None, "ALL")
        assert data == [b"1"]
        assert conn.noop()[0] == "OK"
    finally:
        conn.logout()


# -- round trip ----------------------------------------------------------------------------------------
def test_our_reply_the_customers_answer_and_a_bounce_all_thread_back(smtp, tls, imap):
    """Send a reply, let the customer answer it through IMAP, then bounce another one."""
    adapter = channel(smtp, ca_file=tls[0], imap_host="127.0.0.1", imap_port=str(imap.address[1]),
                      imap_security="none", imap_username=imap.username, imap_password=imap.password)
    ours = adapter.send(reply(attachments=()))
    sent = smtp.wait_for(1)[0].message
    token = make_reply_token(42, SECRET)

    customer = (
        f"From: Élodie Martin <elodie.martin@exemple.fr>\nTo: {reply_address(ADDRESS, token)}\n"
        f"Subject: Re: Commande\nMessage-ID: <answer-1@exemple.fr>\nIn-Reply-To: {ours.provider_message_id}\n"
        f"References: {sent['References']} {ours.provider_message_id}\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"Parfait, merci !\n\nLe lun. 3 nov. 2025 à 10:02, Service client <{ADDRESS}> a écrit :\n> Bonjour\n"
    ).encode()
    bounce = (FIXTURES / "bounce.eml").read_bytes().replace(
        b"<176216052711.1201.4402190388123@coccinelle.test>", ours.provider_message_id.encode())
    imap.deliver(customer)
    imap.deliver(bounce)

    fetched = fetch_unseen(adapter.config)
    answer, returned = (adapter.parse_imap(*item) for item in fetched)
    assert answer.body == "Parfait, merci !" and answer.meta["reply_conversation_id"] == 42
    assert answer.meta["in_reply_to"] == ours.provider_message_id
    assert answer.meta["references"][-1] == ours.provider_message_id
    assert returned.automated and parse_bounce(fetched[1][2])[0] == ours.provider_message_id
    mark_seen(adapter.config, [uid for _, uid, _ in fetched], uidvalidity=fetched[0][0])
    assert fetch_unseen(adapter.config) == []
    parsed = BytesParser(policy=policy.default).parsebytes(fetched[0][2])
    assert parsed["Message-ID"] == "<answer-1@exemple.fr>"
