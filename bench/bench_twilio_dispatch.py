"""(b) Dispatch due check-in prompts through the real TwilioGateway (the official twilio client
over real HTTP) to the local keep-alive Twilio stand-in, against a bare loop of
`client.messages.create` with the same parameters (to, from_, body, status_callback,
validity_period), side by side in one run, at each stand-in latency (`--latencies`, default
0,2,20,100 ms added to every Messages POST):

* `bare_seq`: one plain twilio `Client`, one create after another;
* `bare_threads`: `--threads` threads, each with its own plain `Client` (its own connection),
  each looping creates over its share of the messages;
* `<tree>_seq` / `<tree>_threads`: `dispatch(..., threads=1)` / `dispatch(..., threads=T)` of
  each code tree (`--before`, default /work/wt-disp-before; `--after`, this tree), on a fresh
  copy of the same SQLite file: N check-ins in state `prompting` and their queued prompts, as
  `start_due` leaves them. dispatch claims, sends and records each (message -> sent, check-in
  -> sent with its window).

Every run is its own child process (the code tree's on sys.path first), started after the
stand-in, which runs in a process of its own; each warms its connection up with 5 creates
first. Rounds (`--reps`, default 3) run the variants in a rotated order. N per latency is sized
so a sequential run takes a few seconds (`--scale` multiplies it); the threaded runs send
`--threads` times as many (at most 2000).

    python -m bench.bench_twilio_dispatch [--quick] [--latencies 0,2] [--reps 3] [--threads 4]

Target (issue 14): dispatch >= 0.9x the bare client, one at a time and threaded (vs bare
threads), at every latency: compared on the median of the rounds (min also reported).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NAME = "twilio_dispatch"
HERE = Path(__file__).resolve()
SEQ_N = {0.0: 2000, 2.0: 1000, 20.0: 200, 100.0: 50}  # a few seconds one at a time each
THREADED_MAX = 2000
WARM = 5


# ------------------------------------------------------------------ the stand-in (own process)


def _standin(ready: Any, stop: Any, latency_s: float = 0.0) -> None:
    from bench.common import PUBLIC_URL
    from tests.twilio_standin import TwilioStandIn

    class Distant(TwilioStandIn):
        """Answers each Messages POST `latency_s` later, as a provider across the internet does."""

        def _answer(self, method, path, endpoint, auth, params, multi):  # type: ignore[no-untyped-def]
            status, body, content_type, delay = super()._answer(method, path, endpoint, auth, params, multi)
            return status, body, content_type, delay + (latency_s if endpoint == "Messages" else 0.0)

    with Distant(public_url=PUBLIC_URL) as twilio:
        ready.put(twilio.base_url)
        stop.wait()


# ------------------------------------------------------------------ one run (child process)


def _client(base_url: str) -> Any:
    """A plain twilio client pointed at the stand-in, as TwilioGateway.from_settings builds it."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from tests.twilio_standin import DEFAULT_SID, DEFAULT_TOKEN

    client = Client(DEFAULT_SID, DEFAULT_TOKEN, http_client=TwilioHttpClient(timeout=10.0))
    client.api.base_url = base_url
    client.edge = None
    client.region = None
    return client


def _calls(url: str, n: int, public_url: str) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, text

    from phonetree.gateways.twilio import SMS_STATUS_PATH, callback_url
    from tests.twilio_standin import DEFAULT_NUMBER

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, to_phone, body FROM messages ORDER BY id LIMIT :n"), {"n": n}).all()
    engine.dispose()
    # 30 minutes between not_before and expires_at (bench.common.build_due_checkin_messages).
    return [{"to": r.to_phone, "body": r.body, "from_": DEFAULT_NUMBER,
             "status_callback": callback_url(public_url, SMS_STATUS_PATH, r.id), "validity_period": 1800}
            for r in rows]


def _bare(base_url: str, calls: list[dict[str, Any]], threads: int) -> dict[str, Any]:
    clients = [_client(base_url) for _ in range(threads)]
    for client in clients:
        for kwargs in calls[:WARM]:
            client.messages.create(**kwargs)
    shares = [calls[i::threads] for i in range(threads)]
    go = threading.Barrier(threads + 1)

    def loop(client: Any, share: list[dict[str, Any]]) -> None:
        go.wait()
        for kwargs in share:
            assert client.messages.create(**kwargs).sid

    workers = [threading.Thread(target=loop, args=(c, s)) for c, s in zip(clients, shares)]
    for worker in workers:
        worker.start()
    cpu = time.process_time()
    go.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_s": time.process_time() - cpu, "sent": len(calls)}


