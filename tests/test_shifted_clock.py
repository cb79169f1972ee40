"""tests/shifted_clock.py, the tool that runs the suite under a shifted clock: the shift reaches
child and grandchild processes with the same offset, sleeps still sleep, and freezegun still
freezes on top of it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.shifted_clock import offset_to, shifted_env, target_of

YEAR = 365 * 86400.0
ROOT = Path(__file__).resolve().parent.parent

# Prints what this process and a child of it see, as JSON, then leaves.
PROBE = """
import json, subprocess, sys, time
time.sleep(0.3)  # as slow imports would be, before anything reads the clock
import _time_machine
from datetime import datetime, timezone
from freezegun import freeze_time
try:
    offset = time.time() - _time_machine.original_time()
except ValueError:  # not travelling
    offset = 0.0
start = time.monotonic(); before = time.time()
time.sleep(0.2)
slept = (time.monotonic() - start, time.time() - before)
with freeze_time("2026-12-01 09:00:00"):
    frozen = (datetime.now(timezone.utc).isoformat(), time.time())
child = None
if len(sys.argv) > 1:
    child = json.loads(subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True,
                                      text=True, check=True).stdout)
print(json.dumps({"offset": offset, "time": time.time(), "now": datetime.now(timezone.utc).timestamp(),
                  "slept": slept, "frozen": frozen, "child": child}))
"""


def real_time() -> float:
    """The unshifted clock, also when this test itself runs under shifted_clock.py."""
    return time.time() - float(os.environ.get("SHIFTED_CLOCK_OFFSET_S", "0"))


def probe(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, PROBE], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_child_and_its_child_see_the_same_shift_sleep_and_can_still_freeze():
    real_before = real_time()
    seen = probe(shifted_env(YEAR, dict(os.environ)))
    real_after = real_time()
    for level in (seen, seen["child"]):
        assert level["offset"] == pytest.approx(YEAR, abs=0.05)  # the same shift, to the moment
        for clock in ("time", "now"):
            assert real_before + YEAR <= level[clock] <= real_after + YEAR + 1
        slept_monotonic, slept_wall = level["slept"]
        assert 0.2 <= slept_monotonic < 5 and 0.19 <= slept_wall < 5  # ticking, and sleep works
        assert level["frozen"] == ["2026-12-01T09:00:00+00:00", datetime(2026, 12, 1, 9, tzinfo=timezone.utc).timestamp()]


def test_without_the_variable_nothing_moves():
    env = {k: v for k, v in shifted_env(YEAR, dict(os.environ)).items() if k != "SHIFTED_CLOCK_OFFSET_S"}
    real_before = real_time()
    seen = probe(env)
    assert seen["offset"] == 0.0
    assert real_before <= seen["time"] <= real_time() + 1


@pytest.mark.parametrize("at, utc_hour", [("2027-07-15 23:58", (22, 58)), ("2027-01-15 23:58", (23, 58))])
def test_at_is_local_wall_clock_time(at, utc_hour):
    target = target_of(at, None, "Europe/London", time.time()).astimezone(timezone.utc)
    assert (target.hour, target.minute) == utc_hour


def test_days_ahead_is_measured_from_the_real_clock():
    real = time.time()
    assert offset_to(target_of(None, 365, "Europe/London", real), real) == pytest.approx(YEAR, abs=3600)
