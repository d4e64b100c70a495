"""Text helpers shared by the rules and the engines: one normalisation everywhere, so a
pattern written "supprimer mes donnees" matches "Supprimez mes DONNÉES !"."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
_WORD = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lower case, accents removed, typographic apostrophes made plain."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Folded words; elisions split ("l'heure" → "l", "heure")."""
    return _WORD.findall(fold(text))


def normalized(text: str) -> str:
    """Folded words joined by single spaces, padded so " word " patterns match at the edges."""
    return " " + " ".join(words(text)) + " "


def contains_phrase(norm: str, phrases: tuple[str, ...]) -> str | None:
    """The first phrase (already normalised, no padding) found as whole words in `norm`."""
    for phrase in phrases:
        if f" {phrase} " in norm:
            return phrase
    return None


def letters_upper_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 8:
        return 0.0
    return sum(c.isupper() for c in letters) / len(letters)
