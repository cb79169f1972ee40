"""Run every benchmark, each in its own interpreter, one after another (they share 2 cores, so
never in parallel), and print one JSON summary: each benchmark's targets, met or not.

    python -m bench [--quick] [--only planner,burst]
    python -m bench.run_all [--quick]

Each benchmark also writes bench/results/<name>.json; the summary goes to
bench/results/summary.json.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import emit, log, ROOT

# name -> (module, rough full-size minutes, for the log)
BENCHMARKS = {
    "planner": ("bench.bench_planner", 5),
    "twilio_dispatch": ("bench.bench_twilio_dispatch", 4),
    "webhooks": ("bench.bench_webhooks", 6),
    "burst": ("bench.bench_burst", 17),
    "workers": ("bench.bench_workers", 3),
    "shared_rate": ("bench.bench_shared_rate", 10),
    "apscheduler_naive": ("bench.bench_apscheduler", 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes in all)")
    parser.add_argument("--only", help="comma-separated: " + ",".join(BENCHMARKS))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    import json

    summary: dict[str, object] = {}
    for name in names:
        module, minutes = BENCHMARKS[name]
        log(f"run_all: {name} ({'quick' if args.quick else f'~{minutes} min'})")
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-m", module, *(["--quick"] if args.quick else [])],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=args.timeout)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            result = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
            if result is None:
                summary[name] = {"error": f"exited {proc.returncode}"}
            else:
                summary[name] = {"targets": result.get("targets", []),
                                 "all_met": all(t["met"] for t in result.get("targets", []))}
        except subprocess.TimeoutExpired:
            summary[name] = {"error": f"timed out after {args.timeout:.0f} s"}
        summary[name]["seconds"] = round(time.monotonic() - started, 1)  # type: ignore[index]
    emit("summary", {"quick": args.quick, "benchmarks": summary})


if __name__ == "__main__":
    main()
