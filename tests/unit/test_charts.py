"""The SVG bar charts' geometry: round axes, bars in proportion, stacked and grouped layouts,
labels thinned when there are many, and the accessible markup the macro draws from it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from jinja2 import Environment, FileSystemLoader

from inbox.charts import MAX_X_LABELS, Series, bar_chart, nice_ceiling

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("peak", "top", "step"), [
    (0, 1.0, 0.25), (3, 3, 1), (7, 8, 2), (9.5, 10, 2.5), (42, 60, 20), (137.5, 150, 50), (1000, 1000, 250)])
def test_the_axis_ends_on_a_round_number_at_or_above_the_peak(peak, top, step):
    assert nice_ceiling(peak) == (top, step)


def test_grouped_bars_are_proportional_and_side_by_side():
    chart = bar_chart(title="T", desc="D", labels=["W1", "W2"], integer=True,
                      series=[Series("Opened", [2, 4]), Series("Closed", [3, 1])], width=400, height=200)
    plot = chart.bottom - chart.top
    heights = [b.height for b in chart.bars]
    assert heights == [round(plot * 2 / 4, 2), round(plot * 3 / 4, 2), round(plot, 2), round(plot / 4, 2)]
    w1_opened, w1_closed = chart.bars[0], chart.bars[1]
    assert w1_closed.x == pytest.approx(w1_opened.x + w1_opened.width, abs=0.02)  # side by side
    assert all(b.y + b.height == pytest.approx(chart.bottom, abs=0.02) for b in chart.bars)
    assert [t.text for t in chart.y_ticks] == ["0", "1", "2", "3", "4"]
    assert chart.bars[2].tooltip == "W2 — Opened: 4" and chart.legend == [("s0", "Opened"), ("s1", "Closed")]


def test_stacked_bars_pile_up_and_the_axis_fits_the_total():
    chart = bar_chart(title="T", desc="D", labels=["Alice"], stacked=True, integer=True,
                      series=[Series(f"{s}/5", [n]) for s, n in zip(range(1, 6), [0, 1, 0, 2, 5], strict=True)])
    assert chart.y_ticks[-1].text == "8"
    drawn = [b for b in chart.bars if b.height]
    assert [b.series for b in drawn] == [1, 3, 4]
    assert drawn[1].y + drawn[1].height == pytest.approx(drawn[0].y, abs=0.02)  # each on the previous one
    assert drawn[-1].y == pytest.approx(chart.top, abs=0.02)  # 8 of 8: the top of the plot


def test_decimals_and_missing_values_and_an_empty_chart():
    chart = bar_chart(title="T", desc="D", labels=["a", "b"], series=[Series("h", [Decimal("1.5"), None])],
                      fmt=lambda v: f"{v} h")
    assert chart.bars[1].height == 0 and chart.bars[1].tooltip == "b — h: –"
    assert [t.text for t in chart.y_ticks] == ["0 h", "0.5 h", "1 h", "1.5 h"]
    assert bar_chart(title="T", desc="D", labels=["a"], series=[Series("x", [0])]).empty



def test_an_axis_formatter_that_rounds_never_repeats_a_label():
    # An empty chart's axis runs 0, 0.25 … 1; shown as whole percents it would read 0 %, 0 %, 1 %, 1 %.
    chart = bar_chart(title="T", desc="D", labels=["a"], series=[Series("x", [0])], fmt=lambda v: f"{round(v)} %")
    assert [t.text for t in chart.y_ticks] == ["0 %", "1 %"]
    assert chart.y_ticks[0].position > chart.y_ticks[1].position  # still drawn from the bottom up

def test_many_periods_keep_every_bar_but_thin_the_labels():
    labels = [f"S{i}" for i in range(30)]
    chart = bar_chart(title="T", desc="D", labels=labels, series=[Series("n", list(range(30)))])
    assert len(chart.bars) == 30 and len(chart.x_labels) <= MAX_X_LABELS
    assert [t.text for t in chart.x_labels][:3] == ["S0", "S3", "S6"]


def test_the_macro_draws_an_accessible_svg():
    env = Environment(loader=FileSystemLoader(ROOT / "inbox" / "templates"), extensions=["jinja2.ext.i18n"], autoescape=True)
    env.install_null_translations(newstyle=True)
    macro = env.get_template("reports/_charts.html").module.bar_chart
    chart = bar_chart(title="Tickets & co", desc="4 opened", labels=["W1"], series=[Series("Opened", [4]), Series("Closed", [0])])
    svg = str(macro(chart, "c1"))
    assert 'role="img" aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Tickets &amp; co</title>' in svg and '<desc id="c1-desc">4 opened</desc>' in svg
    assert svg.count("<rect class=\"s0\" x=") == 1 and "<title>W1 — Opened: 4</title>" in svg
    assert 'class="s1"' in svg  # the legend still names the empty series
    assert "No data in this range" not in svg
