"""Text stays readable: every text / background pair of the design system's custom properties
(inbox/static/css/app.css) has a WCAG 2.1 contrast ratio of at least 4.5:1 (AA, normal text),
in the light theme and in the dark one; the focus ring stands out at 3:1 (non-text contrast)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "inbox" / "static" / "css" / "app.css"
BACKGROUNDS = ("--bg", "--panel", "--panel-2", "--inbound-bg", "--outbound-bg", "--note-bg")
# Coloured text (status badges, delivery states, priorities, muted lines) sits on any surface:
# a list row (panel), its hover (panel-2), the open row (outbound-bg), a message or a note.
TEXTS = ("--text", "--muted", "--ok", "--warn", "--danger",
         "--prio-low", "--prio-medium", "--prio-high")
# Text drawn on a coloured fill: buttons and avatars, the critical badge and error toasts,
# the status pills (consent, campaign state, danger buttons), the toasts (inverted).
FILLS = [("--accent-text", "--accent"), ("--on-critical", "--prio-critical"), ("--on-status", "--ok"),
         ("--on-status", "--warn"), ("--on-status", "--danger"), ("--on-status", "--focus"), ("--bg", "--text")]
PAIRS = [(fg, bg) for fg in TEXTS for bg in BACKGROUNDS] + FILLS


def custom_properties(css: str) -> dict[str, dict[str, str]]:
    """{"light": {...}, "dark": {...}}: the first :root block, and the dark one over it."""
    light = re.search(r"^:root\s*\{(.*?)\}", css, re.S | re.M).group(1)
    dark = re.search(r"prefers-color-scheme:\s*dark\)\s*\{\s*:root\s*\{(.*?)\}", css, re.S).group(1)

    def props(block: str) -> dict[str, str]:
        return {name: value.strip() for name, value in re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", block)}

    base = props(light)
    return {"light": base, "dark": {**base, **props(dark)}}


def luminance(colour: str) -> float:
    hexa = colour.lstrip("#")
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    assert re.fullmatch(r"[0-9a-fA-F]{6}", hexa), f"not a #rrggbb colour: {colour}"

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hexa[i:i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_formula_matches_wcag_reference_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the classic AA grey


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_text_colour_has_a_contrast_of_4_5_on_its_backgrounds(theme):
    colours = custom_properties(CSS.read_text())[theme]
    failures = [f"{fg} on {bg}: {contrast(colours[fg], colours[bg]):.2f}"
                for fg, bg in PAIRS if contrast(colours[fg], colours[bg]) < 4.5]
    assert failures == [], f"{theme} theme below 4.5:1"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_focus_ring_stands_out_from_every_surface(theme):
    colours = custom_properties(CSS.read_text())[theme]
    assert min(contrast(colours["--focus"], colours[bg]) for bg in BACKGROUNDS) >= 3.0
