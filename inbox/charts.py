"""Server-rendered SVG bar charts: the geometry is computed here (pure, unit-tested), the markup
is drawn by the macro in templates/reports/_charts.html. No JavaScript, nothing from a CDN.

A chart is never the only way to read a figure: the SVG carries a <title> and a <desc> that say
what it shows, every bar has its own <title> with the value, series are named in a legend, and
the page prints the same figures in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

Number = int | float | Decimal

MAX_X_LABELS = 14  # beyond this, every other label (or fewer) is shown, all bars stay
SERIES_CLASSES = ("s0", "s1", "s2", "s3", "s4", "s5")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[Number | None]


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    css: str
    tooltip: str  # "Week of 2 Mar — Opened: 4"


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    desc: str
    width: int
    height: int
    left: float  # the plot area
    top: float
    right: float
    bottom: float
    bars: list[Bar]
    x_labels: list[Tick]  # x centre of the group, text
    y_ticks: list[Tick]  # y of the grid line, text
    legend: list[tuple[str, str]]  # (css class, series name)

    @property
    def empty(self) -> bool:
        return not any(bar.height > 0 for bar in self.bars)


def nice_ceiling(value: float) -> tuple[float, float]:
    """A round top for the axis above `value`, and its step (1, 2, 2.5 or 5 × 10^n, 4–5 steps)."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(value / step - 1e-9), step


def bar_chart(*, title: str, desc: str, labels: Sequence[str], series: Sequence[Series], stacked: bool = False,
              width: int = 640, height: int = 240, fmt: Callable[[Number], str] = str,
              integer: bool = False) -> BarChart:
    """Grouped (or stacked) vertical bars: one group per label, one bar per series."""
    left, top, right, bottom = 56.0, 12.0, width - 8.0, height - 28.0
    values = [[float(v or 0) for v in s.values] for s in series]
    n = len(labels)
    if stacked:
        peak = max((sum(col) for col in zip(*values, strict=True)), default=0.0) if values else 0.0
    else:
        peak = max((v for vs in values for v in vs), default=0.0)
    top_value, step = nice_ceiling(peak)
    if integer and step < 1:
        top_value, step = max(1.0, math.ceil(peak)), 1.0
    scale = (bottom - top) / top_value
    slot = (right - left) / max(n, 1)
    gap = slot * 0.2
    per_group = 1 if stacked else max(len(series), 1)
    bar_width = (slot - gap) / per_group
    bars: list[Bar] = []
    for i, label in enumerate(labels):
        x0 = left + i * slot + gap / 2
        base = bottom
        for k, s in enumerate(series):
            raw = s.values[i] if i < len(s.values) else None
            h = float(raw or 0) * scale
            x = x0 if stacked else x0 + k * bar_width
            y = base - h
            bars.append(Bar(round(x, 2), round(y, 2), round(bar_width, 2), round(h, 2), k,
                            SERIES_CLASSES[k % len(SERIES_CLASSES)],
                            f"{label} — {s.name}: {fmt(raw) if raw is not None else '–'}"))
            if stacked:
                base = y
    every = max(1, math.ceil(n / MAX_X_LABELS))
    x_labels = [Tick(round(left + (i + 0.5) * slot, 2), label) for i, label in enumerate(labels) if i % every == 0]
    steps = round(top_value / step)
    y_ticks: list[Tick] = []
    for j in range(steps + 1):
        text = fmt(_tidy(j * step))
        if not y_ticks or text != y_ticks[-1].text:  # a formatter that rounds (0.25 → "0 %") would repeat labels
            y_ticks.append(Tick(round(bottom - j * step * scale, 2), text))
    legend = [(SERIES_CLASSES[k % len(SERIES_CLASSES)], s.name) for k, s in enumerate(series)]
    return BarChart(title, desc, width, height, left, top, right, bottom, bars, x_labels, y_ticks, legend)


def _tidy(value: float) -> Number:
    """Axis values without float noise: 0.30000000000000004 → 0.3, 2.0 → 2."""
    rounded = round(value, 6)
    return int(rounded) if rounded == int(rounded) else rounded
