"""Monitoring reports: a real fortnight driven through the engine, counted week by week, then
rendered as text, CSV and HTML, with no names, numbers or message text in any of them."""
from __future__ import annotations

import csv
import io
import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import astuple
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable

import pytest
from freezegun import freeze_time
from sqlalchemy import event, select

from phonetree.db import session_scope
from phonetree.errors import PhonetreeError
from phonetree.models import Group, Inbound, Member, Message, Task
from phonetree.reports import Report, WeekRow, render_csv, render_html, render_text, weekly_report
from tests.conftest import JO, PAT, SAM, VERA, utc

WEEK1, WEEK2 = date(2026, 11, 30), date(2026, 12, 7)  # Mondays; December is GMT, so local == UTC
REPORT_AT = utc(2026, 12, 13, 20, 0)  # Sunday evening at the end of the fortnight
TICKS = ("09:00", "09:15", "09:30", "09:50", "10:00", "10:10", "10:30", "11:00", "12:00")

# What each of Vera's check-ins should count as (see the scenario below).
EXPECTED = {
    WEEK1: WeekRow(WEEK1, checkins_sent=6, answered=4, followed_up=4, resolved=3, still_open=0,
                   help_requests=2, median_reply_minutes=15.0, calls_completed=3, calls_prompted=3),
    WEEK2: WeekRow(WEEK2, checkins_sent=6, answered=4, followed_up=2, resolved=1, still_open=1,
                   help_requests=0, median_reply_minutes=5.0, calls_completed=2, calls_prompted=3),
}
TOTALS = WeekRow(WEEK1, checkins_sent=12, answered=8, followed_up=6, resolved=4, still_open=1,
                 help_requests=2, median_reply_minutes=8.5, calls_completed=5, calls_prompted=6)


