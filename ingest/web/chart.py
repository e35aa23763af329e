"""Articles stored per day per feed as a stacked bar chart, drawn here as SVG shapes: the
page needs no script, and every bar says its numbers (a tooltip, and a table beside)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# Distinguishable colours, also for the common colour blindnesses (Okabe and Ito).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 40, 24, 10


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # "2025-03-14, World: 12"


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (colour, feed name)
    ticks: list[tuple[float, str]]  # y-axis: (y, count)
    days: list[tuple[float, str]]  # x-axis labels: (x, "03-14")
    table: list[tuple[str, dict[str, int]]]  # (day, {feed: count}) for the table
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM


def draw(
    counts: list[tuple[date, int, int]], names: dict[int, str], today: date, days: int
) -> Chart:
    """The chart of ``counts`` (day, feed id, articles) over the ``days`` up to ``today``."""
    span = [today - timedelta(days=days - 1 - i) for i in range(days)]
    feeds = sorted({feed for _, feed, _ in counts}, key=lambda f: names.get(f, str(f)))
    colour = {feed: PALETTE[i % len(PALETTE)] for i, feed in enumerate(feeds)}
    per_day: dict[date, dict[int, int]] = {d: {} for d in span}
    for day, feed, count in counts:
        if day in per_day:
            per_day[day][feed] = per_day[day].get(feed, 0) + count
    peak = max((sum(v.values()) for v in per_day.values()), default=0) or 1
    plot = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / days
    bars: list[Bar] = []
    for i, day in enumerate(span):
        y = float(HEIGHT - BOTTOM)
        for feed in feeds:
            count = per_day[day].get(feed, 0)
            if not count:
                continue
            height = plot * count / peak
            y -= height
            label = f"{day.isoformat()}, {names.get(feed, feed)}: {count}"
            bars.append(Bar(LEFT + i * step + 1, y, step - 2, height, colour[feed], label))
    ticks = [(HEIGHT - BOTTOM - plot * n / peak, str(n)) for n in sorted({0, peak // 2, peak})]
    labels = [(LEFT + i * step + step / 2, d.strftime("%m-%d")) for i, d in enumerate(span)]
    table = [
        (d.isoformat(), {names.get(f, str(f)): c for f, c in per_day[d].items()})
        for d in span
        if per_day[d]
    ]
    return Chart(
        bars=bars,
        legend=[(colour[f], names.get(f, str(f))) for f in feeds],
        ticks=ticks,
        days=labels[:: max(1, days // 10)],
        table=table,
        total=sum(c for _, _, c in counts),
    )
