"""The email adapter alone: MIME parsing of captured-style fixtures, HTML sanitizing, quote
stripping, reply tokens, automated-mail and bounce detection, webhook authentication."""

from __future__ import annotations

import json
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from inbox.channels.base import ChannelConfig, OutboundAttachment, OutboundMessage, WebhookRequest
from inbox.channels.email import (
    EmailChannel, build_references, html_to_text, make_reply_token, parse_bounce, parse_raw, plus_token,
    read_reply_token, reply_address, reply_subject, safe_filename, sanitize_html, strip_quoted, text_to_html,
    verify_mailgun_signature,
)
from inbox.errors import InvalidSignature, MalformedPayload, PermanentDeliveryError
from inbox.kinds import ChannelKind, Provider
from inbox.sandbox.smtp import encode_multipart, mailgun_mime_form, mailgun_signature, sendgrid_raw_form

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"
ADDRESS = "support@coccinelle.test"
REPLY_SECRET = "test-reply-secret"
MAILGUN_KEY = "key-mailgun-signing-0001"
SENDGRID_TOKEN = "sg-url-token-0001"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parsed(name: str, **kw):
    return parse_raw(raw(name), our_address=ADDRESS, reply_secret=REPLY_SECRET, **kw)


def adapter(inbound: str = "sendgrid", **credentials) -> EmailChannel:
    creds = {"reply_token_secret": REPLY_SECRET, **credentials}
    return EmailChannel(ChannelConfig(
        kind=ChannelKind.EMAIL, provider=Provider.SMTP, address=ADDRESS, credentials=creds,
        settings={"inbound": inbound, "display_name": "Service client Coccinelle",
                  "signature": "L'équipe Coccinelle\nhttps://coccinelle.test/aide"}))


def posted(fields_or_body, *, content_type: str | None = None, query: str = "",
           headers: dict | None = None) -> WebhookRequest:
    """A WebhookRequest built the way blueprints/webhooks.py builds it from a real HTTP post."""
    if isinstance(fields_or_body, dict):
        body, content_type = encode_multipart(fields_or_body)
    else:
        body = fields_or_body
    environ = EnvironBuilder(method="POST", path="/webhooks/smtp/email/abc", query_string=query,
                             data=body, content_type=content_type, headers=headers or {}).get_environ()
    request = Request(environ)
    data = request.get_data(cache=True)
    return WebhookRequest(url="https://support.example.test/webhooks/smtp/email/abc" + (f"?{query}" if query else ""),
                          headers=request.headers, form=request.form, body=data, query=request.args)


def message(headers: str, body: str = "Bonjour") -> bytes:
    return (headers.strip() + "\nMessage-ID: <m1@example.org>\n\n" + body + "\n").encode()


# -- parsing the fixtures ---------------------------------------------------------------------------
def test_plain_french_email_keeps_accents_and_loses_its_signature():
    m = parsed("plain_fr.eml")
    assert m.provider_message_id == "<8f2c1d3e-5b7a-4c1e-9a0d-2f6b8e1c4d5a@exemple.fr>"
    assert m.sender == "elodie.martin@exemple.fr"  # lower-cased
    assert m.sender_name == "Élodie Martin" and m.recipient == ADDRESS
    assert m.subject == "Commande n°4521 pas reçue"
    assert m.sent_at.isoformat() == "2025-11-03T08:41:02+00:00"
    assert "je ne l'ai toujours pas reçue. Le suivi indique « en cours d'acheminement »" in m.body  # un-flowed
    assert m.body.endswith("Merci d'avance.") and "06 12 34" not in m.body
    assert m.meta["full_text"].endswith("-- \nÉlodie Martin\n06 12 34 56 78")
    assert m.html is None and m.media == () and m.automated is False
    assert m.meta["in_reply_to"] is None and m.meta["references"] == [] and m.meta["reply_token"] is None


