"""Text stays readable: every text / background pair of the design system's custom properties
(inbox/static/css/app.css) has a WCAG 2.1 contrast ratio of at least 4.5:1 (AA, normal text),
in the light theme and in the dark one; the focus ring stands out at 3:1 (non-text contrast).
The pages' own style sheets (tickets, reports, portal, CRM, outbound) are held to the same bar
wherever they hard-code a colour: text with its rule's background, or on every usual surface."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inbox.charts import SERIES_CLASSES

CSS_DIR = Path(__file__).resolve().parents[2] / "inbox" / "static" / "css"
CSS = CSS_DIR / "app.css"
PAGE_SHEETS = ("tickets.css", "reports.css", "portal.css", "crm.css", "outbound.css")
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


# -- the pages' style sheets ----------------------------------------------------------------------
NAMED = {"white": "#ffffff", "black": "#000000"}
LITERAL = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|\b(?:white|black)\b|rgba?\(|hsla?\(")


def rules(css: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, {property: value}) of every innermost rule, comments removed."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return [(" ".join(selector.split()), {p.strip().lower(): v.strip() for p, v in
                                         re.findall(r"([\w-]+)\s*:\s*([^;]+)", body)})
            for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)]


def without_vars(value: str) -> str:
    """The value with its var(--x, fallback) calls removed: a fallback never shows, app.css defines them all."""
    while "var(" in value:
        value = re.sub(r"var\([^()]*\)", "", value)
    return value


def resolve(value: str, colours: dict[str, str]) -> str | None:
    """A declaration's colour in a theme: a literal, or the custom property it names; None otherwise."""
    literal = LITERAL.search(without_vars(value))
    if literal:
        text = literal.group(0)
        assert text.startswith("#") or text in NAMED, f"write {value!r} as #rrggbb so it can be checked"
        return NAMED.get(text, text)
    named = re.fullmatch(r"var\((--[\w-]+)(?:,[^()]*)?\)", value.strip())
    return colours.get(named.group(1)) if named else None


def text_pairs(theme: str) -> list[tuple[str, str, str, str]]:
    """(where, what, text colour, background) for each rule of the page sheets that hard-codes
    a text colour or a background behind declared text."""
    colours = custom_properties(CSS.read_text())[theme]
    pairs = []
    for sheet in PAGE_SHEETS:
        for selector, props in rules((CSS_DIR / sheet).read_text()):
            fg_value = props.get("color")
            bg_value = props.get("background-color") or props.get("background")
            literal_fg = fg_value is not None and LITERAL.search(without_vars(fg_value))
            literal_bg = bg_value is not None and LITERAL.search(without_vars(bg_value))
            if not (literal_fg or (literal_bg and fg_value)):
                continue  # theme colours only, or a fill without text (bars, previews): nothing to add
            fg = resolve(fg_value, colours)
            assert fg, f"{sheet} {selector}: cannot read the colour {fg_value!r}"
            bg = resolve(bg_value, colours) if bg_value else None
            surfaces = [(f"its background {bg_value}", bg)] if bg else [(b, colours[b]) for b in BACKGROUNDS]
            pairs += [(f"{sheet} {selector}", where, fg, colour) for where, colour in surfaces]
    return pairs


def test_the_page_sheets_are_read():
    found = rules(".a { color: #e3a008; } @media (x) { .b .c { background: #fff; color: var(--text); } }")
    assert found == [(".a", {"color": "#e3a008"}), (".b .c", {"background": "#fff", "color": "var(--text)"})]
    assert resolve("var(--muted, #667085)", {"--muted": "#5f6b7a"}) == "#5f6b7a"  # the fallback never shows
    assert resolve("white", {}) == "#ffffff" and resolve("1px solid var(--border)", {}) is None


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_hard_coded_colours_of_the_page_sheets_have_a_contrast_of_4_5(theme):
    failures = [f"{rule} on {where}: {contrast(fg, bg):.2f}" for rule, where, fg, bg in text_pairs(theme)
                if contrast(fg, bg) < 4.5]
    assert failures == [], f"{theme} theme below 4.5:1"


# -- the report charts (inbox/charts.py, drawn by reports/_charts.html, styled by reports.css) ----
CHART_SURFACE = "--panel"  # every chart sits in a .report section


def chart_paints(theme: str) -> list[tuple[str, str, str]]:
    """(selector, property, colour) of every fill, stroke or text colour of the chart rules."""
    colours = custom_properties(CSS.read_text())[theme]
    found = []
    for selector, props in rules((CSS_DIR / "reports.css").read_text()):
        if "chart" in selector or selector.startswith("rect.s"):
            for prop in ("fill", "stroke", "color"):
                if prop in props:
                    colour = resolve(props[prop], colours)
                    assert colour, f"reports.css {selector}: cannot read the colour {props[prop]!r}"
                    found.append((selector, prop, colour))
    return found


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_chart_series_stands_out_from_the_panel_at_3_to_1(theme):
    panel = custom_properties(CSS.read_text())[theme][CHART_SURFACE]
    series = {selector: colour for selector, prop, colour in chart_paints(theme)
              if selector.startswith("rect.s") and prop == "fill"}
    assert sorted(series) == sorted(f"rect.{css}" for css in SERIES_CLASSES)  # one colour per series
    failures = [f"{selector} {colour}: {contrast(colour, panel):.2f}" for selector, colour in series.items()
                if contrast(colour, panel) < 3.0]
    assert failures == [], f"{theme} theme: series below 3:1 on the panel"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_chart_text_reads_at_4_5_and_its_lines_show_at_3_to_1(theme):
    """Axis labels, the legend and the empty-chart line are text (4.5:1); the axis and the grid
    lines that carry the scale are graphics (3:1). Bars are outlined in the panel's own colour:
    series differ from each other by less than 3:1, so a stacked segment's neighbour is the
    panel, not the next series."""
    panel = custom_properties(CSS.read_text())[theme][CHART_SURFACE]
    failures = []
    for selector, prop, colour in chart_paints(theme):
        if prop == "stroke" and colour == panel:
            assert selector.startswith(".chart-bars rect"), f"{selector}: a line the colour of the panel"
            continue
        if selector.startswith("rect.s"):
            continue  # the series: the test above
        text = prop == "color" or "text" in selector or "empty" in selector
        if contrast(colour, panel) < (4.5 if text else 3.0):
            failures.append(f"{selector} {prop} {colour}: {contrast(colour, panel):.2f}")
    assert failures == [], f"{theme} theme: chart paint below its contrast"
    outlined = [s for s, prop, c in chart_paints(theme) if s == ".chart-bars rect" and prop == "stroke"]
    assert outlined, "bars lost the outline that separates the series"