def at(day: int, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return utc(2026, 12, day, hour, minute)


def run_day(ok: Callable[..., Any], ticker: Callable[[datetime], Any], day: int,
            replies: list[tuple[str, str, str]] = (), extra_ticks: tuple[str, ...] = ()) -> None:
    """One day of the engine: ticks through the morning, the replies slotted in between."""
    steps = [(hhmm, 1, None) for hhmm in TICKS + extra_ticks] + [(hhmm, 0, r) for hhmm, *r in replies]
    for hhmm, _, reply in sorted(steps, key=lambda s: (s[0], s[1])):
        if reply is None:
            ticker(at(day, hhmm))
        else:
            phone, text = reply
            with freeze_time(at(day, hhmm)):
                ok("receive", "--from", phone, text)


def reply_done_to_open_call(ok: Callable[..., Any], engine: Any, when: datetime) -> None:
    """DONE from whoever holds the one open rota call (a backup chosen by the engine)."""
    with session_scope(engine) as session:
        phone = session.scalar(select(Member.phone).join(Task, Task.assignee_id == Member.id)
                               .where(Task.kind == "call_prompt", Task.state == "asked"))
    with freeze_time(when):
        ok("receive", "--from", phone, "done thanks")


def drive_fortnight(ok: Callable[..., Any], ticker: Callable[[datetime], Any], engine: Any) -> None:
    """Vera checks in at 09:00 every day from Tue 1 Dec (Jo then Sam follow up, Margaret
    organises); Jo, Sam and Pat ring each other round a weekly ring on Wednesdays at 10:00."""
    ok("member", "add", "Oakfield", "Pat", "--phone", PAT)
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m")
        ok("rota", "add", "Oakfield", "Calls", "--kind", "ring", "--on", "wed", "--at", "10:00",
           "--members", "Jo,Sam,Pat")

    # Week 1 ------------------------------------------------------------------------------
    run_day(ok, ticker, 1, [("09:05", VERA, "ok thanks love")])              # 5 min
    run_day(ok, ticker, 2, [("09:10", VERA, "OK ta"),                        # 10 min
                            ("10:20", JO, "done, all good"), ("10:40", SAM, "done, all good"),
                            ("10:45", PAT, "Sorry I can't")])                # passed to a backup
    reply_done_to_open_call(ok, engine, at(2, "11:30"))
    run_day(ok, ticker, 3, [("09:40", JO, "done, she's fine")])              # no reply: Jo resolves
    run_day(ok, ticker, 4, [("09:02", VERA, "Can you call me please"),       # HELP on today's
                            ("09:20", JO, "done, all good")])
    run_day(ok, ticker, 5, [("09:20", VERA, "fine thanks"),                  # 20 min
                            ("15:00", VERA, "Can you call me please"),       # HELP, nothing open
                            ("15:10", JO, "done, all good")], extra_ticks=("15:05",))
    run_day(ok, ticker, 6, [("09:55", SAM, "cant today sorry"),              # chain runs out...
                            ("10:25", VERA, "OK sorry was in the garden")])  # ...late OK: 85 min

    # Week 2 ------------------------------------------------------------------------------
    run_day(ok, ticker, 7, [("09:01", VERA, "OK ta")])                       # 1 min
    run_day(ok, ticker, 8, [("08:00", VERA, "away 1")])                      # skipped: not sent
    run_day(ok, ticker, 9, [("09:03", VERA, "OK ta"),                        # 3 min
                            ("10:20", JO, "done, all good"),
                            ("10:40", SAM, "done, all good")])               # Pat never confirms
    run_day(ok, ticker, 10, [("09:35", JO, "cant today sorry"),
                             ("09:45", SAM, "done, all good")])              # no reply: Sam resolves
    run_day(ok, ticker, 11, [("09:07", VERA, "OK ta")])                      # 7 min
    run_day(ok, ticker, 12, [("09:12", VERA, "OK ta")])                      # 12 min; Pat's call expires
    run_day(ok, ticker, 13)                                                  # left alerted


def report_for(engine: Any, now: datetime = REPORT_AT, weeks: int = 2) -> Report:
    with session_scope(engine) as session:
        group = session.scalar(select(Group).where(Group.name == "Oakfield"))
        return weekly_report(session, group, now, weeks=weeks)


def test_a_fortnight_counts_exactly_week_by_week(oakfield, ok, engine, ticker):
    drive_fortnight(ok, ticker, engine)
    report = report_for(engine)
    assert report.group == "Oakfield" and report.timezone == "Europe/London"
    assert report.generated_at == REPORT_AT
    assert [w.week_start for w in report.weeks] == [WEEK1, WEEK2]
    # Week 1's median: replies of 5, 10, 20 and 85 minutes (the late one counts too).
    assert report.weeks == [EXPECTED[WEEK1], EXPECTED[WEEK2]]
    # Totals add up, but the median is over every reply: 1 3 5 7 | 10 12 20 85.
    assert report.totals == TOTALS

    # The one call passed to a backup is one call prompted, though two people were asked.
    with session_scope(engine) as session:
        asks = list(session.scalars(select(Task.state).where(Task.kind == "call_prompt")))
    assert len(asks) == 8 and asks.count("done") == 5

    # Monday 14th at noon, nobody has ticked today: its check-in is only scheduled, counts nothing.
    report = report_for(engine, now=utc(2026, 12, 14, 12, 0), weeks=4)
    assert [w.week_start for w in report.weeks] == [date(2026, 11, 23), WEEK1, WEEK2, date(2026, 12, 14)]
    assert report.weeks[0] == WeekRow(date(2026, 11, 23)) and report.weeks[3] == WeekRow(date(2026, 12, 14))
    assert report.weeks[1:3] == [EXPECTED[WEEK1], EXPECTED[WEEK2]]
    assert "Mon 14 Dec 2026 (so far)" in render_text(report)
    # One week: just the current one.
    assert [w.week_start for w in report_for(engine, weeks=1).weeks] == [WEEK2]

    # Set-based: one query for check-ins and one for rota calls, however many weeks or
    # members; never one per check-in, member or week.
    statements: list[str] = []

    def count(conn, cursor, statement, *args: Any) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    with session_scope(engine) as session:
        group = session.scalar(select(Group).where(Group.name == "Oakfield"))
        event.listen(engine, "before_cursor_execute", count)
        try:
            weekly_report(session, group, REPORT_AT, weeks=52)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2




def test_renderings_agree_and_reveal_no_one(oakfield, ok, engine, ticker):
    drive_fortnight(ok, ticker, engine)
    report = report_for(engine)
    text, sheet, page = render_text(report), render_csv(report), render_html(report)

    # CSV: parses, one row a week and a totals row, the same numbers.
    rows = list(csv.DictReader(io.StringIO(sheet)))
    assert [r["week_start"] for r in rows] == ["2026-11-30", "2026-12-07", "total"]
    assert rows[0] == {"week_start": "2026-11-30", "checkins_sent": "6", "answered": "4", "followed_up": "4",
                       "resolved": "3", "still_open": "0", "help_requests": "2",
                       "median_reply_minutes": "15.0", "calls_completed": "3", "calls_prompted": "3"}
    assert rows[1]["still_open"] == "1" and rows[1]["median_reply_minutes"] == "5.0"
    assert rows[2]["checkins_sent"] == "12" and rows[2]["median_reply_minutes"] == "8.5"

    # Text: a title line, then every number in its row, in column order.
    lines = text.splitlines()
    assert lines[0].startswith("Oakfield: check-ins and calls, 2 weeks from Mon 30 Nov 2026 to Sun 13 Dec 2026")
    assert lines_numbers(lines, "Mon 30 Nov 2026") == ["6", "4", "4", "3", "0", "2", "15.0", "3", "3"]
    assert lines_numbers(lines, "Mon 7 Dec 2026 (so far)") == ["6", "4", "2", "1", "1", "0", "5.0", "2", "3"]
    assert lines_numbers(lines, "Total") == ["12", "8", "6", "4", "1", "2", "8.5", "5", "6"]

    # HTML: well formed, accessible, self-contained, with the chart and the same numbers.
    parsed = PageParser.parse(page)
    assert parsed.html_lang == "en" and parsed.title.startswith("Oakfield: check-ins and calls")
    assert parsed.svg_count == 1 and parsed.caption
    assert parsed.bar_titles[:3] == ["Week of Mon 30 Nov 2026: 6 check-ins sent",
                                     "Week of Mon 30 Nov 2026: 4 answered by the member",
                                     "Week of Mon 30 Nov 2026: 4 followed up by a person"]
    assert len(parsed.bar_titles) == 2 * 3
    assert parsed.rows[-1] == ["Total", "12", "8", "6", "4", "1", "2", "8.5", "5", "6"]
    assert parsed.rows[1][:2] == ["Mon 30 Nov 2026", "6"]

    # Privacy: no name, no number in any form, no text anyone sent or was sent (the scenario's
    # replies are all distinctive, so none can match a column heading by chance).
    with session_scope(engine) as session:
        people = session.execute(select(Member.name, Member.phone)).all()
        bodies = [b for b in session.scalars(select(Message.body)) if b]
        bodies += [b for b in session.scalars(select(Inbound.body)) if b]
    assert len(people) == 5 and len(bodies) > 40
    for rendering in (text, sheet, page):
        for name, phone in people:
            assert name not in rendering
            for form in (phone, phone[3:], "0" + phone[3:], "0" + phone[3:7] + " " + phone[7:]):
                assert form not in rendering.replace(" ", "") and form not in rendering
        for body in bodies:
            assert body not in rendering


def test_weeks_follow_the_groups_own_calendar(ok, engine, ticker):
    """Monday 09:00 in Auckland is Sunday evening in UTC: it still belongs to Monday's week."""
    ok("group", "add", "Kowhai", "--timezone", "Pacific/Auckland")
    ok("member", "add", "Kowhai", "Ana", "--phone", VERA)
    ok("member", "add", "Kowhai", "Tui", "--phone", JO, "--role", "organiser")
    with freeze_time("2026-12-05 00:00:00"):  # Sat 5 Dec, 13:00 in Auckland
        ok("checkin", "add", "Kowhai", "Ana", "--at", "09:00", "--escalate-to", "Tui")
    sunday, monday = utc(2026, 12, 5, 20, 0), utc(2026, 12, 6, 20, 0)  # 09:00 NZDT, Sun 6 and Mon 7
    for prompt in (sunday, monday):
        ticker(prompt)
        with freeze_time(prompt + timedelta(minutes=4)):
            ok("receive", "--from", VERA, "OK")
    with session_scope(engine) as session:
        group = session.scalar(select(Group).where(Group.name == "Kowhai"))
        report = weekly_report(session, group, monday + timedelta(hours=3), weeks=2)
    assert [(w.week_start, w.checkins_sent, w.answered, w.median_reply_minutes) for w in report.weeks] == [
        (date(2026, 11, 30), 1, 1, 4.0), (date(2026, 12, 7), 1, 1, 4.0)]


def test_weeks_must_be_sensible(oakfield, engine):
    with session_scope(engine) as session:
        group = session.scalar(select(Group).where(Group.name == "Oakfield"))
        with pytest.raises(PhonetreeError, match="--weeks"):
            weekly_report(session, group, REPORT_AT, weeks=0)


def test_html_escapes_what_it_is_given():
    report = sample_report(group='Oak <b>"field"</b> & Co')
    page = render_html(report)
    assert "<b>" not in page and "Oak &lt;b&gt;&quot;field&quot;&lt;/b&gt; &amp; Co" in page
    PageParser.parse(page)
    assert render_text(report).startswith('Oak <b>"field"</b> & Co: ')  # plain text stays as given


def test_empty_report_renders(oakfield, engine):
    report = report_for(engine, weeks=3)
    assert all(astuple(w)[1:] == astuple(WeekRow(w.week_start))[1:] for w in report.weeks)
    assert report.totals.median_reply_minutes is None
    assert "-" in render_text(report).splitlines()[-3]
    assert list(csv.reader(io.StringIO(render_csv(report))))[-1] == ["total", "0", "0", "0", "0", "0", "0", "",
                                                                      "0", "0"]
    PageParser.parse(render_html(report))


# ---------------------------------------------------------------- the page in a real browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("PHONETREE_REQUIRE_CHROMIUM"),
                    reason="Chromium is not installed (CI sets PHONETREE_REQUIRE_CHROMIUM and installs it)")
