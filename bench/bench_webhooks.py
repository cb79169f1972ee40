"""(c) Signed inbound SMS webhooks over real HTTP (loopback only).

Servers, each in its own process, served by waitress `create_server(app, threads=8)` exactly as
`schedules/runner.py` does, with logging at INFO to a file (as `phonetree run` sets it):

* `minimal` - a WSGI app that only reads the form and checks X-Twilio-Signature with twilio's
  RequestValidator (the floor: HTTP + parsing + HMAC).
* `app` - phonetree's WebhookApp (on_change a no-op) on a SQLite file: each request is an "OK"
  from a different known member with a check-in awaiting an answer, so each one looks the sender
  up, records the Inbound row, answers the check-in and records an event.
* `runner` - the same, served by the real `Runner` (scheduler running, tick every 5 s, and
  every answered OK wakes a tick, as in production).

The load generator: P processes x T threads, each thread with one keep-alive
http.client.HTTPConnection, sends a bounded, pre-signed list of requests (Twilio's own parameter
set for an inbound SMS, blank geo fields included) in a closed loop; latency is measured per
request at the client. A warm-up from other members precedes each measured run.

    python -m bench.bench_webhooks [--quick] [--requests 10000] [--procs 2 --threads 4]

Target (issue 6): inbound (app) >= 500 req/s with p99 <= 100 ms, on SQLite.
"""
from __future__ import annotations

import argparse
import http.client
import logging
import multiprocessing as mp
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode

from bench.common import (PUBLIC_URL, RESULTS, dist, emit, log, phone, scratch, sqlite_url, target)

NAME = "webhooks"
TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0123456789abcdef" * 2
OUR_NUMBER = "+447700900123"
PATH = "/twilio/sms"


