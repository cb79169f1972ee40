"""The monitoring report as a person reads it: an aligned text table, CSV for a spreadsheet,
and one self-contained, printable, accessible HTML page (totals, a bar chart, the table).

Only what `reports.weekly_report` counted is shown: no names, numbers or message text.
"""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from html import escape
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from phonetree.errors import PhonetreeError

if TYPE_CHECKING:  # types only: the counting does not depend on how it is shown, nor back
    from phonetree.reports import Report, WeekRow


# (field, short heading for text/HTML, CSV header = the field name)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("checkins_sent", "Sent"),
    ("answered", "Answered"),
    ("followed_up", "Followed up"),
    ("resolved", "Resolved"),
    ("still_open", "Still open"),
    ("help_requests", "Help asked"),
    ("median_reply_minutes", "Median reply (min)"),
    ("calls_completed", "Calls done"),
    ("calls_prompted", "Calls asked"),
)

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Sent", "check-ins whose text or call actually went out (paused days and days the service "
             "was down are not counted)."),
    ("Answered", "the member replied themselves, including late replies after someone had been asked."),
    ("Followed up", "nobody heard back in time, or the member asked for a call, so a named contact "
                    "or an organiser was asked to ring."),
    ("Resolved", "a contact or organiser reported that they had reached the member."),
    ("Still open", "not yet answered or closed by a person as this report was made."),
    ("Help asked", "the member asked for a call (several requests on one check-in count once)."),
    ("Median reply", "typical time from the check-in going out to the member's reply, in minutes."),
    ("Calls done / asked", "rota calls peers confirmed, of those the rota asked for; a call passed "
                           "to a backup counts once."),
)


def _minutes(value: float | None, none: str = "-") -> str:
    return none if value is None else f"{value:.1f}"


def _cell(row: WeekRow, name: str, none: str = "-") -> str:
    value = getattr(row, name)
    return _minutes(value, none) if name == "median_reply_minutes" else str(value)


def _day(value: date) -> str:
    return f"{value:%a} {value.day} {value:%b %Y}"


def _week(report: Report, row: WeekRow) -> str:
    """The week's label; the current week is marked, as its counts are still growing."""
    today = report.generated_at.astimezone(ZoneInfo(report.timezone)).date()
    current = row.week_start <= today < row.week_start + timedelta(days=7)
    return _day(row.week_start) + (" (so far)" if current else "")


def _title(report: Report) -> str:
    span = "1 week" if len(report.weeks) == 1 else f"{len(report.weeks)} weeks"
    return (f"{report.group}: check-ins and calls, {span} from {_day(report.period_start)} "
            f"to {_day(report.period_end)}")


def _generated(report: Report) -> str:
    local = report.generated_at.astimezone(ZoneInfo(report.timezone))
    return f"{local.day} {local:%b %Y %H:%M} ({report.timezone})"


def render_text(report: Report) -> str:
    """An aligned table for the terminal or an email."""
    header = ["Week starting", *(label for _, label in COLUMNS)]
    body = [[_week(report, r), *(_cell(r, name) for name, _ in COLUMNS)] for r in report.weeks]
    total = ["Total", *(_cell(report.totals, name) for name, _ in COLUMNS)]
    widths = [max(len(line[i]) for line in (header, *body, total)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # Week left-aligned, numbers right-aligned so the digits line up.
        return "  ".join([cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))])

    rule = "-" * len(line(header))
    out = [_title(report), f"Times in {report.timezone}. Counts only: no names, numbers or messages.", "",
           line(header), rule, *map(line, body), rule, line(total), "",
           f"Generated {_generated(report)}."]
    return "\n".join(out) + "\n"


