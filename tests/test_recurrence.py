"""Tests for the rule parsers (phonetree.days, times_of_day, durations, zones), local_date and
local_instant (phonetree.local_times), and occurrences() (phonetree.recurrence) across
daylight-saving changes.

Reference dates (2026): Europe/London goes forward 03-29 01:00 GMT -> 02:00 BST and back
10-25 02:00 BST -> 01:00 GMT; America/New_York goes forward 03-08 02:00 EST -> 03:00 EDT and
back 11-01 02:00 EDT -> 01:00 EST.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import freezegun.config
import pytest
from apscheduler.triggers.cron import CronTrigger
from freezegun import freeze_time
from freezegun.api import FakeDatetime

from phonetree.errors import PhonetreeError
from phonetree import recurrence
from phonetree.days import parse_days
from phonetree.durations import format_duration, parse_duration
from phonetree.local_times import local_date, local_instant
from phonetree.recurrence import occurrences
from phonetree.times_of_day import parse_time
from phonetree.zones import parse_timezone

UTC = timezone.utc
LONDON = "Europe/London"
NEW_YORK = "America/New_York"


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def wall(instant: datetime, tz: str) -> str:
    """The instant as a clock on the wall in `tz` would show it, with the zone's abbreviation."""
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def dates_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# ---------------------------------------------------------------- parse_time


@pytest.mark.parametrize("text, expected", [
    ("9:00", "09:00"),
    ("09:00", "09:00"),
    ("0:00", "00:00"),
    ("00:00", "00:00"),
    ("23:59", "23:59"),
    ("12:30", "12:30"),
    ("  7:05 ", "07:05"),  # stray spaces from a form or a shell are harmless
])
def test_parse_time_accepts_h_mm_and_hh_mm(text: str, expected: str) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", [
    "25:00", "24:00", "12:60", "9", "soon", "", "   ", "0900", "9:5", "09:00:00", "9.30", "9h30",
    "-1:00", "123:00", "٠٩:٣٠",  # non-ASCII digits are not stored
])
def test_parse_time_rejects_non_times_and_says_how_to_write_one(text: str) -> None:
    with pytest.raises(PhonetreeError) as err:
        parse_time(text)
    message = str(err.value)
    assert f"'{text.strip()}' is not a time" in message
    assert "HH:MM" in message and "09:30" in message


def test_parse_time_message_is_the_one_the_organiser_sees() -> None:
    with pytest.raises(PhonetreeError, match=r"^'25:00' is not a time; write it as HH:MM, e\.g\. 09:30\.$"):
        parse_time("25:00")


@pytest.mark.parametrize("text", ["9am", "9:00pm", "9:00 a.m.", "11PM"])
def test_parse_time_points_am_pm_at_the_24_hour_clock(text: str) -> None:
    with pytest.raises(PhonetreeError, match="24-hour clock"):
        parse_time(text)


# ---------------------------------------------------------------- parse_days


@pytest.mark.parametrize("text, expected", [
    ("daily", "daily"),
    ("DAILY", "daily"),
    ("weekdays", "weekdays"),
    ("Weekends", "weekends"),
    ("mon", "mon"),
    ("Monday", "mon"),
    ("mon,wed,fri", "mon,wed,fri"),
    ("fri,mon,wed", "mon,wed,fri"),              # week order
    ("mon,Monday,mon", "mon"),                    # no duplicates
    ("Monday, Wednesday, Friday", "mon,wed,fri"),
    ("Tuesday Thursday", "tue,thu"),              # spaces separate as well as commas
    ("tues,thurs,weds", "tue,wed,thu"),
    ("mondays,fridays", "mon,fri"),
    ("sun,sat", "weekends"),                      # equal sets get one spelling
    ("mon-fri", "weekdays"),
    ("Monday - Friday", "weekdays"),
    ("mon-sun", "daily"),
    ("mon,tue,wed,thu,fri,sat,sun", "daily"),
    ("mon-wed", "mon,tue,wed"),
    ("mon-wed,fri", "mon,tue,wed,fri"),
    ("tue-tue", "tue"),
    ("fri-mon", "mon,fri,sat,sun"),               # a range may wrap round the weekend
    ("sat-tue", "mon,tue,sat,sun"),
    ("weekends,wed", "wed,sat,sun"),
    ("weekdays,sat", "mon,tue,wed,thu,fri,sat"),
    ("mon,", "mon"),                              # a trailing comma is harmless
])
def test_parse_days_canonical_forms(text: str, expected: str) -> None:
    assert parse_days(text) == expected