class MinimalApp:
    """Only what any Twilio webhook must do: read the form, check the signature, answer TwiML."""

    def __init__(self, token: str, public_url: str) -> None:
        from twilio.request_validator import RequestValidator

        self.validator = RequestValidator(token)
        self.public_url = public_url

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length).decode("utf-8") if length else ""
        params = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        signed = self.validator.validate(self.public_url + environ.get("PATH_INFO", "/"), params,
                                         environ.get("HTTP_X_TWILIO_SIGNATURE", ""))
        body = b'<?xml version="1.0" encoding="UTF-8"?><Response />' if signed else b"forbidden\n"
        start_response("200 OK" if signed else "403 Forbidden",
                       [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]


def _serve(kind: str, url: str, ready: Any, threads: int, logfile: str) -> None:
    logging.basicConfig(level=logging.INFO, filename=logfile,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from waitress.server import create_server

    if kind == "runner":
        from phonetree.config import Settings
        from phonetree.db import get_engine
        from phonetree.gateways.outbox import OutboxGateway
        from schedules.runner import Runner

        settings = Settings(database_url=url, public_url=PUBLIC_URL, twilio_auth_token=TOKEN,
                            twilio_account_sid=ACCOUNT)
        runner = Runner(get_engine(url), OutboxGateway(), settings, host="127.0.0.1", port=0)
        ready.put(runner.server.effective_port)
        runner.serve_forever()  # SIGTERM stops it cleanly
        return
    if kind == "app":
        from phonetree.db import get_engine
        from phonetree.web import WebhookApp

        app: Any = WebhookApp(get_engine(url), TOKEN, PUBLIC_URL, account_sid=ACCOUNT)
    else:
        app = MinimalApp(TOKEN, PUBLIC_URL)
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    ready.put(server.effective_port)
    server.run()


def _requests(members: range) -> list[tuple[bytes, dict[str, str]]]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    out = []
    for i in members:
        sid = "SM" + uuid.uuid4().hex
        params = {
            "ToCountry": "GB", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
            "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
            "Body": "OK", "FromCountry": "GB", "To": OUR_NUMBER, "ToZip": "", "NumSegments": "1",
            "MessageSid": sid, "AccountSid": ACCOUNT, "From": phone(i), "ApiVersion": "2010-04-01",
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                   "User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
                   "X-Twilio-Signature": validator.compute_signature(PUBLIC_URL + PATH, params)}
        out.append((urlencode(params).encode(), headers))
    return out


def _client(port: int, work: list[list[tuple[bytes, dict[str, str]]]], go: Any, ready: Any,
            results: Any) -> None:
    """One load-generator process: one thread per list in `work`, each on its own connection."""
    records: list[tuple[float, float, int]] = []  # (start, end, status) monotonic
    lock = threading.Lock()

    def run(items: list[tuple[bytes, dict[str, str]]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        mine = []
        go.wait()
        for body, headers in items:
            start = time.monotonic()
            try:
                conn.request("POST", PATH, body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = -1
            mine.append((start, time.monotonic(), status))
        conn.close()
        with lock:
            records.extend(mine)

    threads = [threading.Thread(target=run, args=(items,)) for items in work]
    for t in threads:
        t.start()
    ready.put(1)
    for t in threads:
        t.join()
    results.put(records)


def load(port: int, reqs: list[tuple[bytes, dict[str, str]]], procs: int, threads: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    go, ready, results = ctx.Event(), ctx.Queue(), ctx.Queue()
    lanes = procs * threads
    shares = [reqs[k::lanes] for k in range(lanes)]
    workers = [ctx.Process(target=_client, args=(port, shares[p * threads:(p + 1) * threads], go, ready, results))
               for p in range(procs)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=120)
    time.sleep(0.2)  # every thread connected and waiting
    go.set()
    records: list[tuple[float, float, int]] = []
    for _ in workers:
        records.extend(results.get(timeout=900))
    for w in workers:
        w.join(timeout=30)
    start = min(r[0] for r in records)
    end = max(r[1] for r in records)
    statuses = Counter(r[2] for r in records)
    return {"requests": len(records), "seconds": round(end - start, 3),
            "req_per_s": round(len(records) / (end - start), 1),
            "latency_ms": dist([r[1] - r[0] for r in records], 1000, 2),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def _build(n: int, warm: int) -> str:
    """Members 1..warm+n, each with a plan and today's check-in sent a minute ago (awaiting OK)."""
    from phonetree.db import dispose_all, get_engine
    from phonetree.models import CheckIn

    from bench.common import build_population, insert_rows

    now = datetime.now(timezone.utc)
    total = n + warm
    path = scratch("webhooks.db")
    url = sqlite_url(path)
    engine = get_engine(url)
    build_population(engine, total, created_at=now - timedelta(days=1), planned_until=now,
                     contacts=2, quiet_off=True)
    sent = now - timedelta(minutes=1)
    insert_rows(engine, CheckIn.__table__, ({
        "id": i, "plan_id": i, "group_id": (i - 1) // 30 + 1, "member_id": i,
        "occurrence": now.date().isoformat(), "due_at": sent, "state": "sent", "urgent": False,
        "window_s": 1800, "reminder_s": 900, "escalation_wait_s": 1200, "escalation_step": -1,
        "sent_at": sent, "remind_at": sent + timedelta(minutes=15), "window_ends_at": sent + timedelta(minutes=30),
    } for i in range(1, total + 1)))
    dispose_all()
    return url


def _check(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from phonetree.db import dispose_all, get_engine, session_scope
    from phonetree.models import CheckIn, Inbound

    engine = get_engine(url)
    with session_scope(engine) as session:
        inbound = session.scalar(select(func.count()).select_from(Inbound))
        answered = session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.state == "answered"))
    dispose_all()
    return {"inbound_rows": inbound, "checkins_answered": answered}


def run_server(kind: str, url: str, reqs: list, warmup: list, procs: int, threads: int,
               server_threads: int = 8) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    logfile = RESULTS / "tmp" / f"webhooks_{kind}.log"
    logfile.unlink(missing_ok=True)
    server = ctx.Process(target=_serve, args=(kind, url, ready, server_threads, str(logfile)), daemon=True)
    server.start()
    try:
        port = ready.get(timeout=120)
        if kind == "runner":
            time.sleep(3)  # let the first tick plan the horizon before the load
        load(port, warmup, procs, threads)
        result = load(port, reqs, procs, threads)
    finally:
        server.terminate()  # our own child, by pid
        server.join(timeout=30)
    result["server"] = kind
    if kind == "runner" and logfile.exists():
        text = logfile.read_text()
        # Each answered OK wakes a tick (step + dispatch) that competes with the requests.
        result["ticks_completed"] = text.count("executed successfully")
        result["ticks_skipped_busy"] = text.count("skipped: maximum number of running instances")
        result["database_locked_errors"] = text.count("database is locked")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2000 requests")
    parser.add_argument("--requests", type=int, help="measured requests per server (default 10000)")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--servers", default="minimal,app,runner")
    parser.add_argument("--waitress-threads", type=int, default=8,
                        help="for minimal and app (the runner always serves with its own 8)")
    args = parser.parse_args()
    n = args.requests or (2000 if args.quick else 10_000)
    warm = 300
    kinds = args.servers.split(",")

    runs: dict[str, Any] = {}
    for kind in kinds:
        url = _build(n, warm) if kind != "minimal" else ""
        log(f"webhooks: {kind}: {n} requests, {args.procs}x{args.threads} connections")
        warmup = _requests(range(1, warm + 1))
        reqs = _requests(range(warm + 1, warm + n + 1))
        runs[kind] = run_server(kind, url, reqs, warmup, args.procs, args.threads, args.waitress_threads)
        if url:
            runs[kind]["db_after"] = _check(url)
        log(f"webhooks: {kind}: {runs[kind]['req_per_s']} req/s, p99 {runs[kind]['latency_ms']['p99']} ms")
    scratch("webhooks.db")
    out: dict[str, Any] = {"requests": n, "connections": args.procs * args.threads,
                           "load_generator": f"{args.procs} processes x {args.threads} threads, "
                                             "http.client keep-alive, closed loop",
                           "waitress_threads": args.waitress_threads, "database": "sqlite file", "runs": runs}
    targets = []
    if "app" in runs:
        app = runs["app"]
        targets += [target("inbound (app) req/s", app["req_per_s"], 500, ">="),
                    target("inbound (app) p99 ms", app["latency_ms"]["p99"], 100)]
        if "minimal" in runs:
            out["ratio_app_over_minimal"] = round(app["req_per_s"] / runs["minimal"]["req_per_s"], 3)
    if "runner" in runs:
        out["ratio_runner_over_minimal"] = (round(runs["runner"]["req_per_s"] / runs["minimal"]["req_per_s"], 3)
                                            if "minimal" in runs else None)
    out["targets"] = targets
    emit(NAME, out)


if __name__ == "__main__":
    main()