def test_html_email_with_inline_image_tracking_pixel_and_script():
    m = parsed("html_cid_tracking.eml")
    assert m.body.startswith("Bonjour,\n\nVoici la photo du colis abîmé")  # text/plain preferred
    [photo] = m.media
    assert (photo.filename, photo.content_type, photo.content_id) == (
        "colis.png", "image/png", "colis-photo.png@boutique-exemple.fr")
    assert photo.content.startswith(b"\x89PNG") and photo.url is None
    assert "<script>" in m.html  # raw: the orchestrator sanitizes before storing

    clean = sanitize_html(m.html, {photo.content_id: "/attachments/7"})
    assert "script" not in clean and "alert" not in clean and "cookie" not in clean
    assert "onload" not in clean and "onclick" not in clean and "javascript:" not in clean
    assert "track.example.net" not in clean  # neither the pixel nor the CSS background beacon
    assert '<img src="/attachments/7" alt="Colis abîmé" width="320">' in clean
    assert 'href="https://boutique-exemple.fr/suivi?c=4521"' in clean
    assert 'rel="noopener noreferrer nofollow"' in clean
    assert "color:#333" in clean and "position" not in clean


def test_gmail_reply_in_french_keeps_only_the_new_text_and_its_threading():
    m = parsed("reply_gmail_fr.eml")
    assert m.body == "Merci beaucoup, je l'ai bien reçue ce matin !\n\nÉlodie"
    assert "a écrit :" in m.meta["full_text"] and "> Votre colis" in m.meta["full_text"]
    assert m.meta["message_id"] == "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>"
    assert m.meta["in_reply_to"] == "<176216295541.1201.8812736450091@coccinelle.test>"
    assert m.meta["references"] == ["<176216172300.1201.5514729102345@coccinelle.test>",
                                     "<176216295541.1201.8812736450091@coccinelle.test>"]
    assert m.meta["reply_token"] == "16-jj5usmavqvkmyomc"
    assert m.meta["reply_conversation_id"] == 42
    assert m.subject == "Re: Commande n°4521 pas reçue"


def test_gmail_reply_html_only_is_stripped_too():
    raw_html = raw("reply_gmail_fr.eml").decode()
    html_part = raw_html.split('Content-Type: text/html; charset="UTF-8"')[1].split("\n--0000")[0]
    rebuilt = ("From: elodie.martin@gmail.com\nTo: support@coccinelle.test\nMessage-ID: <h@gmail.com>\n"
               "MIME-Version: 1.0\nContent-Type: text/html; charset=\"UTF-8\"" + html_part).encode()
    m = parse_raw(rebuilt, our_address=ADDRESS)
    assert m.body == "Merci beaucoup, je l'ai bien reçue ce matin !\n\nÉlodie"
    assert "> Votre colis n°4521 a été retrouvé" in m.meta["full_text"]


def test_reply_token_read_with_another_secret_names_no_conversation():
    m = parse_raw(raw("reply_gmail_fr.eml"), our_address=ADDRESS, reply_secret="another-secret")
    assert m.meta["reply_token"] == "16-jj5usmavqvkmyomc" and m.meta["reply_conversation_id"] is None


def test_outlook_reply_in_english_drops_the_original_message():
    m = parsed("reply_outlook_en.eml")
    assert m.body == "Thanks, that solved it. The corrected invoice is fine.\n\nBest regards,\nJohn"
    assert "-----Original Message-----" in m.meta["full_text"]
    assert m.sender == "john.smith@contoso.example"
    assert m.meta["in_reply_to"] == "<176218001200.4410.901233@coccinelle.test>"


def test_auto_reply_is_automated():
    m = parsed("auto_reply.eml")
    assert m.automated is True and m.meta["automated_reason"] == "Auto-Submitted: auto-replied"
    assert m.subject == "Réponse automatique : Votre demande n°118"


def test_bounce_names_the_message_we_sent_and_why():
    m = parsed("bounce.eml")
    assert m.automated is True and m.sender == "mailer-daemon@mx.coccinelle.test"
    assert m.media == ()  # the returned copy of our own mail is not an attachment
    assert m.meta["bounce"] == {
        "original_message_id": "<176216052711.1201.4402190388123@coccinelle.test>",
        "reason": "550 5.1.1 <nobody@exemple.fr>: Recipient address rejected: User unknown in virtual mailbox table",
        "status": "5.1.1", "recipient": "nobody@exemple.fr"}
    assert parse_bounce(raw("bounce.eml")) == (
        "<176216052711.1201.4402190388123@coccinelle.test>",
        "550 5.1.1 <nobody@exemple.fr>: Recipient address rejected: User unknown in virtual mailbox table")