@pytest.mark.parametrize("text", ["mon-fri", "weekdays", "Monday-Friday"])
def test_parse_days_is_idempotent(text: str) -> None:
    canonical = parse_days(text)
    assert parse_days(canonical) == canonical


@pytest.mark.parametrize("text, bad_word", [
    ("funday", "funday"),
    ("mon,funday", "funday"),
    ("weekly", "weekly"),
    ("1,2", "1"),
    ("mo", "mo"),
    ("mon-funday", "funday"),
])
def test_parse_days_names_the_unknown_word(text: str, bad_word: str) -> None:
    with pytest.raises(PhonetreeError) as err:
        parse_days(text)
    assert str(err.value) == (f"'{bad_word}' is not a day; use daily, weekdays, weekends, "
                              "or days like mon,wed,fri or mon-fri.")


@pytest.mark.parametrize("text", ["mon-", "-fri", "mon-wed-fri", "mon--fri"])
def test_parse_days_rejects_broken_ranges(text: str) -> None:
    with pytest.raises(PhonetreeError, match=r"is not a range of days; write it like mon-fri\."):
        parse_days(text)


@pytest.mark.parametrize("text", ["", "   ", ",", " , "])
def test_parse_days_rejects_nothing(text: str) -> None:
    with pytest.raises(PhonetreeError, match="say which days"):
        parse_days(text)


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90),
    ("30m", 1800),
    ("2h", 7200),
    ("1d", 86400),
    ("1h30m", 5400),
    ("90m", 5400),
    ("1d2h3m4s", 86400 + 7200 + 180 + 4),
    ("1H30M", 5400),
    ("1h 30m", 5400),
    (" 45s ", 45),
    ("0h5m", 300),
])
def test_parse_duration_good(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, hint", [
    ("soon", "is not a length of time"),
    ("-5m", "is not a length of time"),
    ("1.5h", "is not a length of time"),
    ("30 minutes", "is not a length of time"),
    ("m", "is not a length of time"),
    ("30m1h", "is not a length of time"),  # largest unit first
    ("1h1h", "is not a length of time"),
    ("30x", "is not a length of time"),
    ("0m", "above zero"),
    ("0h0m0s", "above zero"),
    ("", "give a length of time"),
    ("  ", "give a length of time"),
])
def test_parse_duration_bad(text: str, hint: str) -> None:
    with pytest.raises(PhonetreeError, match=hint) as err:
        parse_duration(text)
    assert "30m" in str(err.value)  # every message shows a working example


@pytest.mark.parametrize("text", ["45", "0"])
def test_parse_duration_asks_for_a_unit_instead_of_guessing(text: str) -> None:
    with pytest.raises(PhonetreeError) as err:
        parse_duration(text)
    assert str(err.value) == (f"'{text}' has no unit; add one, e.g. {text}m for minutes "
                              f"or {text}s for seconds.")


@pytest.mark.parametrize("seconds, text", [
    (1, "1s"),
    (90, "1m30s"),
    (1800, "30m"),
    (3600, "1h"),
    (5400, "1h30m"),
    (86400, "1d"),
    (90000, "1d1h"),
    (86400 + 1, "1d1s"),
    (2 * 86400 + 3 * 3600 + 4 * 60 + 5, "2d3h4m5s"),
    (0, "0s"),
])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 3599, 3600, 3661, 5400, 86399, 86400, 90061, 7 * 86400])
def test_format_duration_round_trips_through_parse_duration(seconds: int) -> None:
    # The CLI shows a stored duration; the organiser must be able to type it back in.
    assert parse_duration(format_duration(seconds)) == seconds


