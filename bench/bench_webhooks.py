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
* `app-pg` - `app` on PostgreSQL (a throwaway server, tests/pg.py), served by 1, 2, ...
  processes (`--web-procs`), each a waitress of its own on one port shared with SO_REUSEPORT, so
  the kernel spreads the connections over them as a proxy in front of several `phonetree run`
  would: "inbound beyond one process" (issue 14).

`--before PATH` also runs every server but `minimal` from another code tree (its `phonetree`
first on sys.path in the server process), named `<server>@before`, alternating with this tree's
in each round: before and after side by side in one run.

The load generator: P processes x T threads (`--connections C` gives T = C / P), each thread
with one keep-alive http.client.HTTPConnection, sends a bounded, pre-signed list of requests
(Twilio's own parameter set for an inbound SMS, blank geo fields included) in a closed loop;
latency is measured per request at the client. A warm-up from other members precedes each
measured run. CPU accounting for every measured run: the server processes' CPU (from /proc),
the load generator's (getrusage in each of its processes), and the whole machine's busy time,
so what the server had left is visible.

    python -m bench.bench_webhooks [--quick] [--requests 4000] [--connections 8,32] [--rounds 3]
        [--servers minimal,app,app-pg] [--web-procs 1,2] [--before /work/wt-web-before]

Targets: inbound (app) >= 500 req/s with p99 <= 100 ms at 8 connections, on SQLite (issue 6);
app >= 0.5x minimal and p99 <= 50 ms at 32 connections (issue 14); app-pg with 2 processes
>= 1.7x one (issue 14).
"""
from __future__ import annotations

import argparse
import http.client
import logging
import multiprocessing as mp
import os
import resource
import socket
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode

from bench.common import (PUBLIC_URL, RESULTS, dist, emit, log, on_database, pg_database, phone, scratch,
                          sqlite_url, target)

NAME = "webhooks"
TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0123456789abcdef" * 2
OUR_NUMBER = "+447700900123"
PATH = "/twilio/sms"
TICK = os.sysconf("SC_CLK_TCK")


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


def _shared_socket(port: int) -> socket.socket:
    """A listening socket on `port` that other processes may also bind (SO_REUSEPORT): the kernel
    spreads new connections over every process listening on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


def _serve(kind: str, url: str, ready: Any, threads: int, logfile: str, tree: str = "", port: int = 0) -> None:
    if tree:
        sys.path.insert(0, tree)  # the other tree's phonetree and schedules (nothing imported them yet)
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
    if kind in ("app", "app-pg"):
        from phonetree.db import get_engine
        from phonetree.web import WebhookApp

        app: Any = WebhookApp(get_engine(url), TOKEN, PUBLIC_URL, account_sid=ACCOUNT)
    else:
        app = MinimalApp(TOKEN, PUBLIC_URL)
    if port:
        server = create_server(app, sockets=[_shared_socket(port)], threads=threads)
    else:
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
    before = resource.getrusage(resource.RUSAGE_SELF)
    for t in threads:
        t.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    # The CPU this process spent while its threads sent (their connect and wait included).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    results.put((records, cpu))


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, threads included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK


def load(port: int, reqs: list[tuple[bytes, dict[str, str]]], procs: int, threads: int,
         server_pids: list[int] | None = None) -> dict[str, Any]:
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
    server_pids = server_pids or []
    cpu_before = [_cpu_of(pid) for pid in server_pids]
    busy_before, wall_before = _machine_busy(), time.monotonic()
    go.set()
    records: list[tuple[float, float, int]] = []
    generator_cpu = 0.0
    for _ in workers:
        got, cpu = results.get(timeout=900)
        records.extend(got)
        generator_cpu += cpu
    wall = time.monotonic() - wall_before
    busy = _machine_busy() - busy_before
    server_cpu = [_cpu_of(pid) - b for pid, b in zip(server_pids, cpu_before)]
    for w in workers:
        w.join(timeout=30)
    start = min(r[0] for r in records)
    end = max(r[1] for r in records)
    statuses = Counter(r[2] for r in records)
    n = len(records)
    return {"requests": n, "seconds": round(end - start, 3),
            "req_per_s": round(n / (end - start), 1),
            "latency_ms": dist([r[1] - r[0] for r in records], 1000, 2),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            # Cores in use over the run (CPU seconds / wall seconds), and the server's CPU per request.
            "cpu": {"server_cores": round(sum(server_cpu) / wall, 2),
                    "server_cores_each": [round(c / wall, 2) for c in server_cpu],
                    "server_cpu_ms_per_request": round(1000 * sum(server_cpu) / n, 3),
                    "generator_cores": round(generator_cpu / wall, 2),
                    "machine_busy_cores": round(busy / wall, 2),
                    "others_cores": round((busy - sum(server_cpu) - generator_cpu) / wall, 2),
                    "cores": os.cpu_count(), "loadavg_after": [round(x, 2) for x in os.getloadavg()]}}


def _build(n: int, warm: int, url: str | None = None) -> str:
    """Members 1..warm+n, each with a plan and today's check-in sent a minute ago (awaiting OK)."""
    from phonetree.db import dispose_all, get_engine
    from phonetree.models import CheckIn

    from bench.common import build_population, insert_rows

    now = datetime.now(timezone.utc)
    total = n + warm
    if url is None:
        url = sqlite_url(scratch("webhooks.db"))
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
    if engine.dialect.name == "postgresql":
        # Sequences after explicit ids, as a real database's would be.
        from sqlalchemy import text
        with engine.begin() as conn:
            for table in ("groups", "members", "checkin_plans", "plan_contacts", "checkins"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
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
               server_threads: int = 8, tree: str = "", web_procs: int = 1) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    (RESULTS / "tmp").mkdir(parents=True, exist_ok=True)
    logfile = RESULTS / "tmp" / f"webhooks_{kind}.log"
    logfile.unlink(missing_ok=True)
    holder = None
    shared_port = 0
    if web_procs > 1:
        # Hold the port (bound, SO_REUSEPORT, not listening) until every server has bound it too.
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        shared_port = holder.getsockname()[1]
    servers = [ctx.Process(target=_serve, args=(kind, url, ready, server_threads, str(logfile), tree, shared_port),
                           daemon=True) for _ in range(web_procs)]
    for server in servers:
        server.start()
    try:
        port = [ready.get(timeout=120) for _ in servers][0]
        if holder is not None:
            holder.close()
        if kind == "runner":
            time.sleep(3)  # let the first tick plan the horizon before the load
        load(port, warmup, procs, threads)
        result = load(port, reqs, procs, threads, [s.pid for s in servers if s.pid is not None])
    finally:
        for server in servers:
            server.terminate()  # our own children, by pid
        for server in servers:
            server.join(timeout=30)
    result["server"] = kind
    if web_procs > 1 or kind == "app-pg":
        result["web_procs"] = web_procs
    if kind == "runner" and logfile.exists():
        text = logfile.read_text()
        # Each answered OK wakes a tick (step + dispatch) that competes with the requests.
        result["ticks_completed"] = text.count("executed successfully")
        result["ticks_skipped_busy"] = text.count("skipped: maximum number of running instances")
        result["database_locked_errors"] = text.count("database is locked")
    return result


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Min and median over rounds of what matters."""
    rates = [r["req_per_s"] for r in runs]
    p99s = [r["latency_ms"]["p99"] for r in runs]
    cpu = [r["cpu"]["server_cpu_ms_per_request"] for r in runs]
    return {"rounds": len(runs), "req_per_s_min": min(rates), "req_per_s_median": statistics.median(rates),
            "p50_ms_median": statistics.median(r["latency_ms"]["p50"] for r in runs),
            "p99_ms_min": min(p99s), "p99_ms_median": statistics.median(p99s),
            "server_cpu_ms_per_request_median": statistics.median(cpu),
            "server_cores_median": statistics.median(r["cpu"]["server_cores"] for r in runs),
            "generator_cores_median": statistics.median(r["cpu"]["generator_cores"] for r in runs),
            "others_cores_median": statistics.median(r["cpu"]["others_cores"] for r in runs),
            "all_200": all(r["statuses"] == {"200": r["requests"]} for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2000 requests")
    parser.add_argument("--requests", type=int, help="measured requests per server (default 10000)")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per load-generator process "
                                                               "(unless --connections)")
    parser.add_argument("--connections", help="comma-separated totals, e.g. 8,32 (threads = C / procs)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--servers", default="minimal,app,runner")
    parser.add_argument("--web-procs", default="1,2", help="for app-pg: server processes, comma-separated")
    parser.add_argument("--before", default="", help="another code tree to run beside this one")
    parser.add_argument("--waitress-threads", type=int, default=8,
                        help="for minimal and app (the runner always serves with its own 8)")
    parser.add_argument("--output", default=NAME, help="name of the JSON in bench/results/")
    args = parser.parse_args()
    n = args.requests or (2000 if args.quick else 10_000)
    warm = 300
    kinds = args.servers.split(",")
    connections = ([int(c) for c in args.connections.split(",")] if args.connections
                   else [args.procs * args.threads])
    web_procs = [int(p) for p in args.web_procs.split(",")]
    # (label, kind, tree, processes), alternating this tree and the other in each round
    variants: list[tuple[str, str, str, int]] = []
    for kind in kinds:
        for procs in (web_procs if kind == "app-pg" else [1]):
            label = kind if kind != "app-pg" else f"app-pg x{procs}"
            variants.append((label, kind, "", procs))
            if args.before and kind != "minimal":
                variants.append((label + "@before", kind, os.path.abspath(args.before), procs))

    def measure() -> dict[str, Any]:
        raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for total in connections:
            per = max(1, total // args.procs)
            for round_ in range(args.rounds):
                for label, kind, tree, procs in variants:
                    url = ""
                    if kind == "app-pg":
                        url = _build(n, warm, pg_database("bench_webhooks").replace(
                            "postgresql://", "postgresql+psycopg://", 1))
                    elif kind != "minimal":
                        url = _build(n, warm)
                    log(f"webhooks: {label}: {n} requests, {args.procs}x{per} connections, round {round_ + 1}")
                    warmup = _requests(range(1, warm + 1))
                    reqs = _requests(range(warm + 1, warm + n + 1))
                    result = run_server(kind, url, reqs, warmup, args.procs, per, args.waitress_threads,
                                        tree, procs)
                    if url:
                        result["db_after"] = _check(url)
                    raw.setdefault(str(args.procs * per), {}).setdefault(label, []).append(result)
                    log(f"webhooks: {label}: {result['req_per_s']} req/s, p99 {result['latency_ms']['p99']} ms, "
                        f"server {result['cpu']['server_cores']} cores, generator {result['cpu']['generator_cores']}")
        return raw

    needs_pg = "app-pg" in kinds
    raw = on_database("postgresql" if needs_pg else "sqlite", measure)
    if "skipped" in raw:
        raise SystemExit(f"app-pg: {raw['skipped']}")
    scratch("webhooks.db")
    by_connections: dict[str, Any] = {}
    targets = []
    for total, runs in raw.items():
        summary = {label: _summary(r) for label, r in runs.items()}
        block: dict[str, Any] = {"summary": summary, "runs": runs}
        for suffix in ("", "@before"):
            if "minimal" in summary and "app" + suffix in summary:
                block["ratio_app_over_minimal" + suffix.replace("@", "_")] = round(
                    summary["app" + suffix]["req_per_s_median"] / summary["minimal"]["req_per_s_median"], 3)
            if "app-pg x1" + suffix in summary and "app-pg x2" + suffix in summary:
                block["ratio_pg_2_over_1_procs" + suffix.replace("@", "_")] = round(
                    summary["app-pg x2" + suffix]["req_per_s_median"] / summary["app-pg x1" + suffix]["req_per_s_median"], 3)
        if "app" in summary:
            if total == "8":
                targets += [target("inbound (app) req/s at 8 connections", summary["app"]["req_per_s_median"], 500, ">="),
                            target("inbound (app) p99 ms at 8 connections", summary["app"]["p99_ms_median"], 100)]
            if total == "32":
                targets.append(target("inbound (app) p99 ms at 32 connections", summary["app"]["p99_ms_median"], 50))
                if "ratio_app_over_minimal" in block:
                    targets.append(target("app / minimal req/s at 32 connections", block["ratio_app_over_minimal"],
                                          0.5, ">="))
        if "ratio_pg_2_over_1_procs" in block:
            targets.append(target(f"app-pg 2 processes / 1 at {total} connections",
                                  block["ratio_pg_2_over_1_procs"], 1.7, ">="))
        by_connections[total] = block
    out: dict[str, Any] = {"requests": n, "rounds": args.rounds,
                           "load_generator": f"{args.procs} processes x (connections / {args.procs}) threads, "
                                             "http.client keep-alive, closed loop, same machine",
                           "waitress_threads": args.waitress_threads, "before_tree": args.before or None,
                           "database": "sqlite file (app, runner); postgresql, tests/pg.py (app-pg)",
                           "by_connections": by_connections, "targets": targets}
    emit(args.output, out)


if __name__ == "__main__":
    main()
