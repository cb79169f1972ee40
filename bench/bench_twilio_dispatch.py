"""(b) Dispatch N due check-in prompts through the real TwilioGateway (the official twilio client
over real HTTP) to the local Twilio stand-in, against a bare loop of `client.messages.create`
with the same client, the same stand-in and the same parameters (to, from_, body,
status_callback, validity_period). No rate limit. Like for like, dispatch sends one at a time;
one more run with --threads sending threads (phonetree run's default at 10/s is 4) is reported
beside it, not as the target.

The stand-in runs in its own process (tests/twilio_standin.py), so the client side of each run
has a core of its own. The database (SQLite file) holds N check-ins in state `prompting` and
their queued prompts, as `start_due` leaves them; `dispatch` claims, sends, and records each
(message -> sent, check-in -> sent with its window, an event). Rounds alternate the order.

    python -m bench.bench_twilio_dispatch [--quick] [--n 10000] [--rounds 2]

Target (issue 6): dispatch throughput >= 0.8x the bare client's.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import time
from datetime import datetime, timezone
from typing import Any

from bench.common import PUBLIC_URL, dist, emit, log, profile_top, scratch, sqlite_url, target

NAME = "twilio_dispatch"


def _standin(ready: Any, stop: Any, latency_s: float = 0.0) -> None:
    from tests.twilio_standin import TwilioStandIn

    class Distant(TwilioStandIn):
        """Answers each Messages POST `latency_s` later, as a provider across the internet does."""

        def _answer(self, method, path, endpoint, auth, params, multi):  # type: ignore[no-untyped-def]
            status, body, content_type, delay = super()._answer(method, path, endpoint, auth, params, multi)
            return status, body, content_type, delay + (latency_s if endpoint == "Messages" else 0.0)

    with Distant(public_url=PUBLIC_URL) as twilio:
        ready.put(twilio.base_url)
        stop.wait()


def _build(n: int, now: datetime) -> str:
    from phonetree.db import dispose_all, get_engine

    from bench.common import build_due_checkin_messages, build_population

    path = scratch("twilio_dispatch_base.db")
    engine = get_engine(sqlite_url(path))
    build_population(engine, n, created_at=now, planned_until=now, contacts=2, quiet_off=True)
    build_due_checkin_messages(engine, n, now)
    dispose_all()
    return str(path)


def _copy(base: str, name: str) -> str:
    path = scratch(name)
    shutil.copyfile(base, path)
    return sqlite_url(path)


def _bare(client: Any, calls: list[dict[str, Any]]) -> tuple[float, list[float]]:
    each = []
    started = time.perf_counter()
    for kwargs in calls:
        t = time.perf_counter()
        message = client.messages.create(**kwargs)
        assert message.sid
        each.append(time.perf_counter() - t)
    return time.perf_counter() - started, each


def _dispatch(url: str, gateway: Any, now: datetime, n: int, profile: bool = False, threads: int = 1) -> dict[str, Any]:
    from sqlalchemy import func, select

    from phonetree.db import dispose_all, get_engine, session_scope
    from phonetree.models import CheckIn, Message
    from schedules.dispatcher import dispatch

    engine = get_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    result = dispatch(engine, gateway, now, threads=threads)
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
    with session_scope(engine) as session:
        sent = session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent"))
        windows = session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.state == "sent"))
    dispose_all()
    out = {"seconds": round(elapsed, 3), "per_s": round(n / elapsed, 1), "sent": result.sent,
           "failed": result.failed, "retried": result.retried, "messages_sent_in_db": sent,
           "checkins_sent_in_db": windows}
    if profiler is not None:
        out["profile_top_tottime"] = profile_top(profiler, 12, "tottime")
        out["profile_top_cumulative"] = profile_top(profiler, 14, "cumulative")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2000 messages")
    parser.add_argument("--n", type=int)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--threads", type=int, default=4, help="sending threads for the extra, threaded run")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the stand-in answers each send this much later (Twilio's API is ~100-300 ms away)")
    args = parser.parse_args()
    n = args.n or (2000 if args.quick else 10_000)

    from sqlalchemy import select

    from phonetree.config import Settings
    from phonetree.db import get_engine, session_scope
    from phonetree.gateways.twilio import SMS_STATUS_PATH, TwilioGateway, callback_url
    from phonetree.models import Message
    from tests.twilio_standin import DEFAULT_NUMBER, DEFAULT_SID, DEFAULT_TOKEN

    now = datetime.now(timezone.utc)
    log(f"twilio_dispatch: building {n} due prompts")
    base = _build(n, now)
    engine = get_engine(sqlite_url(base))
    with session_scope(engine) as session:
        rows = session.execute(select(Message.id, Message.to_phone, Message.body, Message.not_before,
                                      Message.expires_at).order_by(Message.id)).all()
    calls = [{"to": r.to_phone, "body": r.body, "from_": DEFAULT_NUMBER,
              "status_callback": callback_url(PUBLIC_URL, SMS_STATUS_PATH, r.id),
              "validity_period": int((r.expires_at - r.not_before).total_seconds())} for r in rows]

    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_standin, args=(ready, stop, args.latency_ms / 1000), daemon=True)
    server.start()
    try:
        base_url = ready.get(timeout=60)
        settings = Settings(database_url=sqlite_url(base), gateway="twilio", public_url=PUBLIC_URL,
                            twilio_account_sid=DEFAULT_SID, twilio_auth_token=DEFAULT_TOKEN,
                            twilio_from_number=DEFAULT_NUMBER, twilio_api_base_url=base_url)
        gateway = TwilioGateway.from_settings(settings)
        client = gateway.client  # the same client object for the bare loop
        log("twilio_dispatch: warm-up")
        _bare(client, calls[:200])
        rounds = []
        for r in range(args.rounds):
            order = ("bare", "dispatch") if r % 2 == 0 else ("dispatch", "bare")
            entry: dict[str, Any] = {"order": list(order)}
            for which in order:
                if which == "bare":
                    seconds, each = _bare(client, calls)
                    entry["bare"] = {"seconds": round(seconds, 3), "per_s": round(n / seconds, 1),
                                     "latency_ms": dist(each, 1000)}
                else:
                    entry["dispatch"] = _dispatch(_copy(base, f"twilio_dispatch_{r}.db"), gateway, now, n)
                log(f"twilio_dispatch: round {r} {which}: {entry[which]['seconds']} s")
            entry["ratio"] = round(entry["bare"]["seconds"] / entry["dispatch"]["seconds"], 3)
            rounds.append(entry)
        # Not the like-for-like comparison (the bare loop sends one at a time): what a worker's
        # default sending threads make of the same stand-in.
        log(f"twilio_dispatch: dispatch with {args.threads} sending threads")
        threaded = _dispatch(_copy(base, "twilio_dispatch_threads.db"), gateway, now, n, threads=args.threads)
        profile = None
        if not args.no_profile:
            log("twilio_dispatch: profiling one more dispatch")
            profile = _dispatch(_copy(base, "twilio_dispatch_profile.db"), gateway, now, n, profile=True)
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    for name in ["twilio_dispatch_base.db", "twilio_dispatch_profile.db", "twilio_dispatch_threads.db",
                 *(f"twilio_dispatch_{r}.db" for r in range(args.rounds))]:
        scratch(name)
    best_bare = min(r["bare"]["seconds"] for r in rounds)
    best_dispatch = min(r["dispatch"]["seconds"] for r in rounds)
    ratio = round(best_bare / best_dispatch, 3)
    emit(NAME if not args.latency_ms else f"{NAME}_latency{args.latency_ms:g}ms", {
        "n": n, "database": "sqlite file", "standin": "tests/twilio_standin.py in its own process",
        "added_latency_ms": args.latency_ms,
        "best_bare_per_s": round(n / best_bare, 1), "best_dispatch_per_s": round(n / best_dispatch, 1),
        "ratio_dispatch_over_bare": ratio, "rounds": rounds,
        "with_send_threads": {"threads": args.threads, **threaded,
                              "ratio_over_best_bare": round(best_bare / threaded["seconds"], 3)},
        "targets": [target("dispatch throughput / bare client throughput", ratio, 0.8, ">=")],
        "profile": profile,
    })


if __name__ == "__main__":
    main()