def test_delay_notices_and_ordinary_mail_are_not_bounces():
    delayed = raw("bounce.eml").replace(b"Action: failed", b"Action: delayed").replace(b"Status: 5.1.1", b"Status: 4.4.1")
    assert parse_bounce(delayed) is None
    assert parse_bounce(raw("plain_fr.eml")) is None
    assert "bounce" not in parsed("plain_fr.eml").meta


def test_bounce_with_only_the_returned_headers():
    text = raw("bounce.eml").replace(b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers")
    assert parse_bounce(text)[0] == "<176216052711.1201.4402190388123@coccinelle.test>"


def test_attachment_named_like_a_path_cannot_escape():
    m = parsed("attachment_traversal.eml")
    [pdf] = m.media
    assert pdf.filename == "passwd.pdf" and pdf.content_type == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4") and pdf.content_id is None
    assert m.body == "Bonjour, je conteste la facture ci-jointe.\n\nMarc"


@pytest.mark.parametrize("name, content_type, expected", [
    ("../../etc/passwd.pdf", None, "passwd.pdf"),
    ("..\\..\\Windows\\System32\\evil.exe", None, "evil.exe"),
    ("/etc/shadow", None, "shadow"),
    ("..", "application/pdf", "attachment.pdf"),
    ("", "image/png", "attachment.png"),
    (None, None, "attachment.bin"),
    (".htaccess", None, "htaccess"),
    ("CON.txt", None, "_CON.txt"),
    ("facture été 2025.pdf", None, "facture été 2025.pdf"),
    ("a\x00b\r\nc;rm -rf *.pdf", None, "a_b_c_rm -rf _.pdf"),
    ("photo\u202egpj.exe", None, "photo_gpj.exe"),  # right-to-left override
])
def test_safe_filenames(name, content_type, expected):
    assert safe_filename(name, content_type) == expected


def test_long_filenames_are_cut_but_keep_their_extension():
    name = safe_filename("x" * 400 + ".pdf")
    assert len(name) == 150 and name.endswith(".pdf")


def test_rfc2231_and_encoded_word_filenames_are_decoded():
    mime = (b"From: a@example.org\nMessage-ID: <f@example.org>\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nvoir PJ\n--B\n"
            b"Content-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''re%C3%A7u%20n%C2%B01.pdf\n"
            b"Content-Transfer-Encoding: base64\n\nJVBERi0=\n--B\n"
            b"Content-Type: application/pdf; name=\"=?UTF-8?B?ZmFjdHVyZSDDqXTDqS5wZGY=?=\"\n"
            b"Content-Disposition: attachment; filename=\"=?UTF-8?B?ZmFjdHVyZSDDqXTDqS5wZGY=?=\"\n"
            b"Content-Transfer-Encoding: base64\n\nJVBERi0=\n--B--\n")
    m = parse_raw(mime)
    assert [a.filename for a in m.media] == ["reçu n°1.pdf", "facture été.pdf"]
    assert m.body == "voir PJ"


def test_forwarded_message_is_kept_whole_as_an_eml_attachment():
    inner = raw("plain_fr.eml")
    mime = (b"From: b@example.org\nMessage-ID: <fw@example.org>\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nVoir ci-dessous\n--B\n"
            b"Content-Type: message/rfc822\n\n" + inner + b"\n--B--\n")
    m = parse_raw(mime)
    [eml] = m.media
    assert eml.content_type == "message/rfc822" and eml.filename == "Commande n°4521 pas reçue.eml"
    assert b"Message-ID: <8f2c1d3e-5b7a-4c1e-9a0d-2f6b8e1c4d5a@exemple.fr>" in eml.content
    assert m.body == "Voir ci-dessous"


def test_html_only_mail_gets_a_text_body():
    mime = message("From: a@example.org\nContent-Type: text/html; charset=utf-8",
                   "<html><head><style>p{}</style></head><body><p>Bonjour&nbsp;!</p><p>Ligne<br>suivante</p>"
                   "<ul><li>un</li><li>deux</li></ul><script>x()</script></body></html>")
    m = parse_raw(mime)
    assert m.body == "Bonjour !\n\nLigne\nsuivante\n\n- un\n- deux"
    assert m.html.startswith("<html>")


def test_missing_message_id_gets_a_stable_hash():
    mime = b"From: a@example.org\nSubject: x\n\nhello\n"
    first, second = parse_raw(mime), parse_raw(mime)
    assert first.provider_message_id == second.provider_message_id
    assert first.provider_message_id.startswith("sha256:") and first.meta["message_id"] is None


def test_overlong_message_id_is_hashed_to_fit_the_column():
    long_id = "<" + "a" * 200 + "@example.org>"
    m = parse_raw(f"From: a@example.org\nMessage-ID: {long_id}\n\nhi\n".encode())
    assert len(m.provider_message_id) <= 128 and m.meta["message_id"] == long_id


@pytest.mark.parametrize("mime, reason", [
    (b"", "empty"),
    (b"Subject: no sender\nMessage-ID: <a@b>\n\nhello\n", "From is missing"),
])
def test_unusable_messages_say_why(mime, reason):
    with pytest.raises(MalformedPayload, match=reason):
        parse_raw(mime)


# -- automated mail ----------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    "From: a@example.org\nAuto-Submitted: auto-generated",
    "From: a@example.org\nPrecedence: bulk",
    "From: a@example.org\nPrecedence: list",
    "From: a@example.org\nPrecedence: junk",
    "From: a@example.org\nX-Autoreply: yes",
    "From: a@example.org\nX-Autorespond: vacation",
    "From: a@example.org\nList-Id: <annonces.example.org>",
    "From: Mail Delivery Subsystem <MAILER-DAEMON@example.org>",
    "From: postmaster@example.org",
    "From: a@example.org\nReturn-Path: <>",
])
def test_automated_mail_is_flagged(headers):
    m = parse_raw(message(headers))
    assert m.automated is True and m.meta["automated_reason"]


