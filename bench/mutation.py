"""Mutation testing of the safety-critical modules, on demand (not in CI, not in pytest).

    pip install -e ".[test,mutation]"
    nice -n 19 python -m bench.mutation --module replies
    nice -n 19 python -m bench.mutation --module replies --module tasks --jobs 1
    nice -n 19 python -m bench.mutation --module escalation --only 'phonetree.escalation.x_ask*'
    python -m bench.mutation --list

Each module is mutated by mutmut 3 in its own scratch copy of the repo
(`.mutation/<module>/`, git-ignored), so runs of different modules never share state and the
worktree is never touched. mutmut records which tests reach each function and runs only those
for a mutant of it, from the test selection below: the test files that exercise the module,
SQLite only (`-k "not postgresql"`: PostgreSQL would double the time and changes nothing a
mutant of these modules can do). A mutant is *killed* when a test fails, *survived* when all
pass, *timeout* when the tests run 15x longer than on the clean code (an infinite loop, usually:
counted as caught). The summary (JSON on stdout, and `.mutation/<module>/summary.json`) lists
every survivor; `.mutation/<module>/survivors.diff` holds each survivor's diff (`mutmut show`).

A survivor gets a test (tests/test_mutants_*.py) or a line in bench/mutation_equivalents.md
saying why no test can tell it from the original. Every run starts from a fresh copy (mutmut's
cache would otherwise keep verdicts from code or tests that have since changed).

`--only GLOB` (repeatable) runs just the mutants whose names match (fnmatch, as mutmut 3 matches
the names given to `mutmut run`; e.g. `phonetree.escalation.x_ask_next*`, `*x__expired__*`), so a
run stopped part-way can be finished function by function; the summary then counts only those.

`--recheck TEST_FILE` (repeatable; `file::test` too) re-runs each survivor of the last run
against the test files given, as they are in this tree now (copied into the scratch copy's
mutants/), one pytest per survivor with `MUTANT_UNDER_TEST` set: a check of survivors against
tests outside the module's selection. Its verdicts go to `.mutation/<module>/recheck.json`; the
mutmut run's own verdicts are left as they were. A new pytest per survivor costs 20-35 s here;
for many survivors `--resume --only NAME...` in the copy is quicker (mutmut forks from a loaded
process, and picks up new tests copied into the copy).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutation"

# module -> (file to mutate, the test files that exercise it). Found by grep and by mutmut's own
# per-function coverage; tests/test_mutants_<module>.py is added when it exists, and files an
# older checkout lacks are skipped. test_faults.py (85 s on SQLite) and the simulation are left
# out: mutmut runs every covering test for each surviving mutant, and on 2 shared cores they
# would take hours; they cover the gateways and workers more than these modules.
MODULES: dict[str, tuple[str, list[str]]] = {
    "replies": ("phonetree/replies.py", ["tests/test_replies.py", "tests/test_distress.py"]),
    "quiet_hours": ("phonetree/quiet_hours.py", ["tests/test_quiet_hours.py", "tests/test_organiser.py",
                                                 "tests/test_checkin_flow.py", "tests/test_planner.py"]),
    "tasks": ("phonetree/tasks.py", ["tests/test_checkin_flow.py", "tests/test_rotas.py",
                                     "tests/test_cascades.py", "tests/test_delivery.py"]),
    # test_mutants_tasks.py drives escalation.task_cant through tasks.cant/unreachable (CANT vs
    # unreachable on record): without it the 2f8d72e run counted mutants it kills as survivors.
    "escalation": ("phonetree/escalation.py", ["tests/test_checkin_flow.py", "tests/test_help_stays_asked.py",
                                               "tests/test_organiser.py", "tests/test_reports.py",
                                               "tests/test_mutants_tasks.py"]),
    "checkins": ("phonetree/checkins.py", ["tests/test_checkin_flow.py", "tests/test_planner.py",
                                           "tests/test_help_stays_asked.py", "tests/test_web.py"]),
    # The first run (3ca8de6) had only the first six: keypress (voice), PAUSE/BACK/STOP, DONE from a
    # contact asked twice were barely reached. The rest reach them (found by the run's survivors).
    "inbound": ("phonetree/inbound.py", ["tests/test_checkin_flow.py", "tests/test_help_stays_asked.py",
                                         "tests/test_shared_numbers.py", "tests/test_web.py",
                                         "tests/test_rotas.py", "tests/test_cascades.py",
                                         "tests/test_delivery.py", "tests/test_journal.py", "tests/test_organiser.py",
                                         "tests/test_forget_traces.py", "tests/test_mutants_escalation.py",
                                         "tests/test_mutants_tasks.py"]),
    # test_receipts_before_marks.py is the only file that sends a receipt for a message never
    # marked sent (delivery.left); 6 s, so it costs little.
    "delivery": ("phonetree/delivery.py", ["tests/test_delivery.py", "tests/test_web.py",
                                           "tests/test_receipts_before_marks.py"]),
    "dispatcher": ("schedules/dispatcher.py", ["tests/test_checkin_flow.py", "tests/test_delivery.py",
                                               "tests/test_provider_outage.py", "tests/test_web.py"]),
}

# What a scratch copy needs: the code, the tests, and the config pytest reads.
COPY = ["phonetree", "schedules", "cli", "tests", "pyproject.toml"]
# bench/mutation_plugin.py copies new SQLite files from one migrated database (10x quicker).
PYTEST_ARGS = ["-p", "no:cacheprovider", "-p", "no:randomly", "-p", "bench.mutation_plugin", "-x", "-q"]
# mutmut needs the selection green on the clean code: `--deselect NAME` leaves out a test that is
# red for reasons of its own (measuring b08a582 needed `--deselect test_audit_lists_organiser_changes`,
# red on any date after 2026-11-30 until issue 11's fix).
SQLITE_ONLY = "not postgresql"

ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}


def selection(module: str) -> list[str]:
    """The module's test files that exist here (an older checkout lacks some)."""
    _, tests = MODULES[module]
    return [t for t in [*tests, f"tests/test_mutants_{module}.py"] if (ROOT / t).exists()]


