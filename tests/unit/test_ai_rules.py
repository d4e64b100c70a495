"""Sara's deterministic rules: structured answers, requests for a person, guardrail signals."""

from __future__ import annotations

import pytest

from inbox.ai import rules
from inbox.ai.evaluation import load_csv
from inbox.ai.language import detect_language
from inbox.ai.types import Awaiting, Collected, Guardrail

from .test_ai_agent import FIXTURES

APPOINTMENT = Awaiting.APPOINTMENT_CONFIRMATION


@pytest.mark.parametrize("text", [
    "OUI", "oui", "Oui merci", "oui !", "ok", "D'accord", "Je confirme", "👍", "yes", "Yes please",
    "Je confirme mon rendez-vous de demain, OUI", "C'est bon pour moi", "j'y serai", "pas de souci",
    "No problem, I'll be there", "O", "y",
])
def test_yes_to_a_reminder_confirms(text):
    assert rules.collect(text, APPOINTMENT) == rules.Collect(Collected.CONFIRM)


@pytest.mark.parametrize("text", ["NON", "non", "Non je ne peux pas", "no", "Je ne pourrai pas venir", "👎", "nope", "N"])
def test_no_to_a_reminder_declines(text):
    assert rules.collect(text, APPOINTMENT) == rules.Collect(Collected.DECLINE)


@pytest.mark.parametrize("text", ["ANNULER", "annuler svp", "Annulez", "cancel", "Non, annulez le rendez-vous", "Annulation"])
def test_cancel_to_a_reminder_cancels(text):
    assert rules.collect(text, APPOINTMENT) == rules.Collect(Collected.CANCEL)


@pytest.mark.parametrize("text", [
    "Oui mais est-ce que je peux venir à 15h ?",  # a question
    "oui mais je voudrais changer l'heure",  # a change request
    "Oui ou non, je ne sais pas encore",  # both
    "Bonjour, j'ai une question sur ma facture",  # neither
    "Je n'ai pas reçu le rappel",  # "n" is an elision here, not a no
])
def test_answers_that_need_reading_go_on_to_the_engine(text):
    assert rules.collect(text, APPOINTMENT) is None


def test_yes_without_a_pending_reminder_is_not_collected():
    assert rules.collect("OUI", None) is None


@pytest.mark.parametrize("text,rating", [
    ("5", 5), ("1", 1), ("5/5", 5), ("4 / 5", 4), ("note 4", 4), ("Note : 3", 3), ("4 étoiles", 4),
    ("3 sur 5", 3), ("⭐⭐⭐⭐", 4), ("5 merci", 5), ("Je donne 4", 4),
])
def test_rating_answers(text, rating):
    assert rules.collect(text, Awaiting.RATING) == rules.Collect(Collected.RATING, rating=rating)


@pytest.mark.parametrize("text", ["6", "0", "10/10", "5 minutes de retard, désolé", "4 personnes ?"])
def test_not_a_rating(text):
    assert rules.collect(text, Awaiting.RATING) is None


@pytest.mark.parametrize("awaiting", [None, APPOINTMENT, Awaiting.RATING])
@pytest.mark.parametrize("text,value", [
    ("STOP", Collected.OPT_OUT), ("stop", Collected.OPT_OUT), ("ARRET", Collected.OPT_OUT),
    ("Arrêt", Collected.OPT_OUT), ("UNSUBSCRIBE", Collected.OPT_OUT), ("STOP merci", Collected.OPT_OUT),
    ("START", Collected.OPT_IN),
])
def test_stop_and_start_always_apply(text, value, awaiting):
    assert rules.collect(text, awaiting).value is value


def test_stop_inside_a_sentence_is_not_an_opt_out():
    assert rules.collect("Comment stopper l'abonnement de mon fils ?", None) is None


@pytest.mark.parametrize("text", [
    "Je veux parler à quelqu'un", "je voudrais parler a un conseiller", "agent", "Conseiller", "/contact",
    "Un humain svp", "human", "Can I talk to a human?", "I want to speak to someone", "Passez-moi un conseiller",
    "Mettez-moi en relation avec le service client",
])
def test_requests_for_a_person(text):
    assert rules.wants_human(text)


@pytest.mark.parametrize("text", [
    "Pouvez-vous me conseiller sur le tarif ?", "Mon opérateur ne capte pas", "Quel agent d'entretien utilisez-vous ?",
    "Quels sont vos horaires ?",
])
def test_not_requests_for_a_person(text):
    assert not rules.wants_human(text)


def test_every_must_escalate_phrase_raises_its_guardrail():
    for row in load_csv(FIXTURES / "must_escalate.csv"):
        signal = rules.sensitive_signal(row.text) or rules.anger_signal(row.text)
        assert signal is not None, row.text
        assert signal.guardrail == Guardrail(row.category), row.text


@pytest.mark.parametrize("text", [
    "Quels sont vos horaires ?", "Merci beaucoup, très bon accueil !", "Le délai est court",
    "J'ai une question sur mon procès-verbal de livraison", "Je voudrais ma facture", "Is there an issue with my order?",
    "Le praticien m'a conseillé de revenir", "Combien coûte une consultation ?",
])
def test_ordinary_messages_raise_no_guardrail(text):
    assert rules.sensitive_signal(text) is None
    assert rules.anger_signal(text) is None


@pytest.mark.parametrize("text,language", [
    ("Quels sont vos horaires ?", "fr"), ("Bonjour, je voudrais annuler mon rendez-vous", "fr"),
    ("What are your opening hours?", "en"), ("I was charged twice this month", "en"),
    ("¿Cuál es el precio de la consulta?", "es"), ("Ich möchte meinen Termin absagen", "de"),
])
def test_language_detection(text, language):
    assert detect_language(text, default="fr") == language


def test_language_falls_back_to_the_workspace_default():
    assert detect_language("👍", default="en") == "en"
    assert detect_language("OK", default="fr") == "fr"