# ---------------------------------------------------------------- time zones


@pytest.mark.parametrize("name, canonical", [
    ("Europe/London", "Europe/London"),
    ("America/New_York", "America/New_York"),
    ("UTC", "UTC"),
    ("Asia/Kolkata", "Asia/Kolkata"),
    (" europe/london ", "Europe/London"),    # case and spaces forgiven, stored canonically
    ("AMERICA/NEW_YORK", "America/New_York"),
])
def test_parse_timezone_good(name: str, canonical: str) -> None:
    assert parse_timezone(name) == canonical
    ZoneInfo(canonical)  # and it really loads


def test_parse_timezone_message_is_the_one_the_organiser_sees() -> None:
    with pytest.raises(PhonetreeError) as err:
        parse_timezone("Mars/Base")
    assert str(err.value) == ("unknown time zone 'Mars/Base'; use a name like Europe/London "
                              "or America/New_York.")


@pytest.mark.parametrize("name", ["", "London", "Europe", "Europe/Londn", "../../etc/passwd",
                                  "/usr/share/zoneinfo/UTC", "BST", "GMT+1:00"])
def test_parse_timezone_bad(name: str) -> None:
    with pytest.raises(PhonetreeError, match="unknown time zone"):
        parse_timezone(name)


# ---------------------------------------------------------------- local_date


@pytest.mark.parametrize("instant, tz, expected", [
    (utc(2026, 6, 1, 23, 30), LONDON, date(2026, 6, 2)),       # BST: already tomorrow
    (utc(2026, 1, 1, 23, 30), LONDON, date(2026, 1, 1)),       # GMT: still today
    (utc(2026, 6, 2, 3, 30), NEW_YORK, date(2026, 6, 1)),      # still yesterday evening
    (utc(2026, 6, 1, 15, 0), "Asia/Tokyo", date(2026, 6, 2)),
    (datetime(2026, 6, 1, 23, 30, tzinfo=ZoneInfo(NEW_YORK)), NEW_YORK, date(2026, 6, 1)),
    (datetime(2026, 6, 1, 23, 30, tzinfo=ZoneInfo(NEW_YORK)), LONDON, date(2026, 6, 2)),
])
def test_local_date(instant: datetime, tz: str, expected: date) -> None:
    assert local_date(instant, tz) == expected


def test_local_date_refuses_naive_datetimes() -> None:
    # A naive value would silently be read as the server's own local time.
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(datetime(2026, 6, 1, 12, 0), LONDON)


def test_local_date_unknown_zone_is_an_organiser_error() -> None:
    with pytest.raises(PhonetreeError, match="unknown time zone 'Mars/Base'"):
        local_date(utc(2026, 6, 1), "Mars/Base")


# ---------------------------------------------------------------- occurrences: DST, exact


