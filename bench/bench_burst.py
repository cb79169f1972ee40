"""(d) The 09:00 burst: N check-ins fall due at once and go out under a messages-per-second
limit (dispatcher.RateLimiter), while members send HELP mid-burst from another thread.

The gateway only records (message id, wall-clock send time): the point is the scheduler's
ordering, not Twilio. HELP goes through `inbound.handle` in its own transaction followed by the
`on_change` hook, exactly what WebhookApp.inbound_sms does; it queues a priority-0 message to
the member's first contact (urgent) and a priority-5 acknowledgement to the member.

Variants:
* `runner` - the production path: the real `schedules.runner.Runner` (APScheduler interval tick,
  5 s, max_instances=1; `tick` = step + dispatch with the runner's limiters; HELP wakes it).
* `fresh_claim_k` - not production code: an emulation of a proposed fix, calling
  `dispatch(now=clock.now(), limit=k)` in a loop with k = one second's worth of messages, so each
  claim sees messages created since the previous one.
* `fresh_claim_200` - the same loop with limit = BATCH (200): the cost of the batch size alone.

Lateness = send time - message creation (for check-ins creation is the tick that started them,
within a moment of the 09:00 due time; `lateness_vs_due_s` measures from due_at itself).

    python -m bench.bench_burst [--quick] [--n 3000] [--rates 10,100] [--variants ...]

Targets (issue 6): burst check-in p99 <= 1.1 x N/MPS; urgent (priority 0) p99 <= 2 s.
"""
from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from bench.common import dist, emit, log, phone, scratch, sqlite_url, target

NAME = "burst"
HELPS = 20


class RecordingGateway:
    """A Gateway that sends nothing and notes when each message left: `latency_s` after it was
    handed over, as Twilio accepts a message 100-300 ms after the POST starts."""

    name = "recording"

    def __init__(self, latency_s: float = 0.0) -> None:
        self.sent: list[tuple[int, float]] = []
        self.lock = threading.Lock()
        self.latency_s = latency_s

    def send(self, out: Any) -> str:
        if self.latency_s:
            time.sleep(self.latency_s)
        with self.lock:
            self.sent.append((out.message_id, time.time()))
        return f"RG{out.message_id:030d}"

    send_sms = place_call = send


def _build(n: int, t0: datetime) -> str:
    from phonetree.db import dispose_all, get_engine
    from phonetree.models import CheckIn

    from bench.common import ZONES, build_population, insert_rows
    from phonetree.local_times import local_date

    path = scratch("burst.db")
    url = sqlite_url(path)
    engine = get_engine(url)
    build_population(engine, n, created_at=t0 - timedelta(days=1), planned_until=t0 + timedelta(hours=36),
                     contacts=2, quiet_off=True)
    # Each check-in's day is its group's local date (in Sydney it may already be tomorrow): a
    # UTC date would make start_due report those as missed days and alert organisers instead.
    group_of = lambda i: (i - 1) // 30 + 1  # noqa: E731
    insert_rows(engine, CheckIn.__table__, ({
        "id": i, "plan_id": i, "group_id": group_of(i), "member_id": i,
        "occurrence": local_date(t0, ZONES[group_of(i) % len(ZONES)]).isoformat(), "due_at": t0, "state": "scheduled", "urgent": False,
        "window_s": 1800, "reminder_s": 900, "escalation_wait_s": 1200, "escalation_step": -1,
    } for i in range(1, n + 1)))
    dispose_all()
    return url


def _help(engine: Any, member: int, wake: Any) -> None:
    from phonetree import clock, inbound
    from phonetree.db import session_scope

    with session_scope(engine) as session:
        inbound.handle(session, clock.now(), phone(member), "HELP", sid="SM" + uuid.uuid4().hex)
    wake()