def _dispatch(url: str, base_url: str, n: int, threads: int, public_url: str, profile: bool) -> dict[str, Any]:
    from sqlalchemy import func, select

    from phonetree.config import Settings
    from phonetree.db import dispose_all, get_engine, session_scope
    from phonetree.gateways.twilio import TwilioGateway
    from phonetree.models import CheckIn, Message
    from schedules.dispatcher import dispatch
    from tests.twilio_standin import DEFAULT_NUMBER, DEFAULT_SID, DEFAULT_TOKEN

    settings = Settings(database_url=url, gateway="twilio", public_url=public_url,
                        twilio_account_sid=DEFAULT_SID, twilio_auth_token=DEFAULT_TOKEN,
                        twilio_from_number=DEFAULT_NUMBER, twilio_api_base_url=base_url)
    gateway = TwilioGateway.from_settings(settings)
    for kwargs in _calls(url, WARM, public_url):  # its connection(s) open, as a running worker's are
        gateway.client.messages.create(**kwargs)
    engine = get_engine(url)
    with session_scope(engine) as session:
        now = session.scalar(select(func.max(Message.not_before)))
    now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now
    # The dispatch path warmed up too (SQLAlchemy compiles and caches each statement the first
    # time), as in a worker that has been running: WARM prompts sent first, not timed.
    dispatch(engine, gateway, now, limit=WARM, threads=threads)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu = time.process_time()
    started = time.perf_counter()
    result = dispatch(engine, gateway, now, limit=n, threads=threads)
    assert result.sent == n, result
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
    with session_scope(engine) as session:
        sent = session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent")) - WARM
        windows = session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.state == "sent")) - WARM
    dispose_all()
    out: dict[str, Any] = {"seconds": seconds, "cpu_s": cpu, "sent": result.sent, "failed": result.failed,
                           "retried": result.retried, "messages_sent_in_db": sent, "checkins_sent_in_db": windows}
    if profiler is not None:
        import pstats

        stats = pstats.Stats(profiler)
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]  # type: ignore[attr-defined]
        out["profile_top_tottime"] = [f"{tt:8.3f}s calls {nc:7d} {Path(f).name}:{line}({fn})"
                                      for (f, line, fn), (_cc, nc, tt, _ct, _callers) in rows]
    return out


def _child(args: argparse.Namespace) -> None:
    if args.kind == "bare":
        out = _bare(args.base_url, _calls(args.url, args.n, args.public_url), args.threads)
    else:
        out = _dispatch(args.url, args.base_url, args.n, args.threads, args.public_url, args.profile)
    print(json.dumps(out), flush=True)


def _run_child(tree: Path, kind: str, url: str, base_url: str, n: int, threads: int,
               profile: bool = False) -> dict[str, Any]:
    from bench.common import PUBLIC_URL

    # The tree's phonetree and schedules first on sys.path; tests.twilio_standin from this tree.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(HERE.parent.parent)])}
    command = [sys.executable, str(HERE), "--child", kind, "--url", url, "--base-url", base_url,
               "--n", str(n), "--threads", str(threads), "--public-url", PUBLIC_URL,
               *(["--profile"] if profile else [])]
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the comparison


def _build(n: int, now: datetime) -> Path:
    from bench.common import build_due_checkin_messages, build_population, scratch, sqlite_url
    from phonetree.db import dispose_all, get_engine

    path = scratch("twilio_dispatch_base.db")
    engine = get_engine(sqlite_url(path))
    build_population(engine, n, created_at=now, planned_until=now, contacts=2, quiet_off=True)
    build_due_checkin_messages(engine, n, now)
    dispose_all()
    return path


def _fresh_copy(base: Path, name: str) -> str:
    from bench.common import scratch, sqlite_url

    path = scratch(name)
    shutil.copyfile(base, path)
    return sqlite_url(path)


