"""Deterministic rules, run before any model: what a customer answers to a question we
asked (OUI/NON/ANNULER, a 1–5 rating), STOP/START, requests for a person, and the
guardrail signals (anger, legal threat, fraud, emergency, data deletion).

Rules are written on folded text (see text.py): lower case, no accents, words separated by
single spaces. They must stay cheap and predictable: a missed "OUI" costs a confused
customer, a missed "mise en demeure" costs far more, so guardrails lean towards firing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import contains_phrase, fold, letters_upper_ratio, normalized, words
from .types import Awaiting, Collected, Guardrail

# Politeness that does not change the meaning of a short answer ("STOP merci").
_FILLER = frozenset(
    "merci beaucoup svp stp sil s il vous te plait please plz pls thanks thank thx you bonjour "
    "bonsoir hello hi salut bien cordialement regards madame monsieur".split()
)

# --- Opt-out / opt-in: always, whatever we were waiting for -----------------------------

_OPT_OUT = frozenset({
    ("stop",), ("stopall",), ("arret",), ("arreter",), ("arretez",), ("unsubscribe",),
    ("optout",), ("opt", "out"), ("desabonner",), ("desabonnement",), ("desinscrire",),
    ("desinscription",), ("stop", "sms"), ("stop", "messages"), ("stop", "pub"),
})
_OPT_IN = frozenset({("start",), ("unstop",), ("optin",), ("opt", "in")})

# --- Appointment reminder answers (only when a reminder awaits a reply) ------------------

# Matched first and removed, so "no problem" is not read as "no".
_YES_OVERRIDES = (
    "pas de probleme", "pas de souci", "pas de soucis", "sans probleme", "sans souci",
    "no problem", "no worries", "n annulez pas", "ne pas annuler", "pas annuler",
    "don t cancel", "do not cancel", "dont cancel",
)
_CANCEL = (
    "annuler", "annule", "annulez", "annulee", "annulation", "annul", "cancel", "cancelled",
    "canceled", "cancellation",
)
_NO = (
    "ne peux pas", "ne pourrai pas", "ne pourrais pas", "peux pas", "pourrai pas",
    "ne viendrai pas", "viendrai pas", "pas disponible", "pas dispo", "indisponible",
    "empechement", "empeche", "impossible", "can t", "cannot", "can not", "won t", "will not",
    "not available", "unable", "non", "nan", "no", "nope",
)
_YES = (
    "je confirme", "confirme", "confirmee", "confirmer", "confirmons", "confirm", "confirmed",
    "c est bon", "c est ok", "c est parfait", "c est note", "bien sur", "tout a fait",
    "absolument", "parfait", "d accord", "daccord", "dac", "ok", "okay", "okey", "oki",
    "oui", "ouais", "ouai", "ouaip", "yes", "yep", "yeah", "yup", "sure", "of course",
    "certainly", "j y serai", "je serai la", "je serai present", "je serai presente",
    "present", "presente", "i ll be there", "i will be there", "will be there",
)
# Single letters count only as the whole answer: "n" is also the elision in "je n'ai pas…".
_LETTERS = {("o",): Collected.CONFIRM, ("y",): Collected.CONFIRM, ("n",): Collected.DECLINE}
_YES_EMOJI = ("👍", "✅", "👌", "✔", "☑", "🆗")
_NO_EMOJI = ("👎", "❌", "✖", "🚫", "⛔")
# Words that turn a short answer into a request the model should read ("oui mais…").
_NOT_A_PLAIN_ANSWER = (
    "mais", "but", "changer", "change", "modifier", "deplacer", "decaler", "reporter",
    "reprogrammer", "reschedule", "move", "autre", "another", "plutot", "instead", "rather",
)
_MAX_ANSWER_WORDS = 15

# --- Ratings (only when a rating request awaits a reply) ---------------------------------

_RATING = re.compile(
    r"^(?:(?:ma |my )?(?:note|rating|score|avis)\s*(?:est |is |de |of )?|je (?:vous )?(?:donne|mets)\s*"
    r"|i (?:d |would )?give(?: you)?\s*)?([1-5])"
    r"(?:\s*(?:/\s*5|sur\s*5|sur\s*cinq|out of\s*5|of\s*5|etoiles?|stars?|pts?|points?))?"
    r"(?:\s+(?:" + "|".join(sorted(_FILLER)) + r"))*\s*$"
)
_STARS = re.compile(r"^\s*(?:⭐|★|🌟){1,5}\s*$")

# --- Hand to a human ----------------------------------------------------------------------

_HUMAN_COMMANDS = ("/contact", "/human", "/humain", "/agent", "/conseiller")
_HUMAN_ALONE = frozenset({
    ("agent",), ("conseiller",), ("conseillere",), ("humain",), ("human",), ("operateur",),
    ("operator",), ("person",), ("personne",), ("representative",), ("quelqu", "un"),
    ("un", "humain"), ("a", "human"), ("un", "conseiller"), ("une", "conseillere"),
    ("un", "agent"), ("an", "agent"), ("real", "person"), ("live", "agent"),
})
_HUMAN_REQUEST = re.compile(
    r"\b(?:"
    r"(?:parler|discuter|echanger|joindre|contacter|avoir|etre mise? en relation|mettre en relation)"
    r" (?:a |avec |au telephone avec )?"
    r"(?:quelqu un|une? (?:vraie? )?(?:humain|personne|conseill\w*|agent|operateur|operatrice|interlocut\w*)"
    r"|un etre humain|(?:le|votre) service client\w*|un responsable|le responsable|une personne reelle)"
    r"|une? (?:vrai |vraie )?(?:humain|conseiller|conseillere)"
    r"|(?:speak|talk|chat|connect me|put me through)(?: to| with)? (?:someone|somebody|a (?:real )?"
    r"(?:human|person|agent|representative|rep)|an? (?:agent|operator)|(?:a |the )?manager"
    r"|customer (?:service|support)|a live agent)"
    r"|real (?:human|person)|live agent|human (?:agent|being|support)"
    r"|call me back|etre rappelee?|rappelez moi au|en relation avec"
    r")\b"
)

# --- Guardrails -----------------------------------------------------------------------------


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


_LEGAL = _rx(
    r"avocats?", r"mise en demeure", r"mettre? en demeure", r"mets? en demeure",
    r"tribunal", r"tribunaux", r"(?:porter|porterai|deposer|deposerai|depose) plainte",
    r"plainte (?:contre|aupres|a la police|penale)", r"en justice", r"la justice",
    r"action (?:en justice|judiciaire|juridique|collective)", r"poursuites?(?: judiciaires)?",
    r"poursuivre", r"huissiers?", r"proces(?! verbal)", r"prud ?hommes", r"dgccrf",
    r"ufc que choisir", r"associations? de consommateurs", r"mediateur",
    r"lawyers?", r"attorneys?", r"solicitors?", r"sue", r"suing", r"sued", r"lawsuits?",
    r"legal action", r"legal proceedings", r"legal team", r"(?:in|to|into) court",
    r"court (?:case|order|action)", r"small claims", r"cease and desist", r"litigation",
    r"class action",
)
_FRAUD = _rx(
    r"fraude?s?", r"fraudule\w*", r"escroc\w*", r"escroqu\w*", r"arnaqu\w*", r"cartes? (?:\w+ ){0,3}volee?s?",
    r"(?:on m a|j ai ete|je me suis fait) (?:\w+ ){0,2}vole", r"vole (?:ma|mon|mes) (?:carte|telephone|portefeuille|identifiants)",
    r"vol de (?:ma |la )?carte", r"vol d identite", r"usurpation", r"usurpe\w*",
    r"compte (?:a ete )?pirate", r"piratage", r"hameconnage", r"phishing",
    r"je n ai (?:jamais )?(?:pas )?(?:fait|effectue|autorise|commande) (?:ce|cet|cette|ces)",
    r"(?:paiements?|prelevements?|transactions?|achats?|virements?) (?:que je n ai pas|non autorise\w*|inconnue?s?|frauduleu\w*)",
    r"fraud\w*", r"scam\w*", r"stolen", r"identity theft", r"hacked", r"unauthori[sz]ed",
    r"(?:didn t|did not|never) (?:make|made|authori[sz]e|order)",
    r"(?:don t|do not) recogni[sz]e",
)
_EMERGENCY = _rx(
    r"urgences? vitales?", r"urgence medicale", r"samu", r"appeler? le 15", r"appeler? le 112",
    r"pompiers", r"danger de mort", r"en danger", r"suicid\w*", r"me tuer", r"me suicider",
    r"crise cardiaque", r"arret cardiaque", r"ne respire plus", r"inconsciente?", r"overdose",
    r"fuite de gaz", r"emergency", r"emergencies", r"life threatening", r"ambulance",
    r"heart attack", r"kill myself", r"can t breathe", r"cannot breathe", r"not breathing",
    r"in danger", r"gas leak", r"911",
)
_DATA_DELETION = _rx(
    r"rgpd", r"gdpr", r"cnil", r"ccpa", r"droit a l oubli", r"droit (?:d acces|de suppression|a l effacement)",
    r"(?:supprim|effac|detrui|retir|enlev)\w* (?:\w+ ){0,4}(?:donnees|informations personnelles|coordonnees)",
    r"(?:suppression|effacement|destruction) (?:\w+ ){0,4}(?:donnees|informations personnelles)",
    r"(?:delete|erase|remove|wipe|destroy)\w* (?:\w+ ){0,4}(?:data|personal (?:information|details|info))",
    r"right to (?:be forgotten|erasure)", r"data protection", r"subject access request", r"dsar",
)
_ANGRY = _rx(
    r"inadmissible", r"inacceptable", r"scandal\w*", r"honteu\w*", r"c est une honte", r"la honte",
    r"lamentable", r"minable", r"c est nul", r"vraiment nul", r"ras le bol", r"marre",
    r"furieu\w*", r"furax", r"en colere", r"hors de moi", r"enerve\w*", r"degoute\w*",
    r"incompeten\w*", r"intolerable", r"insupportable", r"deplorable", r"pathetique",
    r"catastrophique", r"foutage", r"vous (?:vous )?moquez", r"se moque\w*", r"foutez", r"putain",
    r"merde\w*", r"bordel", r"connard\w*", r"abruti\w*", r"debile\w*", r"n importe quoi",
    r"pire (?:service|entreprise|societe|experience)", r"jamais vu ca", r"inou[iy]e?",
    r"unacceptable", r"outrageous", r"ridiculous", r"disgust\w*", r"disgrace\w*", r"pathetic",
    r"useless", r"worst", r"furious", r"livid", r"pissed", r"fed up", r"sick (?:and tired )?of",
    r"wtf", r"what the (?:hell|heck|f\w*)", r"fuck\w*", r"shit\w*", r"crap", r"bullshit",
    r"rip ?off", r"appalling", r"this is a joke", r"absolutely terrible", r"horrible service",
    r"terrible service", r"angry", r"very upset", r"so upset",
)

_SENSITIVE = (
    (Guardrail.EMERGENCY, _EMERGENCY),
    (Guardrail.LEGAL_THREAT, _LEGAL),
    (Guardrail.FRAUD, _FRAUD),
    (Guardrail.DATA_DELETION, _DATA_DELETION),
)


@dataclass(frozen=True, slots=True)
class Collect:
    value: Collected
    rating: int | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    guardrail: Guardrail
    evidence: str  # the words that fired, for the reason shown to agents


def collect(text: str, awaiting: Awaiting | None) -> Collect | None:
    """The structured answer in `text`, if it is one; None lets the message go on."""
    tokens = tuple(w for w in words(text) if w not in _FILLER)
    if tokens in _OPT_OUT:
        return Collect(Collected.OPT_OUT)
    if tokens in _OPT_IN:
        return Collect(Collected.OPT_IN)
    if awaiting is Awaiting.APPOINTMENT_CONFIRMATION:
        return _appointment_answer(text)
    if awaiting is Awaiting.RATING:
        return _rating(text)
    return None


def _appointment_answer(text: str) -> Collect | None:
    if "?" in text:
        return None  # a question needs an answer, not a checkbox
    norm = normalized(text)
    letter = _LETTERS.get(tuple(w for w in norm.split() if w not in _FILLER))
    if letter is not None:
        return Collect(letter)
    if len(norm.split()) > _MAX_ANSWER_WORDS or contains_phrase(norm, _NOT_A_PLAIN_ANSWER):
        return None
    yes = any(e in text for e in _YES_EMOJI)
    no = any(e in text for e in _NO_EMOJI)
    for phrase in _YES_OVERRIDES:
        if f" {phrase} " in norm:
            yes, norm = True, norm.replace(f" {phrase} ", " ")
    if contains_phrase(norm, _CANCEL):
        return Collect(Collected.CANCEL)
    no = no or contains_phrase(norm, _NO) is not None
    yes = yes or contains_phrase(norm, _YES) is not None
    if yes and not no:
        return Collect(Collected.CONFIRM)
    if no and not yes:
        return Collect(Collected.DECLINE)
    return None  # both or neither: let the engine read it


def _rating(text: str) -> Collect | None:
    if _STARS.match(text):
        return Collect(Collected.RATING, rating=sum(text.count(s) for s in "⭐★🌟"))
    match = _RATING.match(_rating_text(text))
    if match:
        return Collect(Collected.RATING, rating=int(match.group(1)))
    return None


def _rating_text(text: str) -> str:
    # Keep "/" for "4/5"; everything else as folded words.
    return " ".join(re.findall(r"[a-z0-9]+|/", fold(text)))


def wants_human(text: str) -> bool:
    stripped = text.strip().casefold()
    if stripped.startswith(_HUMAN_COMMANDS):
        return True
    tokens = tuple(w for w in words(text) if w not in _FILLER)
    if tokens in _HUMAN_ALONE:
        return True
    # Needs an article before the noun: "pouvez-vous me conseiller ?" (advise me) is no request.
    return _HUMAN_REQUEST.search(normalized(text)) is not None


def sensitive_signal(text: str) -> Signal | None:
    """Emergency, legal threat, fraud or data deletion: always a ticket for a person."""
    norm = normalized(text)
    for guardrail, pattern in _SENSITIVE:
        match = pattern.search(norm)
        if match:
            return Signal(guardrail, match.group(0).strip())
    return None


def anger_signal(text: str) -> Signal | None:
    match = _ANGRY.search(normalized(text))
    if match:
        return Signal(Guardrail.ANGRY, match.group(0).strip())
    if "!!!" in text or "?!?" in text:
        return Signal(Guardrail.ANGRY, "!!!")
    if letters_upper_ratio(text) > 0.7 and len(words(text)) >= 3:
        return Signal(Guardrail.ANGRY, "written in capitals")
    return None
