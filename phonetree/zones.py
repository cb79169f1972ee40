"""IANA time zones: an organiser's spelling checked against the tz database, and the cached
`ZoneInfo` for a stored name."""
from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from phonetree.errors import PhonetreeError


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    # Lower-case -> canonical, so "europe/london" is accepted on a case-sensitive filesystem.
    # available_timezones() walks the tz database, hence the cache.
    return {name.lower(): name for name in available_timezones()}


def parse_timezone(name: str) -> str:
    """Validate an IANA zone name; returns its canonical spelling ('Europe/London')."""
    cleaned = name.strip()
    # Looking the name up in the list (rather than trying ZoneInfo(name)) also refuses paths
    # such as "../../etc/passwd" and non-zones such as "posixrules".
    canonical = _zone_names().get(cleaned.lower())
    if canonical is not None:
        return canonical
    raise PhonetreeError(f"unknown time zone '{cleaned}'; use a name like Europe/London "
                         "or America/New_York.")


@lru_cache(maxsize=1024)
def zone(tz: str) -> ZoneInfo:
    """The zone named `tz`; unknown names are a `PhonetreeError`."""
    # local_date runs once per check-in row; don't re-validate the name each time.
    return ZoneInfo(parse_timezone(tz))
