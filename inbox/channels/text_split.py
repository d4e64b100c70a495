"""Long texts cut into the parts a provider accepts (Telegram and WhatsApp both stop at 4096).

Pure functions, shared by the adapters: a part never exceeds the limit, counted in UTF-16 code
units (Telegram's measure; for Meta, which counts characters, it is the stricter count), and a
cut falls on a paragraph, line or word boundary whenever the text offers one.
"""

from __future__ import annotations


def split_text(text: str, limit: int) -> list[str]:
    """Cut `text` into parts of at most `limit` UTF-16 code units, at the last paragraph break,
    else line break, else space, found in the second half of the allowed window; a hard cut
    only when a part has none. Separators at a cut are dropped."""
    parts: list[str] = []
    rest = text
    while utf16_units(rest) > limit:
        window = rest[:_fit(rest, limit)]
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at >= len(window) // 2 and at > 0:
                head, rest = window[:at], rest[at + len(separator):]
                break
        else:
            head, rest = window, rest[len(window):]
        if head.strip():
            parts.append(head)
    if rest.strip():
        parts.append(rest)
    return parts


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The longest prefix length (in characters) that fits in `limit` UTF-16 code units."""
    end = min(len(text), limit)
    while (over := utf16_units(text[:end]) - limit) > 0:
        end -= max(1, over // 2)
    return end