def _summary(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    return {"n": n, "per_s_median": round(n / statistics.median(seconds), 1),
            "per_s_best": round(n / min(seconds), 1), "per_s_each": [round(n / s, 1) for s in seconds],
            "cpu_ms_per_message_median": round(statistics.median(r["cpu_s"] for r in runs) / n * 1000, 3),
            "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=["bare", "dispatch"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--public-url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a quarter of the messages, 1 round")
    parser.add_argument("--latencies", default="0,2,20,100", help="ms added to each Messages POST, comma-separated")
    parser.add_argument("--reps", type=int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the messages per run")
    parser.add_argument("--threads", type=int, default=4, help="sending threads of the threaded runs")
    parser.add_argument("--before", default="/work/wt-disp-before", help="code tree benched as 'before' ('' for none)")
    parser.add_argument("--after", default=str(HERE.parent.parent), help="code tree benched as 'after'")
    parser.add_argument("--output", default=NAME, help="name of the JSON in bench/results")
    args = parser.parse_args()
    if args.child:
        args.kind = args.child
        _child(args)
        return

    from bench.common import emit, git_head, log, target

    scale = args.scale * (0.25 if args.quick else 1.0)
    reps = args.reps or (1 if args.quick else 3)
    latencies = [float(x) for x in args.latencies.split(",")]
    trees = {"after": Path(args.after)}
    if args.before:
        trees = {"before": Path(args.before), **trees}
    sizes = {ms: max(10, int(SEQ_N.get(ms, 2000 * 2 / max(ms, 2)) * scale)) for ms in latencies}
    threaded_sizes = {ms: min(THREADED_MAX, sizes[ms] * args.threads) for ms in latencies}
    now = datetime.now(timezone.utc)
    biggest = max(max(sizes.values()), max(threaded_sizes.values())) + WARM
    log(f"{NAME}: building {biggest} due prompts")
    base = _build(biggest, now)
    variants = ["bare_seq", "bare_threads", *(f"{t}_{m}" for t in trees for m in ("seq", "threads"))]

    ctx = mp.get_context("spawn")
    by_latency: dict[str, Any] = {}
    targets = []
    for ms in latencies:
        ready, stop = ctx.Queue(), ctx.Event()
        server = ctx.Process(target=_standin, args=(ready, stop, ms / 1000), daemon=True)
        server.start()
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        load = []
        try:
            base_url = ready.get(timeout=60)
            for rep in range(reps):
                order = variants[rep % len(variants):] + variants[:rep % len(variants)]
                for variant in order:
                    name, mode = variant.rsplit("_", 1)
                    threads = 1 if mode == "seq" else args.threads
                    n = sizes[ms] if mode == "seq" else threaded_sizes[ms]
                    if name == "bare":
                        out = _run_child(trees["after"], "bare", sqlite_url_of(base), base_url, n, threads)
                    else:
                        url = _fresh_copy(base, f"twilio_dispatch_{name}.db")
                        out = _run_child(trees[name], "dispatch", url, base_url, n, threads)
                        assert out["messages_sent_in_db"] == n == out["sent"] == out["checkins_sent_in_db"], out
                    runs[variant].append(out)
                    log(f"{NAME}: {ms:g} ms round {rep} {variant}: {n / out['seconds']:.1f}/s")
                load.append(os.getloadavg()[0])
        finally:
            stop.set()
            server.join(timeout=10)
            if server.is_alive():
                server.terminate()
        entry: dict[str, Any] = {"loadavg_1min_after_each_round": [round(x, 2) for x in load]}
        for variant in variants:
            mode = variant.rsplit("_", 1)[1]
            entry[variant] = _summary(runs[variant], sizes[ms] if mode == "seq" else threaded_sizes[ms])
        for tree in trees:
            for mode in ("seq", "threads"):
                bare, ours = entry[f"bare_{mode}"], entry[f"{tree}_{mode}"]
                ratio = round(ours["per_s_median"] / bare["per_s_median"], 3)
                entry[f"ratio_{tree}_{mode}_median"] = ratio
                entry[f"ratio_{tree}_{mode}_best"] = round(ours["per_s_best"] / bare["per_s_best"], 3)
                if tree == "after":
                    targets.append(target(f"{ms:g} ms, {'one at a time' if mode == 'seq' else f'{args.threads} threads'}: "
                                          "dispatch / bare (median)", ratio, 0.9, ">="))
        by_latency[f"{ms:g}ms"] = entry
    emit(args.output, {
        "database": "sqlite file", "standin": "tests/twilio_standin.py (keep-alive, TCP_NODELAY) in its own process",
        "threads": args.threads, "reps": reps, "trees": {t: {"path": str(p), "commit": git_head(p)} for t, p in trees.items()},
        "latencies": by_latency, "targets": targets,
    })


def sqlite_url_of(path: Path) -> str:
    return f"sqlite:///{path}"


if __name__ == "__main__":
    main()