def run_variant(variant: str, n: int, mps: float, latency_s: float = 0.0, threads: int | None = None) -> dict[str, Any]:
    from sqlalchemy import func, select

    from phonetree import clock
    from phonetree.config import Settings
    from phonetree.db import dispose_all, get_engine, session_scope
    from phonetree.models import CheckIn, Message
    from schedules.dispatcher import BATCH, RateLimiter, dispatch
    from schedules.engine import step

    t0 = clock.now()
    url = _build(n, t0)
    t0 = clock.now()  # 09:00: the check-ins fall due now
    engine = get_engine(url)
    with session_scope(engine) as session:
        session.execute(CheckIn.__table__.update().values(due_at=t0))
    gateway = RecordingGateway(latency_s)
    duration = n / mps
    stop = threading.Event()
    runner = None
    loop_thread = None
    sending_threads = 1  # the emulation loops send one at a time
    if variant == "runner":
        from schedules.runner import Runner

        settings = Settings(database_url=url, messages_per_second=mps, tick_seconds=5.0, send_threads=threads)
        runner = Runner(engine, gateway, settings, host="127.0.0.1", port=0)  # type: ignore[arg-type]
        sending_threads = settings.sending_threads
        wake = runner.wake
        runner.start()
    else:
        k = max(1, int(mps)) if variant == "fresh_claim_k" else BATCH
        limiters = {"sms": RateLimiter(mps), "voice": RateLimiter(1.0)}

        def loop() -> None:
            step(engine, clock.now())
            while not stop.is_set():
                result = dispatch(engine, gateway, clock.now(), limit=k, limiters=limiters)  # type: ignore[arg-type]
                if not (result.sent or result.failed or result.retried or result.suppressed):
                    time.sleep(0.05)

        loop_thread = threading.Thread(target=loop, name="dispatch-loop", daemon=True)
        loop_thread.start()
        wake = lambda: None  # noqa: E731 - the loop claims afresh anyway

    # HELP from HELPS members (one per group, spread over the groups), spread over 10%..90% of the burst.
    helpers = [1 + (j * (n // HELPS)) + 1 for j in range(HELPS)]
    help_at = [t0.timestamp() + duration * (0.1 + 0.8 * j / max(1, HELPS - 1)) for j in range(HELPS)]

    def injector() -> None:
        for member, at in zip(helpers, help_at):
            delay = at - time.time()
            if delay > 0 and stop.wait(delay):
                return
            _help(engine, member, wake)

    inject = threading.Thread(target=injector, name="help-injector", daemon=True)
    inject.start()
    expected = n + 2 * HELPS  # prompts + an urgent ask and an acknowledgement per HELP
    deadline = time.time() + duration * 2.5 + 60
    while time.time() < deadline:
        time.sleep(0.5)
        with gateway.lock:
            done = len(gateway.sent)
        if done >= expected and not inject.is_alive():
            with session_scope(engine) as session:
                queued = session.scalar(select(func.count()).select_from(Message)
                                        .where(Message.state.in_(("queued", "sending"))))
            if not queued:
                break
    stop.set()
    if runner is not None:
        runner.stop()
    if loop_thread is not None:
        loop_thread.join(timeout=30)
    inject.join(timeout=5)

    with session_scope(engine) as session:
        rows = {m.id: m for m in session.execute(
            select(Message.id, Message.priority, Message.kind, Message.created_at, Message.not_before,
                   Message.state)).all()}
        unsent = session.scalar(select(func.count()).select_from(Message).where(Message.state != "sent"))
    dispose_all()
    scratch("burst.db")
    by_class: dict[int, list[float]] = {}
    vs_not_before: dict[int, list[float]] = {}
    due_lateness: list[float] = []
    sends = sorted(gateway.sent, key=lambda s: s[1])
    for message_id, at in sends:
        row = rows[message_id]
        by_class.setdefault(row.priority, []).append(at - row.created_at.timestamp())
        vs_not_before.setdefault(row.priority, []).append(at - row.not_before.timestamp())
        if row.kind == "checkin":
            due_lateness.append(at - t0.timestamp())
    checkin_sends = [at for mid, at in sends if rows[mid].kind == "checkin"]
    span = (checkin_sends[-1] - checkin_sends[0]) if len(checkin_sends) > 1 else 0.0
    kinds = {0: "urgent (HELP -> contact)", 3: "checkin", 5: "confirmation (HELP ack)"}
    classes = {f"priority_{p}": {"what": kinds.get(p, "other"), "lateness_s": dist(v, 1, 3),
                                 "lateness_vs_not_before_s": dist(vs_not_before[p], 1, 3)}
               for p, v in sorted(by_class.items())}
    return {"variant": variant, "n": n, "mps": mps, "latency_ms": latency_s * 1000,
            "send_threads": sending_threads, "ideal_burst_s": round(duration, 1),
            "sent": len(sends), "expected": expected, "unsent_in_db": unsent,
            "achieved_checkin_rate_per_s": round((len(checkin_sends) - 1) / span, 2) if span else None,
            "helps_injected_at_s": [round(a - t0.timestamp(), 1) for a in help_at],
            "checkin_lateness_vs_due_s": dist(due_lateness, 1, 3), "classes": classes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 check-ins")
    parser.add_argument("--n", type=int)
    parser.add_argument("--rates", default="10,100")
    parser.add_argument("--variants", default="runner",
                        help="runner (production), or the emulations fresh_claim_k, fresh_claim_200 (fresh_claim_200 runs at the lowest rate only)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="each send takes this long, as Twilio's API does (100-300 ms)")
    parser.add_argument("--threads", type=int, help="the runner's PHONETREE_SEND_THREADS (default: auto)")
    args = parser.parse_args()
    # The runner's tick is skipped ("maximum number of running instances") all through a long
    # burst: expected, and the measurement shows its effect; keep stderr readable.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    n = args.n or (300 if args.quick else 3000)
    rates = [float(r) for r in args.rates.split(",")]
    runs = []
    for variant in args.variants.split(","):
        for mps in (rates if variant != "fresh_claim_200" else [min(rates)]):
            log(f"burst: {variant} at {mps:g}/s, {n} check-ins (~{n / mps:.0f} s)")
            run = run_variant(variant, n, mps, args.latency_ms / 1000, args.threads)
            urgent = run["classes"].get("priority_0", {}).get("lateness_s", {})
            log(f"burst: {variant} {mps:g}/s: check-in p99 {run['classes']['priority_3']['lateness_s']['p99']} s,"
                f" urgent p99 {urgent.get('p99')} s")
            runs.append(run)
    targets = []
    for run in runs:
        label = f"{run['variant']} @ {run['mps']:g}/s"
        checkin = run["classes"]["priority_3"]["lateness_s"]["p99"]
        targets.append(target(f"{label}: check-in p99 s (1.1 x N/MPS)", checkin,
                              round(1.1 * run["n"] / run["mps"], 1)))
        urgent = run["classes"].get("priority_0", {}).get("lateness_s", {}).get("p99", float("inf"))
        targets.append(target(f"{label}: urgent p99 s", urgent, 2.0))
    name = NAME + (f"_latency{args.latency_ms:g}ms" if args.latency_ms else "") + \
        (f"_threads{args.threads}" if args.threads else "")
    emit(name, {"n": n, "helps": HELPS, "latency_ms": args.latency_ms, "send_threads": args.threads or "auto", "database": "sqlite file", "runs": runs, "targets": targets})


if __name__ == "__main__":
    main()