@pytest.mark.parametrize("headers", [
    "From: a@example.org",
    "From: a@example.org\nAuto-Submitted: no",
    "From: a@example.org\nPrecedence: normal",
    "From: daemon-fan@example.org",
])
def test_mail_from_people_is_not_automated(headers):
    m = parse_raw(message(headers))
    assert m.automated is False and "automated_reason" not in m.meta


# -- quoted history --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Merci !\n\nLe lun. 3 nov. 2025 à 10:02, Service client <support@coccinelle.test> a écrit :\n> Bonjour",
     "Merci !"),
    ("Merci !\n\nLe lun. 3 nov. 2025 à 10:02, Service client Coccinelle <\nsupport@coccinelle.test> a écrit :\n\n> Bonjour",
     "Merci !"),
    ("Merci !\n\nLe 3 nov. 2025 à 10:02, Service client <support@coccinelle.test> a\u00a0écrit\u00a0:\n\n> Bonjour",
     "Merci !"),
    ("Thanks!\n\nOn Mon, Nov 3, 2025 at 10:02 AM Coccinelle Support <support@coccinelle.test> wrote:\n> Hello",
     "Thanks!"),
    ("Thanks!\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nHello", "Thanks!"),
    ("Merci.\n\n-----Message d'origine-----\nDe : Support\nEnvoyé : lundi\n\nBonjour", "Merci."),
    ("Merci.\n\n________________________________\nDe : Service client <support@coccinelle.test>\n"
     "Envoyé : lundi 3 novembre 2025 10:02\nÀ : Élodie\nObjet : Re: Commande\n\nBonjour", "Merci."),
    ("Thanks.\n\nFrom: Coccinelle Support <support@coccinelle.test>\nSent: Monday, November 3, 2025 10:02 AM\n"
     "To: John\nSubject: Re: Invoice\n\nHello", "Thanks."),
    ("Ok pour moi.\n> ancienne ligne\n> autre", "Ok pour moi."),
    ("Ok pour moi.\n\n-- \nÉlodie Martin\n06 12 34 56 78", "Ok pour moi."),
    ("Ok pour moi.\n\n--\nÉlodie", "Ok pour moi."),
    ("C'est noté.\n\nEnvoyé de mon iPhone\n\n> Le 3 nov. 2025 à 10:02, X a écrit :", "C'est noté."),
    ("Got it.\n\nSent from my iPhone", "Got it."),
    ("Got it.\n\nGet Outlook for iOS", "Got it."),
    ("On Monday I wrote: the parcel is late.", "On Monday I wrote: the parcel is late."),
    ("Le colis est arrivé.\nDe : mon voisin, qui l'a gardé.", "Le colis est arrivé.\nDe : mon voisin, qui l'a gardé."),
])
def test_strip_quoted(text, expected):
    assert strip_quoted(text) == expected