DST_CASES = [
    # 09:00 stays 09:00 on the wall either side of each change.
    pytest.param("daily", "09:00", LONDON, utc(2026, 3, 28), utc(2026, 3, 31),
                 [utc(2026, 3, 28, 9), utc(2026, 3, 29, 8), utc(2026, 3, 30, 8)], id="london-0900-spring"),
    pytest.param("daily", "09:00", LONDON, utc(2026, 10, 24), utc(2026, 10, 27),
                 [utc(2026, 10, 24, 8), utc(2026, 10, 25, 9), utc(2026, 10, 26, 9)], id="london-0900-autumn"),
    pytest.param("daily", "09:00", NEW_YORK, utc(2026, 3, 7), utc(2026, 3, 10),
                 [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)], id="ny-0900-spring"),
    pytest.param("daily", "09:00", NEW_YORK, utc(2026, 10, 31), utc(2026, 11, 3),
                 [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)], id="ny-0900-autumn"),
    # Skipped time: once, shifted forward by the gap (01:30 GMT-reading = 02:30 BST = 01:30 UTC).
    pytest.param("daily", "01:30", LONDON, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12),
                 [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)], id="london-0130-gap"),
    pytest.param("daily", "01:00", LONDON, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12),
                 [utc(2026, 3, 29, 1, 0)], id="london-0100-gap-start"),
    pytest.param("daily", "02:30", NEW_YORK, utc(2026, 3, 6, 12), utc(2026, 3, 9, 12),
                 [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)], id="ny-0230-gap"),
    pytest.param("daily", "02:00", NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 8, 12),
                 [utc(2026, 3, 8, 7, 0)], id="ny-0200-gap-start"),
    # Repeated time: once, the first (summer-time) one.
    pytest.param("daily", "01:30", LONDON, utc(2026, 10, 23, 12), utc(2026, 10, 26, 12),
                 [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)], id="london-0130-overlap"),
    pytest.param("daily", "01:00", LONDON, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12),
                 [utc(2026, 10, 25, 0, 0)], id="london-0100-overlap-start"),
    pytest.param("daily", "01:30", NEW_YORK, utc(2026, 10, 30, 12), utc(2026, 11, 2, 12),
                 [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)], id="ny-0130-overlap"),
    # Times at the edges of the day, either side of a change.
    pytest.param("daily", "00:00", LONDON, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12),
                 [utc(2026, 3, 28, 0), utc(2026, 3, 29, 0), utc(2026, 3, 29, 23)], id="london-midnight-spring"),
    pytest.param("daily", "23:59", LONDON, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12),
                 [utc(2026, 10, 24, 22, 59), utc(2026, 10, 25, 23, 59)], id="london-2359-autumn"),
    pytest.param("daily", "00:00", NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12),
                 [utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)], id="ny-midnight-autumn"),
]


@pytest.mark.parametrize("days, at, tz, after, until, expected", DST_CASES)
def test_occurrences_across_dst_changes(days: str, at: str, tz: str, after: datetime,
                                        until: datetime, expected: list[datetime]) -> None:
    assert occurrences(days, at, tz, after, until) == expected


@pytest.mark.parametrize("tz, at, day, shown", [
    # Documented choice for a skipped time: shifted forward by the gap.
    (LONDON, "01:30", date(2026, 3, 29), "2026-03-29 02:30 BST"),
    (LONDON, "01:00", date(2026, 3, 29), "2026-03-29 02:00 BST"),
    (LONDON, "01:59", date(2026, 3, 29), "2026-03-29 02:59 BST"),
    (NEW_YORK, "02:30", date(2026, 3, 8), "2026-03-08 03:30 EDT"),
    # A repeated time fires at the first of the two.
    (LONDON, "01:30", date(2026, 10, 25), "2026-10-25 01:30 BST"),
    (NEW_YORK, "01:30", date(2026, 11, 1), "2026-11-01 01:30 EDT"),
])
def test_wall_clock_reading_of_the_change_day_fire(tz: str, at: str, day: date, shown: str) -> None:
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))
    fires = occurrences("daily", at, tz, start - timedelta(seconds=1), start + timedelta(days=1))
    assert [wall(f, tz) for f in fires] == [shown]


# Starting a window *inside* the change matters: the planner resumes from wherever it stopped.
@pytest.mark.parametrize("tz, at, after, until, expected", [
    # after = 02:15 BST, before the shifted 01:30 fire at 02:30 BST: that fire is still to come.
    (LONDON, "01:30", utc(2026, 3, 29, 1, 15), utc(2026, 3, 30, 12),
     [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]),
    (NEW_YORK, "02:30", utc(2026, 3, 8, 7, 15), utc(2026, 3, 9, 12),
     [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]),
    # after falls between the two 01:30s: the day's one fire has happened; no second one.
    (LONDON, "01:30", utc(2026, 10, 25, 0, 45), utc(2026, 10, 26, 12), [utc(2026, 10, 26, 1, 30)]),
    (NEW_YORK, "01:30", utc(2026, 11, 1, 6, 0), utc(2026, 11, 2, 12), [utc(2026, 11, 2, 6, 30)]),
    # after is exactly the first 01:30: the second one (an hour later) must not fire either.
    (LONDON, "01:30", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 3), []),
])
def test_occurrences_starting_inside_a_change(tz: str, at: str, after: datetime, until: datetime,
                                              expected: list[datetime]) -> None:
    assert occurrences("daily", at, tz, after, until) == expected