def test_the_html_page_renders_in_headless_chromium(tmp_path: Path):
    assert CHROMIUM is not None, "PHONETREE_REQUIRE_CHROMIUM is set but chromium is not installed"
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()), encoding="utf-8")
    png = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         "--window-size=1000,800", page.as_uri()],
        check=True, timeout=120, capture_output=True,
    )
    assert png.exists() and png.stat().st_size > 10_000
    width, height, pixels = decode_png(png.read_bytes())
    assert (width, height) == (1000, 800)
    colours = set(pixels)
    assert len(colours) > 50  # text, tiles and bars, not a blank page
    # The chart's bars are there, in their colour-blind-safe colours.
    for colour in ((0x00, 0x72, 0xB2), (0xE6, 0x9F, 0x00), (0x00, 0x9E, 0x73)):
        assert colour in colours
    if os.environ.get("PHONETREE_REPORT_SCREENSHOT"):  # keep it for a person to look at
        shutil.copy(png, os.environ["PHONETREE_REPORT_SCREENSHOT"])


# ---------------------------------------------------------------- helpers


def lines_numbers(lines: list[str], label: str) -> list[str]:
    [line] = [line for line in lines if line.startswith(label + " ")]
    return line[len(label):].split()


def sample_report(group: str = "Oakfield") -> Report:
    """Eight plausible weeks for a group of about five, without a database."""
    data = [(28, 26, 3, 2, 0, 1, 4.0, 3, 3), (28, 25, 4, 3, 0, 0, 6.5, 3, 3), (27, 24, 5, 4, 0, 2, 5.0, 2, 3),
            (28, 27, 2, 1, 0, 0, 3.5, 3, 3), (21, 18, 4, 3, 0, 1, 7.0, 2, 3), (28, 26, 3, 2, 0, 0, 4.5, 3, 3),
            (28, 23, 6, 5, 0, 1, 8.0, 3, 3), (12, 10, 2, 1, 1, 1, 3.0, 1, 3)]
    weeks = [WeekRow(date(2026, 10, 19) + timedelta(weeks=i), *row) for i, row in enumerate(data)]
    sums = [sum(row[i] for row in data) for i in range(len(data[0]))]
    totals = WeekRow(weeks[0].week_start, *sums[:6], 4.5, *sums[7:])
    return Report(group, "Europe/London", utc(2026, 12, 10, 15, 30), weeks, totals)