def test_inline_answers_between_quotes_are_kept():
    text = ("On Mon, Nov 3, 2025 at 10:02 AM Support <support@coccinelle.test> wrote:\n"
            "> What is your order number?\n4521\n> And your postcode?\n75011\n")
    assert strip_quoted(text) == "4521\n75011"


def test_a_message_that_is_all_quote_is_left_alone():
    assert strip_quoted("> only a quote\n> nothing else") == "> only a quote\n> nothing else"


# -- HTML -------------------------------------------------------------------------------------------
def test_sanitize_blocks_remote_images_unless_allowed():
    html = '<p>Hi</p><img src="https://cdn.example/p.png" alt="logo"><img src="//cdn.example/x.gif">'
    assert "cdn.example" not in sanitize_html(html)
    assert 'src="/static/img/remote-blocked.svg"' in sanitize_html(html, blocked_image_src="/static/img/remote-blocked.svg")
    assert 'src="https://cdn.example/p.png"' in sanitize_html(html, allow_remote_images=True)


@pytest.mark.parametrize("html, forbidden", [
    ('<img src="cid:unknown@x">', "cid:"),
    ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', "data:"),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', "alert"),
    ('<a href="vbscript:msgbox">x</a>', "vbscript"),
    ('<svg onload="alert(1)"><circle/></svg>', "onload"),
    ('<iframe src="https://evil.example"></iframe>', "iframe"),
    ('<form action="https://evil.example"><input name="password"></form>', "form"),
    ('<div style="background:url(https://t.example/b.gif)">x</div>', "t.example"),
    ('<table background="https://t.example/bg.gif"><tr><td>x</td></tr></table>', "t.example"),
    ('<link rel="stylesheet" href="https://t.example/s.css">', "t.example"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "evil"),
    ('<!-- <script>alert(1)</script> -->', "script"),
])
def test_sanitize_removes_dangerous_content(html, forbidden):
    assert forbidden.lower() not in sanitize_html(html).lower()


def test_sanitize_maps_cid_case_and_brackets_insensitively():
    html = '<img src="cid:Logo@Acme"><a href="cid:doc@acme">pdf</a>'
    clean = sanitize_html(html, {"<logo@acme>": "/attachments/1", "doc@acme": "/attachments/2"})
    assert '<img src="/attachments/1">' in clean and 'href="/attachments/2"' in clean


def test_sanitize_refuses_unsafe_cid_targets():
    assert "javascript" not in sanitize_html('<img src="cid:a@b">', {"a@b": "javascript:alert(1)"})


def test_html_to_text_quotes_blockquotes():
    assert html_to_text("<p>Oui</p><blockquote><p>Question ?</p><blockquote>Avant</blockquote></blockquote>") == \
        "Oui\n\n> Question ?\n>\n> > Avant"


def test_text_to_html_escapes_and_links():
    html = text_to_html("Bonjour <script>\n\nVoir https://coccinelle.test/aide?a=1&b=2.")
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert '<a href="https://coccinelle.test/aide?a=1&amp;b=2">https://coccinelle.test/aide?a=1&amp;b=2</a>.' in html


# -- reply tokens -----------------------------------------------------------------------------------
def test_reply_token_round_trip_is_short_and_safe_in_an_address():
    token = make_reply_token(123456, REPLY_SECRET)
    assert len(token) <= 24 and all(c.isdigit() or c.islower() or c == "-" for c in token)
    assert read_reply_token(token, REPLY_SECRET) == 123456
    assert read_reply_token(token.upper(), REPLY_SECRET) == 123456  # some servers upper-case local parts
    assert read_reply_token(token, b"test-reply-secret") == 123456


@pytest.mark.parametrize("token", ["", "garbage", "16-jj5usmavqvkmyomd", "17-jj5usmavqvkmyomc",
                                   "16-jj5usmavqvkmyom", "16_jj5usmavqvkmyomc", None])
def test_forged_or_damaged_reply_tokens_name_nothing(token):
    assert read_reply_token(token, REPLY_SECRET) is None


def test_reply_token_needs_a_secret_and_an_id():
    with pytest.raises(ValueError):
        make_reply_token(1, "")
    with pytest.raises(ValueError):
        make_reply_token(-1, REPLY_SECRET)


