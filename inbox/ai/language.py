"""Which language a customer wrote in, from function words and accents.

Support messages are short ("Vos horaires ?"), where character-model detectors guess
wildly; function words decide most of them, and the workspace language breaks ties. The
set covers the languages our customers write in; anything else falls back to the default.
"""

from __future__ import annotations

import re

from .text import words

_STOPWORDS: dict[str, frozenset[str]] = {
    "fr": frozenset(
        "le la les un une des du de d l au aux et ou mais donc est sont suis ai avez avons "
        "je tu il elle nous vous ils elles mon ma mes ton ta tes son sa ses notre votre vos "
        "leur leurs ce cet cette ces qui que quoi quel quelle quels quelles ne pas plus "
        "pour par sur avec dans chez sans merci bonjour bonsoir oui non svp stp comment "
        "pourquoi quand combien ou est-ce c j m n s qu y en vais peux veux voudrais "
        "aujourd hui demain hier tres aussi deja encore toujours rien tout tous toutes "
        "horaires rendez vous prix facture commande livraison".split()
    ),
    "en": frozenset(
        "the a an and or but is are am was were be been i you he she it we they my your his "
        "her its our their this that these those what which who whom why how when where "
        "not no yes please thanks thank hello hi can could would should will do does did "
        "have has had to of in on at for with from by about my me get got want need there "
        "here just still card account money order delivery price".split()
    ),
    "es": frozenset(
        "el la los las un una unos unas y o pero es son estoy soy yo tu usted nosotros mi "
        "mis su sus que cual quien por para con sin en del al gracias hola si no como "
        "cuando donde porque quiero puedo necesito tengo hay muy tambien".split()
    ),
    "de": frozenset(
        "der die das ein eine einen und oder aber ist sind bin ich du sie wir ihr mein "
        "meine dein ihr unser was wer wie wann wo warum nicht kein keine ja nein bitte "
        "danke hallo mit fur von zu auf im in ist habe hat haben kann konnen mochte".split()
    ),
    "it": frozenset(
        "il lo la gli le un una uno e o ma sono sei io tu lui lei noi voi mio mia miei tuo "
        "suo che chi come quando dove perche non si grazie ciao per con su nel della del "
        "vorrei posso ho hai ha".split()
    ),
    "pt": frozenset(
        "o a os as um uma e ou mas sou eu voce nos meu minha seu sua que qual quem como "
        "quando onde porque nao sim obrigado obrigada ola por para com sem em do da no na "
        "quero posso tenho".split()
    ),
    "nl": frozenset(
        "de het een en of maar is zijn ben ik jij je hij zij wij mijn jouw uw wat wie hoe "
        "wanneer waar waarom niet geen ja nee alsjeblieft dank bedankt hallo met voor van "
        "op in aan te kan wil heb".split()
    ),
}
# Characters that (almost) only one of these languages uses.
_MARKS = {
    "fr": re.compile(r"[éèêàùçœëîïôû]"),
    "es": re.compile(r"[ñ¿¡áíóú]"),
    "de": re.compile(r"[äöüß]"),
    "pt": re.compile(r"[ãõâç]"),
    "it": re.compile(r"[àèìòù]"),
}


def detect_language(text: str, *, default: str = "fr") -> str:
    """An ISO 639-1 code; `default` when the text gives no evidence."""
    scores = {lang: 0.0 for lang in _STOPWORDS}
    for word in words(text):
        for lang, vocabulary in _STOPWORDS.items():
            if word in vocabulary:
                scores[lang] += 1.0
    lowered = text.casefold()
    for lang, marks in _MARKS.items():
        scores[lang] += 0.6 * len(marks.findall(lowered))
    best = max(scores.values())
    if best == 0:
        return default
    leaders = [lang for lang, score in scores.items() if score == best]
    return default if default in leaders else leaders[0]
