"""Bar charts as geometry for server-rendered SVG (templates/ops/_bars.html): no JS library."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import formats, timezone
from django.utils.translation import pgettext


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str  # what the bar counts, for its tooltip and the text table


@dataclass(frozen=True)
class Tick:
    pos: float
    text: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_left: int
    plot_bottom: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total: int
    peak: int


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n that is >= value (at least 1): round axis maxima."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def hourly_chart(
    points: Sequence[tuple[dt.datetime, int]], *, width: int = 720, height: int = 180, daily_ticks: bool = False
) -> BarChart:
    """One bar per hour; x labels every 3 hours, or at each local midnight when ``daily_ticks``."""
    left, right, top, bottom = 44, 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((value for _, value in points), default=0)
    axis_max = nice_ceiling(peak)
    slot = plot_w / max(len(points), 1)
    gap = min(2.0, slot * 0.2)
    bars, x_ticks = [], []
    # Translators: Django date formats of a chart's hour label ("Mon 6 Dec 14:00") and day tick ("Mon 6").
    hour_format, day_format = pgettext("chart hour", "D j M"), pgettext("chart day", "D j")
    for i, (start, value) in enumerate(points):
        local = timezone.localtime(start)
        h = plot_h * value / axis_max
        x = left + i * slot
        label = f"{formats.date_format(local, hour_format)} {local:%H}:00"
        bars.append(
            Bar(round(x + gap / 2, 2), round(top + plot_h - h, 2), round(slot - gap, 2), round(h, 2), value, label)
        )
        if daily_ticks and local.hour == 0:
            x_ticks.append(Tick(round(x, 2), formats.date_format(local, day_format)))
        elif not daily_ticks and local.hour % 3 == 0:
            x_ticks.append(Tick(round(x, 2), f"{local:%H}:00"))
    y_ticks = [Tick(round(top + plot_h - plot_h * f, 2), _short(axis_max * f)) for f in (0, 0.5, 1)]
    return BarChart(width, height, left, top + plot_h, bars, y_ticks, x_ticks, sum(v for _, v in points), peak)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"