def test_plus_addresses():
    token = make_reply_token(42, REPLY_SECRET)
    address = reply_address(ADDRESS, token)
    assert address == f"support+{token}@coccinelle.test"
    assert plus_token(["someone@else.test", address.upper()], ADDRESS) == token
    assert plus_token(["support+x@other.test", "supportx+y@coccinelle.test"], ADDRESS) is None


def test_envelope_recipient_carries_the_token_when_headers_do_not():
    token = make_reply_token(7, REPLY_SECRET)
    m = parse_raw(raw("plain_fr.eml"), our_address=ADDRESS, reply_secret=REPLY_SECRET,
                  envelope_to=[reply_address(ADDRESS, token)])
    assert m.meta["reply_token"] == token and m.meta["reply_conversation_id"] == 7


# -- Mailgun --------------------------------------------------------------------------------------
def mailgun_fields(**overrides) -> dict:
    fields = json.loads((FIXTURES / "mailgun_mime.json").read_text())
    fields.pop("_source")
    signed = mailgun_mime_form(fields["body-mime"].encode(), signing_key=MAILGUN_KEY,
                               recipient=fields["recipient"], sender=fields["sender"])
    fields.update({k: signed[k] for k in ("timestamp", "token", "signature")})
    fields.update(overrides)
    return fields


def test_mailgun_signed_route_is_accepted_and_parsed():
    channel = adapter("mailgun", mailgun_signing_key=MAILGUN_KEY)
    fields = mailgun_fields()
    request = posted(fields)
    channel.verify(request)
    [m] = channel.parse(request)
    assert m.sender == "john.smith@contoso.example"
    assert m.body == "Thanks, that solved it. The corrected invoice is fine.\n\nBest regards,\nJohn"
    assert m.meta["replay_key"] == f"mailgun:{fields['token']}" and m.meta["inbound"] == "mailgun"


def test_mailgun_urlencoded_post_works_too():
    channel = adapter("mailgun", mailgun_signing_key=MAILGUN_KEY)
    from urllib.parse import urlencode
    request = posted(urlencode(mailgun_fields()).encode(), content_type="application/x-www-form-urlencoded")
    channel.verify(request)
    assert channel.parse(request)[0].meta["message_id"].startswith("<DB9PR08MB6588")


@pytest.mark.parametrize("overrides", [
    {"signature": "0" * 64},
    {"token": "a-different-token-of-fifty-characters-0123456789abc"},
    {"signature": ""},
    {"timestamp": "not-a-number"},
])
def test_mailgun_bad_signatures_are_refused(overrides):
    with pytest.raises(InvalidSignature):
        adapter("mailgun", mailgun_signing_key=MAILGUN_KEY).verify(posted(mailgun_fields(**overrides)))


@pytest.mark.parametrize("age", [301, 3600, -400])
def test_mailgun_stale_or_future_timestamps_are_refused_even_when_signed(age):
    timestamp, token = str(int(time.time()) - age), "t" * 50
    fields = mailgun_fields(timestamp=timestamp, token=token,
                            signature=mailgun_signature(MAILGUN_KEY, timestamp, token))
    with pytest.raises(InvalidSignature, match="5 minutes"):
        adapter("mailgun", mailgun_signing_key=MAILGUN_KEY).verify(posted(fields))


def test_mailgun_without_a_configured_key_refuses_everything():
    with pytest.raises(InvalidSignature, match="no Mailgun signing key"):
        adapter("mailgun").verify(posted(mailgun_fields()))


def test_mailgun_signature_check_matches_the_documented_algorithm():
    # HMAC-SHA256(key, timestamp + token), hex
    import hashlib
    import hmac
    expected = hmac.new(b"key", b"1700000000" + b"tok", hashlib.sha256).hexdigest()
    verify_mailgun_signature("key", "1700000000", "tok", expected.upper(), now=1700000100)


def test_mailgun_without_body_mime_says_how_to_fix_the_route():
    fields = mailgun_fields()
    fields.pop("body-mime")
    with pytest.raises(MalformedPayload, match="mime"):
        adapter("mailgun", mailgun_signing_key=MAILGUN_KEY).parse(posted(fields))


