"""The French catalogue is complete and every translation keeps the placeholders of its source text.

A missing translation shows English to French users; a fuzzy one is a guess nobody checked; a lost or
renamed placeholder makes the formatting raise (KeyError) or drop a value the user needs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

FR_PO = Path(__file__).resolve().parents[2] / "inbox" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"

# %(name)s, %(n)d, %(m)02d… (Python named formatting) and {name} (str.format).
NAMED = re.compile(r"%\([^)]+\)[#0\- +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
BRACES = re.compile(r"\{[^{}]*\}")


def _catalogue():
    with FR_PO.open("rb") as fh:
        return read_po(fh, locale="fr")


def _messages():
    return [m for m in _catalogue() if m.id]  # the header entry has an empty msgid


def _forms(value) -> list[str]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _tokens(text: str) -> set[str]:
    return set(NAMED.findall(text or "")) | set(BRACES.findall(text or ""))


def _stray_percent(text: str) -> bool:
    """A % that is neither a placeholder nor %% (the formatting would raise or mangle it)."""
    return "%" in NAMED.sub("", text or "").replace("%%", "")


def _label(message) -> str:
    return repr(_forms(message.id)[0])


def test_the_catalogue_has_messages():
    assert len(_messages()) > 100


def test_every_message_is_translated():
    untranslated = [_label(m) for m in _messages() if not all(_forms(m.string))]
    assert not untranslated, f"{len(untranslated)} untranslated: " + "; ".join(untranslated[:20])


def test_no_message_is_fuzzy():
    fuzzy = [_label(m) for m in _messages() if m.fuzzy]
    assert not fuzzy, f"{len(fuzzy)} fuzzy: " + "; ".join(fuzzy[:20])


def test_plural_messages_have_both_french_forms():
    short = [_label(m) for m in _messages() if m.pluralizable and len([s for s in _forms(m.string) if s]) < 2]
    assert not short, "plural without both forms: " + "; ".join(short)


def test_translations_keep_the_placeholders():
    wrong = []
    for m in _messages():
        expected = set().union(*(_tokens(source) for source in _forms(m.id)))
        for string in _forms(m.string):
            if string and _tokens(string) != expected:
                wrong.append(f"{_label(m)}: {sorted(expected)} became {sorted(_tokens(string))}")
    assert not wrong, "\n".join(wrong)


def _formatted(message) -> bool:
    """Whether % formatting is applied to the text: always in templates (Jinja's newstyle gettext), and in
    Python when the text has placeholders (flask_babel formats only when it is given variables)."""
    return message.python_format or any(path.endswith(".html") for path, _line in message.locations)


def test_translations_add_no_stray_percent_sign():
    wrong = [f"{_label(m)} → {s!r}" for m in _messages()
             if _formatted(m) and not any(_stray_percent(i) for i in _forms(m.id))
             for s in _forms(m.string) if s and _stray_percent(s)]
    assert not wrong, "write a literal % as %%:\n" + "\n".join(wrong)


@pytest.mark.parametrize("text, tokens", [
    ("%(n)d tickets, %(name)s, %(m)02d and {name}", {"%(n)d", "%(name)s", "%(m)02d", "{name}"}),
    ("80%% and 100%%", set()),
])
def test_the_placeholder_pattern(text, tokens):
    assert _tokens(text) == tokens
    assert not _stray_percent(text)
    assert _stray_percent("80 % de")