@pytest.mark.parametrize("after", [utc(2026, 10, 25, 1, 5), utc(2026, 10, 25, 1, 30)])
def test_a_frozen_clock_starting_in_the_second_pass_of_the_hour(after: datetime) -> None:
    # freezegun hands back its own datetimes (here from a frozen `now`); their arithmetic drops
    # `fold`, and a start at 01:05 GMT read as 01:05 BST made the trigger fire before it.
    with freeze_time(after):
        frozen_after = datetime.now(UTC)
        assert isinstance(frozen_after, FakeDatetime)
        assert occurrences("daily", "01:45", LONDON, frozen_after, utc(2026, 10, 26, 12)) == [
            utc(2026, 10, 26, 1, 45)]


def test_a_trigger_whose_datetimes_lose_their_fold_fails_rather_than_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest keeps freezegun away from APScheduler; let in, its datetimes lose `fold` inside the
    # trigger over the hour the clocks go back, and asking for the next fire went round for ever.
    settings = freezegun.config.settings
    monkeypatch.setattr(settings, "default_ignore_list",
                        [name for name in settings.default_ignore_list if name != "apscheduler"])
    with freeze_time("2026-10-24 12:00"), pytest.raises(RuntimeError, match="lost its fold"):
        occurrences("daily", "01:30", LONDON, utc(2026, 10, 24, 12), utc(2026, 10, 26))


@pytest.mark.parametrize("tz", [LONDON, NEW_YORK])
@pytest.mark.parametrize("at", ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "09:00", "23:59"])
def test_split_windows_add_up_to_one_window(tz: str, at: str) -> None:
    # The planner asks in consecutive windows (after = last `until`); cutting anywhere, even in
    # the middle of a change, must neither lose nor repeat a fire.
    spring = {LONDON: utc(2026, 3, 28, 12), NEW_YORK: utc(2026, 3, 7, 12)}[tz]
    autumn = {LONDON: utc(2026, 10, 24, 12), NEW_YORK: utc(2026, 10, 31, 12)}[tz]
    for start in (spring, autumn):
        end = start + timedelta(days=2)
        whole = occurrences("daily", at, tz, start, end)
        assert len(whole) == 2
        for k in range(0, 48 * 4):
            cut = start + timedelta(minutes=15 * k)
            assert occurrences("daily", at, tz, start, cut) + occurrences("daily", at, tz, cut, end) == whole


# ---------------------------------------------------------------- occurrences: a whole year


YEAR_ZONES = [
    LONDON, NEW_YORK,
    "America/Santiago",     # changes at midnight: 00:00 -> 01:00, and 00:00 -> 23:00 the day before
    "America/Nuuk",         # goes forward 23:00 -> 00:00: a late time would spill into tomorrow
    "Australia/Lord_Howe",  # a half-hour change
    "Asia/Kolkata",         # no change at all
]