# -- SendGrid -------------------------------------------------------------------------------------
SENDGRID_CONTENT_TYPE = "multipart/form-data; boundary=xYzZY"


def test_sendgrid_raw_post_with_the_url_token_is_accepted_and_parsed():
    channel = adapter("sendgrid", sendgrid_token=SENDGRID_TOKEN)
    request = posted(raw("sendgrid_raw.txt"), content_type=SENDGRID_CONTENT_TYPE, query=f"token={SENDGRID_TOKEN}")
    channel.verify(request)
    [m] = channel.parse(request)
    assert m.provider_message_id == "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>"
    assert m.body == "Merci beaucoup, je l'ai bien reçue ce matin !\n\nÉlodie"
    assert m.meta["reply_conversation_id"] == 42 and m.meta["inbound"] == "sendgrid"
    assert m.meta["replay_key"] is None  # SendGrid has no token: Message-ID dedupes


@pytest.mark.parametrize("query", ["", "token=", "token=sg-url-token-0002", "tok=sg-url-token-0001"])
def test_sendgrid_without_the_right_token_is_refused(query):
    request = posted(raw("sendgrid_raw.txt"), content_type=SENDGRID_CONTENT_TYPE, query=query)
    with pytest.raises(InvalidSignature):
        adapter("sendgrid", sendgrid_token=SENDGRID_TOKEN).verify(request)


def test_sendgrid_basic_auth():
    channel = adapter("sendgrid", sendgrid_username="parse", sendgrid_password="s3cret")
    good = posted(raw("sendgrid_raw.txt"), content_type=SENDGRID_CONTENT_TYPE,
                  headers={"Authorization": "Basic cGFyc2U6czNjcmV0"})
    channel.verify(good)
    bad = posted(raw("sendgrid_raw.txt"), content_type=SENDGRID_CONTENT_TYPE,
                 headers={"Authorization": "Basic cGFyc2U6d3Jvbmc="})
    with pytest.raises(InvalidSignature):
        channel.verify(bad)


def test_sendgrid_with_no_secret_configured_refuses_everything():
    with pytest.raises(InvalidSignature, match="no SendGrid"):
        adapter("sendgrid").verify(posted(raw("sendgrid_raw.txt"), content_type=SENDGRID_CONTENT_TYPE))


def test_sendgrid_parsed_mode_is_refused_with_a_hint():
    request = posted({"text": "hello", "from": "a@example.org"}, query=f"token={SENDGRID_TOKEN}")
    with pytest.raises(MalformedPayload, match="raw, full MIME"):
        adapter("sendgrid", sendgrid_token=SENDGRID_TOKEN).parse(request)


def test_sendgrid_raw_mime_in_latin1_keeps_its_bytes():
    mime = ("From: =?iso-8859-1?q?Fran=E7ois?= <francois@example.fr>\nTo: support@coccinelle.test\n"
            "Message-ID: <latin@example.fr>\nContent-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: 8bit\n\nJ'ai reçu un colis abîmé.\n").encode("latin-1")
    fields = sendgrid_raw_form(mime, to=ADDRESS, from_header="francois@example.fr")
    [m] = adapter("sendgrid", sendgrid_token=SENDGRID_TOKEN).parse(posted(fields, query=f"token={SENDGRID_TOKEN}"))
    assert m.body == "J'ai reçu un colis abîmé." and m.sender_name == "François"


def test_imap_channels_accept_no_webhook():
    with pytest.raises(InvalidSignature, match="IMAP"):
        adapter("imap").verify(posted(mailgun_fields()))


def test_webhook_reply_is_an_empty_200_and_there_are_no_status_callbacks():
    channel = adapter("mailgun", mailgun_signing_key=MAILGUN_KEY)
    reply = channel.webhook_reply()
    assert (reply.status, reply.body) == (200, "")
    assert channel.parse_status(posted(mailgun_fields())) == []
    assert channel.handshake(posted(mailgun_fields())) is None
    assert (channel.kind, channel.provider) == (ChannelKind.EMAIL, Provider.SMTP)


def test_parse_imap_keys_the_message_by_mailbox_uidvalidity_and_uid():
    m = adapter("imap").parse_imap(1700000000, 17, raw("plain_fr.eml"))
    assert m.meta["replay_key"] == "imap:INBOX:1700000000:17"
    assert m.meta["imap"] == {"mailbox": "INBOX", "uidvalidity": 1700000000, "uid": 17}


