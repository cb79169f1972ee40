"""Run the test suite under a shifted clock, in every Python process it starts.

    python tests/shifted_clock.py --days-ahead 365 -- -q -x -p no:randomly
    python tests/shifted_clock.py --at "2027-07-15 23:58" --zone Europe/London -- -q -x

No test may depend on the date or hour it runs; this is how that is checked. The offset from
the real clock is put in SHIFTED_CLOCK_OFFSET_S and tests/clock_site on PYTHONPATH, whose
sitecustomize.py starts time-machine (ticking) before anything else in each interpreter, so
`phonetree run` subprocesses get the same offset. freezegun inside tests still works on top.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SITE = Path(__file__).resolve().parent / "clock_site"


def offset_to(target: datetime, real_now: float) -> float:
    """Seconds to add to the real clock so that it reads `target` now."""
    return target.timestamp() - real_now


def target_of(at: str | None, days_ahead: float | None, zone: str, real_now: float) -> datetime:
    if at is not None:
        local = datetime.fromisoformat(at)
        if local.tzinfo is None:
            local = local.replace(tzinfo=ZoneInfo(zone))
        return local
    return datetime.fromtimestamp(real_now, ZoneInfo(zone)) + timedelta(days=days_ahead or 0)


def shifted_env(offset: float, env: dict[str, str]) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SITE), env.get("PYTHONPATH", "")) if p)
    return {**env, "SHIFTED_CLOCK_OFFSET_S": repr(offset), "PYTHONPATH": path}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", help='a local wall-clock time, e.g. "2027-07-15 23:58" (or ISO with an offset)')
    when.add_argument("--days-ahead", type=float, help="shift the clock this many days forward")
    parser.add_argument("--zone", default="Europe/London", help="the zone --at is read in (default Europe/London)")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments for pytest (after --)")
    args = parser.parse_args(argv)
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    real_now = time.time()
    target = target_of(args.at, args.days_ahead, args.zone, real_now)
    offset = offset_to(target, real_now)
    print(f"shifted clock: {target.isoformat()} ({offset / 86400:+.3f} days)", file=sys.stderr, flush=True)
    # time-machine's pytest plugin is imported by sitecustomize before pytest can rewrite it.
    quiet = "ignore:Module already imported so cannot be rewritten; time_machine:pytest.PytestAssertRewriteWarning"
    command = [sys.executable, "-m", "pytest", "-W", quiet, *pytest_args]
    os.execve(sys.executable, command, shifted_env(offset, dict(os.environ)))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