def scratch(module: str, tag: str | None) -> Path:
    return SCRATCH / (f"{module}-{tag}" if tag else module)


def prepare(module: str, deselect: list[str], tag: str | None) -> Path:
    work = scratch(module, tag)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-*")
    for name in COPY:
        src, dst = ROOT / name, work / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    (work / "bench").mkdir(exist_ok=True)
    for name in ("__init__.py", "mutation_plugin.py"):
        shutil.copy2(ROOT / "bench" / name, work / "bench" / name)
    target, _ = MODULES[module]
    # One line per argument: mutmut's setup.cfg reader splits lists on newlines.
    lines = ["[mutmut]", "source_paths =", "    phonetree", "    schedules", "    cli",
             f"only_mutate = {target}", "also_copy =", "    bench", "pytest_add_cli_args ="]
    keyword = " and ".join([SQLITE_ONLY, *(f"not {name}" for name in deselect)])
    lines += [f"    {arg}" for arg in [*PYTEST_ARGS, "-k", keyword]]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in selection(module)]
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")
    return work


def tests_run(work: Path) -> list[str]:
    """The test selection the scratch copy was made with (its setup.cfg)."""
    lines = (work / "setup.cfg").read_text().splitlines()
    start = lines.index("pytest_add_cli_args_test_selection =") + 1
    return [line.strip() for line in lines[start:] if line.startswith("    ")]


def only_globs(work: Path) -> list[str]:
    """The --only globs the scratch copy was run with (none: every mutant)."""
    path = work / "only.json"
    return json.loads(path.read_text()) if path.exists() else []


def results(work: Path) -> dict[str, str]:
    """mutant name -> status, from mutmut's per-file meta data; with --only, just the mutants it
    matched (the others were never meant to run, so they are not "not checked")."""
    globs = only_globs(work)
    out: dict[str, str] = {}
    for meta in (work / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            if globs and not any(name == g or fnmatch.fnmatch(name, g) for g in globs):
                continue
            out[name] = "not checked" if code is None else STATUS.get(code, "suspicious")
    return out


def run(module: str, jobs: int, deselect: list[str], tag: str | None, only: list[str],
        resume: bool = False) -> dict[str, object]:
    work = scratch(module, tag)
    counted = only
    if resume and (work / "setup.cfg").exists():
        # The same copy: mutmut reuses its per-test coverage and keeps the verdicts so far (it
        # re-runs only the mutants named now); the summary covers the mutants of every --only run
        # in it (none: all of them).
        earlier = only_globs(work)
        counted = [*earlier, *(g for g in only if g not in earlier)] if earlier and only else []
    else:
        work = prepare(module, deselect, tag)
    (work / "only.json").write_text(json.dumps(counted) + "\n")
    started = time.monotonic()
    mutmut = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())"]
    log = work / "mutmut.log"
    with log.open("w") as out:
        proc = subprocess.run([*mutmut, "run", "--max-children", str(jobs), *only], cwd=work, env=ENV,
                              stdout=out, stderr=subprocess.STDOUT)
    return report(module, tag, round(time.monotonic() - started), proc.returncode)