@pytest.mark.parametrize("tz", YEAR_ZONES)
@pytest.mark.parametrize("at", ["00:00", "00:30", "01:30", "02:15", "02:30", "09:00", "23:30", "23:59"])
def test_every_day_of_2026_fires_exactly_once_on_its_own_date(tz: str, at: str) -> None:
    zone = ZoneInfo(tz)
    fires = occurrences("daily", at, tz, utc(2025, 12, 31, 12), utc(2027, 1, 1, 12))
    fires = [f for f in fires if local_date(f, tz).year == 2026]
    # One per calendar day, each on that day, ascending: the planner keys rows on the local date.
    assert [local_date(f, tz) for f in fires] == dates_between(date(2026, 1, 1), date(2026, 12, 31))
    assert fires == sorted(fires)
    wanted = time.fromisoformat(at)
    for fire in fires:
        assert fire.tzinfo is UTC
        day = local_date(fire, tz)
        first = datetime.combine(day, wanted, tzinfo=zone)  # fold=0: the first reading
        exists = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == first.replace(tzinfo=None)
        if exists:
            # The wall clock shows the requested time, and it's the earlier of two if repeated.
            assert fire.astimezone(zone).time() == wanted
            assert fire == first.astimezone(UTC)
            assert fire <= first.replace(fold=1).astimezone(UTC)
        else:
            # Skipped: moved by exactly the gap, forward or (if forward leaves the day) back.
            assert fire.astimezone(zone).time() != wanted
            readings = {first.astimezone(UTC), first.replace(fold=1).astimezone(UTC)}
            assert fire in readings
            if local_date(first.astimezone(UTC), tz) == day:
                assert fire == first.astimezone(UTC)  # forward is preferred


def test_gap_at_midnight_does_not_lose_the_day() -> None:
    # America/Santiago goes 00:00 -> 01:00 on 2026-09-06; APScheduler alone skips that date.
    tz = "America/Santiago"
    fires = occurrences("daily", "00:30", tz, utc(2026, 9, 4, 12), utc(2026, 9, 7, 12))
    assert [wall(f, tz) for f in fires] == ["2026-09-05 00:30 -04", "2026-09-06 01:30 -03", "2026-09-07 00:30 -03"]


def test_gap_ending_at_midnight_stays_on_its_own_day() -> None:
    # America/Nuuk goes 23:00 -> 00:00 on Saturday 2026-03-28. Shifting 23:30 forward would land
    # on Sunday and take Sunday's slot, so it is shifted back by the gap to 22:30 Saturday.
    tz = "America/Nuuk"
    fires = occurrences("daily", "23:30", tz, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    assert [wall(f, tz) for f in fires] == ["2026-03-27 23:30 -02", "2026-03-28 22:30 -02", "2026-03-29 23:30 -01"]


def test_overlap_at_midnight_fires_once() -> None:
    # America/Santiago goes back 00:00 -> 23:00 on 2026-04-05, so 23:30 on the 4th happens twice.
    tz = "America/Santiago"
    fires = occurrences("daily", "23:30", tz, utc(2026, 4, 3, 12), utc(2026, 4, 6, 12))
    assert [wall(f, tz) for f in fires] == ["2026-04-03 23:30 -03", "2026-04-04 23:30 -03", "2026-04-05 23:30 -04"]


def test_a_date_the_zone_skipped_has_no_fire() -> None:
    # Samoa jumped the date line: 2011-12-30 never happened in Pacific/Apia.
    tz = "Pacific/Apia"
    fires = occurrences("daily", "09:00", tz, utc(2011, 12, 28), utc(2012, 1, 1))  # to 14:00 local on 01-01
    assert [local_date(f, tz) for f in fires] == [date(2011, 12, 28), date(2011, 12, 29),
                                                  date(2011, 12, 31), date(2012, 1, 1)]
    assert all(f.astimezone(ZoneInfo(tz)).time() == time(9) for f in fires)


# ---------------------------------------------------------------- occurrences: day rules


def test_seven_day_window_exact_list() -> None:
    # Fri 2026-03-27 to Fri 2026-04-03, over the London spring change: weekdays skip the weekend
    # (which is when the clocks change) and 09:00 moves from 09:00 UTC to 08:00 UTC.
    assert occurrences("weekdays", "09:00", LONDON, utc(2026, 3, 27), utc(2026, 4, 3)) == [
        utc(2026, 3, 27, 9),
        utc(2026, 3, 30, 8),
        utc(2026, 3, 31, 8),
        utc(2026, 4, 1, 8),
        utc(2026, 4, 2, 8),
    ]


def test_seven_day_window_exact_list_daily_through_the_gap() -> None:
    assert occurrences("daily", "01:30", LONDON, utc(2026, 3, 26, 12), utc(2026, 4, 2, 12)) == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 30),  # 02:30 BST: the skipped 01:30, once
        utc(2026, 3, 30, 0, 30),
        utc(2026, 3, 31, 0, 30),
        utc(2026, 4, 1, 0, 30),
        utc(2026, 4, 2, 0, 30),
    ]