class PageParser(HTMLParser):
    """Checks the page is balanced and self-contained, and collects what the tests look at."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}  # HTML's void elements

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.html_lang = ""
        self.title = ""
        self.caption = ""
        self.svg_count = 0
        self.bar_titles: list[str] = []
        self.rows: list[list[str]] = []
        self.scopes: list[str] = []

    @classmethod
    def parse(cls, page: str) -> "PageParser":
        assert page.startswith("<!DOCTYPE html>")
        parser = cls()
        parser.feed(page)
        parser.close()
        assert parser.stack == [], f"unclosed: {parser.stack}"
        assert set(parser.scopes) == {"col", "row"}
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        # Self-contained: nothing fetched from anywhere, no scripts.
        assert tag not in ("script", "link", "img", "iframe", "object")
        assert not any(k in ("src", "href") for k in found), (tag, found)
        assert "url(" not in (found.get("style") or "")
        if tag == "html":
            self.html_lang = found.get("lang") or ""
        if tag == "svg":
            self.svg_count += 1
        if tag == "th":
            assert found.get("scope") in ("col", "row")
            self.scopes.append(found["scope"] or "")
        if tag == "tr":
            self.rows.append([])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self.stack or not data.strip():
            return
        where = self.stack[-1]
        if where == "title" and "svg" not in self.stack:
            self.title += data
        elif where == "title" and "rect" in self._parents():
            self.bar_titles.append(data)
        elif where == "caption":
            self.caption += data
        elif where in ("th", "td") and "table" in self.stack:
            self.rows[-1].append(data.strip())

    def _parents(self) -> list[str]:
        return self.stack[:-1]


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    pixels: list[tuple[int, int, int]] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels.extend(zip(line[0::channels], line[1::channels], line[2::channels]))
        previous = line
    return width, height, pixels