# -- building outbound mail (no network) -------------------------------------------------------------
def outbound(**kw) -> OutboundMessage:
    defaults = dict(to="elodie.martin@exemple.fr", body="Bonjour Élodie,\n\nVotre colis arrive demain.",
                    subject=reply_subject("Commande n°4521 pas reçue"),
                    meta={"in_reply_to": "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>",
                          "references": ["<176216172300.1201.5514729102345@coccinelle.test>"],
                          "conversation_id": 42})
    defaults.update(kw)
    return OutboundMessage(**defaults)


def test_reply_is_built_as_a_threaded_multipart_message():
    msg = adapter().build_message(outbound(attachments=(
        OutboundAttachment("../../avoir.pdf", "application/pdf", b"%PDF-1.4 avoir"),)))
    wire = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert str(wire["From"]) == "Service client Coccinelle <support@coccinelle.test>"
    assert wire["Message-ID"].endswith("@coccinelle.test>") and wire["Date"]
    assert wire["Subject"] == "Re: Commande n°4521 pas reçue"
    assert wire["In-Reply-To"] == "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>"
    assert wire["References"].split() == ["<176216172300.1201.5514729102345@coccinelle.test>",
                                          "<CAF8mH2x5QpGmail0Reply7Lq9R3v@mail.gmail.com>"]
    reply_to = wire["Reply-To"].addresses[0].addr_spec
    assert read_reply_token(plus_token([reply_to], ADDRESS), REPLY_SECRET) == 42
    text = wire.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = wire.get_body(("html",)).get_content()
    assert text.startswith("Bonjour Élodie,") and "\n-- \nL'équipe Coccinelle\nhttps://coccinelle.test/aide" in text
    assert "<p>Bonjour Élodie,</p>" in html and 'class="signature"' in html and "L&#x27;équipe" in html
    [attachment] = list(wire.iter_attachments())
    assert attachment.get_filename() == "avoir.pdf" and attachment.get_content() == b"%PDF-1.4 avoir"
    assert "Auto-Submitted" not in wire


def test_given_html_gets_the_signature_before_its_closing_body_tag():
    msg = adapter().build_message(outbound(html="<html><body><p>Prêt</p></body></html>"))
    html = msg.get_body(("html",)).get_content()
    assert html.index("signature") < html.index("</body>")


def test_plus_addressing_can_be_turned_off():
    channel = EmailChannel(ChannelConfig(kind=ChannelKind.EMAIL, provider=Provider.SMTP, address=ADDRESS,
                                         credentials={"reply_token_secret": REPLY_SECRET},
                                         settings={"plus_addressing": False}))
    assert "Reply-To" not in channel.build_message(outbound())


def test_bot_answers_are_marked_auto_submitted():
    msg = adapter().build_message(outbound(meta={"auto_submitted": True}))
    assert msg["Auto-Submitted"] == "auto-replied"


@pytest.mark.parametrize("overrides, reason", [
    ({"to": "not-an-address"}, "address"),
    ({"to": "a@example.org\r\nBcc: victim@example.org"}, "address"),
    ({"subject": "Hello\r\nBcc: victim@example.org"}, "header"),
])
def test_unsendable_messages_fail_for_good(overrides, reason):
    with pytest.raises(PermanentDeliveryError) as error:
        adapter().build_message(outbound(**overrides))
    assert error.value.code == reason


def test_references_are_trimmed_in_the_middle():
    chain = [f"<{i}@x>" for i in range(30)]
    refs = build_references(chain, "<30@x>")
    assert len(refs) == 20 and refs[0] == "<0@x>" and refs[-1] == "<30@x>"


@pytest.mark.parametrize("subject, expected", [
    ("Commande", "Re: Commande"), ("Re: Commande", "Re: Commande"), ("RE : Commande", "RE : Commande"),
    ("AW: Bestellung", "AW: Bestellung"), ("", "Re:"), (None, "Re:"),
])
def test_reply_subject(subject, expected):
    assert reply_subject(subject) == expected


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.eml")))
def test_meta_can_be_stored_as_json(name):
    m = parsed(name)
    assert json.loads(json.dumps(m.meta)) == m.meta
    assert len(m.provider_message_id) <= 128