# 2026-06-01 is a Monday.
@pytest.mark.parametrize("days, weekdays", [
    ("daily", [0, 1, 2, 3, 4, 5, 6]),
    ("weekdays", [0, 1, 2, 3, 4]),
    ("weekends", [5, 6]),
    ("mon,wed", [0, 2]),
    ("sun", [6]),
    ("tue,thu,sat", [1, 3, 5]),
    ("fri-mon", [0, 4, 5, 6]),
])
@pytest.mark.parametrize("tz", [LONDON, NEW_YORK, "Asia/Tokyo"])
def test_only_the_chosen_days_fire(days: str, weekdays: list[int], tz: str) -> None:
    start = datetime(2026, 6, 1, tzinfo=ZoneInfo(tz))
    fires = occurrences(days, "09:00", tz, start, start + timedelta(weeks=2))
    got = [local_date(f, tz) for f in fires]
    expected = [d for d in dates_between(date(2026, 6, 1), date(2026, 6, 14)) if d.weekday() in weekdays]
    assert got == expected
    assert all(f.astimezone(ZoneInfo(tz)).time() == time(9) for f in fires)


@pytest.mark.parametrize("at", ["00:00", "23:59"])
def test_midnight_and_last_minute_on_weekdays(at: str) -> None:
    start = datetime(2026, 6, 1, tzinfo=ZoneInfo(NEW_YORK))  # Monday 00:00
    # One second either side keeps this Monday's 00:00 in and next Monday's out.
    fires = occurrences("weekdays", at, NEW_YORK, start - timedelta(seconds=1),
                        start + timedelta(days=7, seconds=-1))
    shown = [f.astimezone(ZoneInfo(NEW_YORK)).strftime("%a %H:%M") for f in fires]
    assert shown == [f"{d} {at}" for d in ("Mon", "Tue", "Wed", "Thu", "Fri")]


# ---------------------------------------------------------------- occurrences: the window


def test_after_is_exclusive_and_until_inclusive() -> None:
    nine = utc(2026, 1, 5, 9)  # 09:00 GMT
    assert occurrences("daily", "09:00", LONDON, nine, nine + timedelta(days=1)) == [nine + timedelta(days=1)]
    assert occurrences("daily", "09:00", LONDON, nine - timedelta(microseconds=1), nine) == [nine]
    assert occurrences("daily", "09:00", LONDON, nine - timedelta(days=1), nine - timedelta(microseconds=1)) == []


@pytest.mark.parametrize("after, until", [
    (utc(2026, 1, 5, 10), utc(2026, 1, 5, 10)),
    (utc(2026, 1, 6), utc(2026, 1, 5)),
])
def test_empty_or_backwards_window_is_empty(after: datetime, until: datetime) -> None:
    assert occurrences("daily", "09:00", LONDON, after, until) == []


def test_window_bounds_may_be_in_any_zone_and_results_are_utc() -> None:
    ny = ZoneInfo(NEW_YORK)
    fires = occurrences("daily", "09:00", LONDON, datetime(2026, 1, 4, 19, 0, tzinfo=ny),
                        datetime(2026, 1, 5, 4, 0, tzinfo=ny))  # 00:00Z to 09:00Z on the 5th
    assert fires == [utc(2026, 1, 5, 9)]
    assert fires[0].tzinfo is UTC


