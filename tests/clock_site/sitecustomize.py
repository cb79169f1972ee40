"""Put on PYTHONPATH by tests/shifted_clock.py: at interpreter start, move this process's clock
by SHIFTED_CLOCK_OFFSET_S seconds (ticking, so sleeps and timeouts behave). Child processes
inherit PYTHONPATH and the variable, so every Python process of a run sees the same shifted
instant. time-machine, not libfaketime: libfaketime breaks time.sleep."""
import os
import time

_offset = os.environ.get("SHIFTED_CLOCK_OFFSET_S")
if _offset:
    import time_machine

    # time.time() is still the real clock here: nothing has travelled yet in this process.
    time_machine.travel(time.time() + float(_offset), tick=True).start()
    # A ticking traveller starts ticking at its first reading, not at start(): read it now, or
    # the time until something first asks (imports, a second or more) is lost from the offset.
    time.time()