def render_csv(report: Report) -> str:
    """One header, one row per week, then a totals row (week_start 'total') for spreadsheets."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["week_start", *(name for name, _ in COLUMNS)])
    for row in report.weeks:
        writer.writerow([row.week_start.isoformat(), *(_cell(row, name, "") for name, _ in COLUMNS)])
    writer.writerow(["total", *(_cell(report.totals, name, "") for name, _ in COLUMNS)])
    return buffer.getvalue()


# Okabe-Ito colours: distinguishable with every common colour-vision deficiency, and of
# different lightness so they still separate when printed in greyscale.
SERIES: tuple[tuple[str, str, str], ...] = (
    ("checkins_sent", "Check-ins sent", "#0072B2"),
    ("answered", "Answered by the member", "#E69F00"),
    ("followed_up", "Followed up by a person", "#009E73"),
)

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1b1f24;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 960px; margin: 0 auto; padding: 28px 32px 40px; background: #fff; }
h1 { font-size: 1.55rem; line-height: 1.25; margin: 0 0 4px; }
h2 { font-size: 1.1rem; margin: 28px 0 10px; }
.meta { color: #4a5360; margin: 0; }
.privacy { display: inline-block; margin: 12px 0 0; padding: 3px 10px; border-radius: 999px;
           background: #eef3f8; color: #234; font-size: .85rem; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 10px;
         margin: 22px 0 0; padding: 0; list-style: none; }
.tiles li { border: 1px solid #d9dde3; border-radius: 8px; padding: 10px 14px; }
.tiles .n { display: block; font-size: 1.6rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.tiles .l { display: block; color: #4a5360; font-size: .85rem; }
.tiles li.attention { border-color: #b3261e; border-width: 2px; }
.tiles li.attention .n { color: #b3261e; }
figure { margin: 0; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: inherit; fill: #1b1f24; }
.chart .axis-title { font-size: 13px; fill: #4a5360; }
.chart .tick { font-size: 12px; fill: #4a5360; }
.chart .value { font-size: 11px; fill: #1b1f24; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 0 0 8px; }
th, td { padding: 6px 8px; border-bottom: 1px solid #e3e6ea; }
thead th { font-size: .82rem; color: #4a5360; vertical-align: bottom; border-bottom: 2px solid #c4c9d0; }
td, thead th { text-align: right; }
thead th:first-child { text-align: left; }
tbody th, tfoot th { text-align: left; font-weight: 500; white-space: nowrap; }
tfoot th, tfoot td { font-weight: 650; border-top: 2px solid #c4c9d0; border-bottom: 0; }
td.open { color: #b3261e; font-weight: 650; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; font-size: .9rem; }
dt { font-weight: 600; }
dd { margin: 0; color: #333a44; }
footer { margin-top: 28px; color: #4a5360; font-size: .85rem; }
@media print {
  @page { margin: 14mm; }
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .privacy { border: 1px solid #999; background: none; }
  figure, table, .tiles { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _nice_max(value: int) -> tuple[int, int]:
    """A round top for the y axis and the step between its gridlines."""
    value = max(value, 1)
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if value / step <= 6:
            return (-(-value // step)) * step, step
    step = 10 ** len(str(value // 6))
    return (-(-value // step)) * step, step


def _chart(report: Report) -> str:
    """Grouped bars per week: sent, answered, followed up. The SVG is a group (not one image)
    so that each bar, an image with its own <title>, is read out with its exact number; the
    gridlines and tick numbers are hidden from screen readers as noise. The table has it all too."""
    width, height = 880, 330
    left, right, top, bottom = 60, 16, 58, 62  # top: legend, then room for labels
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((getattr(r, name) for r in report.weeks for name, _, _ in SERIES), default=0)
    y_max, step = _nice_max(peak)
    n = len(report.weeks)
    slot = plot_w / n
    bar = min(28.0, slot * 0.8 / len(SERIES))
    show_values = bar >= 14  # numbers above bars only when they fit
    label_every = max(1, -(-n // 12))  # at most ~12 week labels along the bottom

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="group" '
        f'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Check-ins sent, answered and followed up, week by week</title>',
        f'<desc id="chart-desc">A bar chart with three bars for each of {n} weeks. '
        'The same numbers are in the table below.</desc>',
    ]
    # Legend across the top (hidden from screen readers: each bar's title names its series).
    parts.append('<g aria-hidden="true">')
    x: float = left
    for _, label, colour in SERIES:
        parts.append(f'<rect x="{x}" y="12" width="14" height="14" rx="2" fill="{colour}"/>'
                     f'<text x="{x + 20}" y="24" class="tick">{escape(label)}</text>')
        x += 28 + 7.2 * len(label)
    # Gridlines and y-axis labels.
    for value in range(0, y_max + 1, step):
        gy = y(value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}" '
                     f'stroke="{"#8a939e" if value == 0 else "#e3e6ea"}" stroke-width="1"/>'
                     f'<text x="{left - 8}" y="{gy + 4:.1f}" text-anchor="end" class="tick">{value}</text>')
    parts.append(f'<text class="axis-title" transform="translate(16 {top + plot_h / 2:.0f}) rotate(-90)" '
                 'text-anchor="middle">Check-ins</text>')
    parts.append(f'<text class="axis-title" x="{left + plot_w / 2:.0f}" y="{height - 10}" '
                 'text-anchor="middle">Week starting (Monday)</text>')
    parts.append("</g>")
    for i, row in enumerate(report.weeks):
        x0 = left + slot * i + (slot - bar * len(SERIES)) / 2
        week = f"Week of {_day(row.week_start)}"
        for j, (name, label, colour) in enumerate(SERIES):
            value = getattr(row, name)
            bx, by = x0 + j * bar, y(value)
            parts.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bar - 2:.1f}" '
                         f'height="{top + plot_h - by:.1f}" fill="{colour}" role="img">'
                         f'<title>{escape(week)}: {value} {escape(label.lower())}</title></rect>')
            if show_values:
                parts.append(f'<text x="{bx + (bar - 2) / 2:.1f}" y="{by - 4:.1f}" text-anchor="middle" '
                             f'class="value" aria-hidden="true">{value}</text>')
        if i % label_every == 0:
            parts.append(f'<text x="{left + slot * (i + 0.5):.1f}" y="{top + plot_h + 20}" '
                         f'text-anchor="middle" class="tick" aria-hidden="true">'
                         f'{row.week_start.day} {row.week_start:%b}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _tiles(report: Report) -> str:
    t = report.totals
    reply = "no replies" if t.median_reply_minutes is None else f"{_minutes(t.median_reply_minutes)} min"
    tiles: list[tuple[str, str, bool]] = [
        (str(t.checkins_sent), "check-ins sent", False),
        (str(t.answered), "answered by the member" + (
            f" ({round(100 * t.answered / t.checkins_sent)}% of sent)"
            if 0 < t.answered <= t.checkins_sent else ""), False),
        (str(t.followed_up), "followed up by a person", False),
        (str(t.resolved), "resolved by a person", False),
        (str(t.still_open), "still open now", t.still_open > 0),
        (str(t.help_requests), "asked for a call", False),
        (reply, "median time to reply", False),
        (f"{t.calls_completed} of {t.calls_prompted}", "rota calls confirmed", False),
    ]
    attention = ' class="attention"'  # still-open items need a person: make them stand out
    items = "".join(
        f'<li{attention if warn else ""}><span class="n">{escape(n)}</span>'
        f'<span class="l">{escape(label)}</span></li>' for n, label, warn in tiles)
    return f'<ul class="tiles" aria-label="Totals for the period">{items}</ul>'


def _table(report: Report) -> str:
    heads = "".join(f'<th scope="col">{escape(label)}</th>' for _, label in COLUMNS)

    open_cell = ' class="open"'

    def cells(row: WeekRow) -> str:
        return "".join(
            f'<td{open_cell if name == "still_open" and row.still_open else ""}>'
            f'{escape(_cell(row, name, "–"))}</td>' for name, _ in COLUMNS)

    body = "\n".join(f'<tr><th scope="row">{escape(_week(report, r))}</th>{cells(r)}</tr>'
                     for r in report.weeks)
    caption = f"Check-ins and rota calls by week (weeks start on Monday, {report.timezone} time)"
    return (f'<table>\n<caption>{escape(caption)}</caption>\n'
            f'<thead><tr><th scope="col">Week starting</th>{heads}</tr></thead>\n'
            f'<tbody>\n{body}\n</tbody>\n'
            f'<tfoot><tr><th scope="row">Total</th>{cells(report.totals)}</tr></tfoot>\n</table>')


def render_html(report: Report) -> str:
    """One self-contained, printable, accessible page: totals, a chart and the table."""
    title = _title(report)
    definitions = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in DEFINITIONS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{escape(report.group)}: check-ins and calls</h1>
<p class="meta">{escape(_day(report.period_start))} to {escape(_day(report.period_end))}
 &middot; {len(report.weeks)} week{"s" if len(report.weeks) != 1 else ""}
 &middot; generated {escape(_generated(report))}</p>
<p class="privacy">Counts only: no names, phone numbers or messages.</p>
</header>
<section aria-labelledby="totals-h">
<h2 id="totals-h">The period at a glance</h2>
{_tiles(report)}
</section>
<section aria-labelledby="chart-h">
<h2 id="chart-h">Check-ins each week</h2>
<figure>
{_chart(report)}
</figure>
</section>
<section aria-labelledby="table-h">
<h2 id="table-h">The numbers</h2>
{_table(report)}
</section>
<section aria-labelledby="defs-h">
<h2 id="defs-h">What the numbers mean</h2>
<dl>{definitions}</dl>
</section>
<footer>Made by phonetree. A check-in belongs to the week of the day it was due.</footer>
</main>
</body>
</html>
"""


def render(report: Report, format: str) -> str:
    """The CLI's `--format`: text, csv or html."""
    renderers = {"text": render_text, "csv": render_csv, "html": render_html}
    if format not in renderers:
        raise PhonetreeError(f"unknown format {format!r}; choose text, csv or html.")
    return renderers[format](report)