def test_long_window_counts() -> None:
    fires = occurrences("weekdays", "09:00", NEW_YORK, utc(2026, 1, 1), utc(2027, 1, 1))
    assert len(fires) == 261  # weekdays in 2026
    assert len(set(fires)) == len(fires)


@pytest.mark.parametrize("bound", ["after", "until"])
def test_naive_window_bounds_are_refused(bound: str) -> None:
    after, until = utc(2026, 1, 1), utc(2026, 1, 2)
    if bound == "after":
        after = after.replace(tzinfo=None)
    else:
        until = until.replace(tzinfo=None)
    with pytest.raises(ValueError, match=f"{bound} must be timezone-aware"):
        occurrences("daily", "09:00", LONDON, after, until)


@pytest.mark.parametrize("days, at, tz, message", [
    ("funday", "09:00", LONDON, "'funday' is not a day"),
    ("daily", "25:00", LONDON, "'25:00' is not a time"),
    ("daily", "09:00", "Mars/Base", "unknown time zone 'Mars/Base'"),
])
def test_bad_rules_are_organiser_errors(days: str, at: str, tz: str, message: str) -> None:
    with pytest.raises(PhonetreeError, match=message):
        occurrences(days, at, tz, utc(2026, 1, 1), utc(2026, 1, 2))


def test_uncanonical_spellings_give_the_same_fires() -> None:
    window = (utc(2026, 3, 1), utc(2026, 4, 1))
    assert occurrences("Mon - Fri", "9:00", "europe/london", *window) == occurrences("weekdays", "09:00", LONDON, *window)


# ---------------------------------------------------------------- the trigger cache


def test_rule_is_an_apscheduler_cron_trigger_in_the_group_zone() -> None:
    rule = recurrence._rule("mon,wed", "07:45", NEW_YORK)
    assert isinstance(rule.trigger, CronTrigger)
    assert rule.trigger.timezone == ZoneInfo(NEW_YORK)
    fields = {f.name: str(f) for f in rule.trigger.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon,wed", "7", "45")


def test_triggers_are_cached_per_rule() -> None:
    recurrence._rule.cache_clear()
    for _ in range(1000):  # a planner run: many plans, one rule
        occurrences("weekdays", "09:00", LONDON, utc(2026, 1, 1), utc(2026, 1, 3))
    occurrences("daily", "09:00", LONDON, utc(2026, 1, 1), utc(2026, 1, 3))
    info = recurrence._rule.cache_info()
    assert info.misses == 2
    assert info.hits == 999
    assert recurrence._rule("weekdays", "09:00", LONDON) is recurrence._rule("weekdays", "09:00", LONDON)


# ---------------------------------------------------------------- local_instant


@pytest.mark.parametrize("tz, at, day", [
    (LONDON, "09:00", date(2026, 3, 29)),
    (LONDON, "01:30", date(2026, 3, 29)),   # skipped
    (LONDON, "01:30", date(2026, 10, 25)),  # repeated
    (NEW_YORK, "02:30", date(2026, 3, 8)),
    (NEW_YORK, "01:30", date(2026, 11, 1)),
    ("America/Nuuk", "23:30", date(2026, 3, 28)),
    ("America/Santiago", "00:30", date(2026, 9, 6)),
    (LONDON, "00:00", date(2026, 6, 1)),
])
def test_local_instant_agrees_with_occurrences(tz: str, at: str, day: date) -> None:
    # Rotas use local_instant for one date; check-ins use occurrences: one DST policy for both.
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)) - timedelta(hours=3)
    (fire,) = [f for f in occurrences("daily", at, tz, start, start + timedelta(days=2))
               if local_date(f, tz) == day]
    assert local_instant(day, at, tz) == fire


def test_local_instant_on_a_skipped_date_is_the_start_of_the_next() -> None:
    assert local_instant(date(2011, 12, 30), "09:00", "Pacific/Apia") == utc(2011, 12, 30, 10)