def report(module: str, tag: str | None = None, seconds: int | None = None,
           exit_code: int | None = None) -> dict[str, object]:
    """The summary of the last run in the module's scratch copy (also written to summary.json)."""
    work = scratch(module, tag)
    env = ENV
    status = results(work)
    counts = Counter(status.values())
    survivors = sorted(name for name, s in status.items() if s == "survived")
    # Every survivor's diff from one process (a `mutmut show` each costs a start-up each).
    show_all = ("import sys\nfrom mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant\n"
                "for name in sys.argv[1:]:\n"
                "    print(f'# {name}'); print(get_diff_for_mutant(name, path=find_mutant(name).path))\n")
    with (work / "survivors.diff").open("w") as diff:
        if survivors:
            subprocess.run([sys.executable, "-c", show_all, *survivors], cwd=work, env=env, stdout=diff,
                           stderr=subprocess.DEVNULL)
    killed = counts["killed"] + counts["timeout"]
    total = sum(counts.values())
    summary = {
        "module": module, "file": MODULES[module][0], "tests": tests_run(work), "only": only_globs(work),
        "mutants": total, "killed": counts["killed"], "timeout": counts["timeout"],
        "survived": counts["survived"], "other": {k: v for k, v in counts.items()
                                                  if k not in ("killed", "timeout", "survived")},
        "score": round(killed / total, 3) if total else None,
        "seconds": seconds, "mutmut_exit": exit_code,
        "survivors": survivors,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def recheck(module: str, tag: str | None, test_files: list[str], only: list[str]) -> dict[str, object]:
    """Each survivor of the last run (matching `only`, if given) against `test_files` as they are
    now: killed when a test fails, survived when they all pass (the selection's -k included)."""
    work = scratch(module, tag)
    survivors = [name for name, s in sorted(results(work).items()) if s == "survived"
                 and (not only or any(fnmatch.fnmatch(name, g) for g in only))]
    for name in {t.split("::")[0] for t in test_files}:  # as they are now (written for these survivors, say)
        shutil.copy2(ROOT / name, work / "mutants" / name)
    keyword = next(line.strip() for line in (work / "setup.cfg").read_text().splitlines()
                   if line.strip().startswith("not postgresql"))
    verdicts: dict[str, str] = {}
    started = time.monotonic()
    for name in survivors:
        proc = subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS, "-k", keyword, *test_files],
                              cwd=work / "mutants", env={**ENV, "MUTANT_UNDER_TEST": name},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        verdicts[name] = {0: "survived", 1: "killed"}.get(proc.returncode, f"exit {proc.returncode}")
        print(f"{name}: {verdicts[name]}", file=sys.stderr, flush=True)
    counts = Counter(verdicts.values())
    summary = {"module": module, "tests": test_files, "only": only, "survivors_rechecked": len(verdicts),
               "killed": counts["killed"], "survived": counts["survived"],
               "other": {k: v for k, v in counts.items() if k not in ("killed", "survived")},
               "seconds": round(time.monotonic() - started),
               "still_surviving": sorted(n for n, v in verdicts.items() if v != "killed")}
    (work / "recheck.json").write_text(json.dumps({**summary, "verdicts": verdicts}, indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="repeatable")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    parser.add_argument("--deselect", action="append", default=[], metavar="TEST",
                        help="leave out tests whose name holds TEST (red on the clean code); repeatable")
    parser.add_argument("--tag", help="scratch copy .mutation/<module>-TAG, so two runs of a module can coexist")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="run only the mutants whose names match GLOB (mutmut's fnmatch); repeatable")
    parser.add_argument("--resume", action="store_true",
                        help="run again in the existing scratch copy (same code and tests: its coverage and "
                             "verdicts are kept) instead of a fresh one; with --only, just those mutants")
    parser.add_argument("--recheck", action="append", default=[], metavar="TEST_FILE",
                        help="re-run the last run's survivors against these test files as they are now "
                             "(with --only, just the survivors matching); repeatable")
    parser.add_argument("--report", action="store_true",
                        help="summarise the last run in .mutation/<module> again, without running")
    args = parser.parse_args()
    if args.list or not args.module:
        for name in MODULES:
            print(f"{name:12} {MODULES[name][0]:26} {' '.join(selection(name))}")
        return
    os.nice(19 - os.nice(0))  # a shared machine: take only idle CPU (a no-op under nice -n 19)
    for module in args.module:
        summary = (report(module, args.tag) if args.report
                   else recheck(module, args.tag, args.recheck, args.only) if args.recheck
                   else run(module, args.jobs, args.deselect, args.tag, args.only, args.resume))
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
