"""One scenario, run: the real engine ticked at chosen moments under freezegun, people's replies
and Twilio's callbacks posted, signed, to the real WSGI app, crashes that throw the engine away
mid-flight, and the invariants checked after every step."""
from __future__ import annotations

import heapq
import inspect
import io
import itertools
import random
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

import freezegun
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

import schedules.engine as engine_module
from phonetree import db as phonetree_db
from phonetree import prepared
try:
    from phonetree import work
except ImportError:  # an older commit (see _crash_before_bare_commits)
    work = None  # type: ignore[assignment]
from phonetree.checkins import resolve_by_organiser
from phonetree.plans import add_plan
from phonetree.db import get_engine, normalise_url, session_scope
from phonetree.directory import add_group, add_member, get_member, update_group
from phonetree.errors import PhonetreeError
from phonetree.checkins import OPEN_CHECKIN_STATES
from phonetree.models import CheckIn, Member, Message, Task
from phonetree.web import WebhookApp
from schedules import dispatcher
from schedules.engine import tick
from tests.simulation import actors
from tests.simulation.invariants import Checker, Violation
from tests.simulation.network import FaultGateway, Network, SimCrash
from tests.simulation.truth import Delivery, Note, Said, Truth
from tests.simulation.world import ZONE, Person, Scenario, choice_rng

# APScheduler keeps the real clock under freezegun (see tests/conftest.py: its triggers loop
# for ever over a repeated hour when handed freezegun's fold-less datetimes).
freezegun.configure(extend_ignore_list=["apscheduler"])

TOKEN = "sim-auth-token"
PUBLIC = "https://sim.example.org"
OUR_NUMBER = "+441522000000"
ACCOUNT = "AC" + "5" * 32
_MIGRATED: set[str] = set()
# When something next falls due, in one query built once (it runs after every tick).
_HINTS = select(*(select(func.min(column)).where(where).scalar_subquery() for column, where in (
    (CheckIn.due_at, CheckIn.state == "scheduled"), (CheckIn.remind_at, CheckIn.state == "sent"),
    (CheckIn.window_ends_at, CheckIn.state == "sent"), (Message.not_before, Message.state == "queued"),
    (Message.lease_until, Message.state == "sending"), (Task.expires_at, Task.state == "asked"))))
_TEMPLATES: dict[str, Path] = {}
# One Engine per database URL for the whole run (every "process" of a scenario, and every
# scenario on the same file or PostgreSQL database), its pool disposed at each start: a crash
# must lose connections and uncommitted work, which dispose() does. A new Engine would also
# throw away SQLAlchemy's compiled-statement cache, which holds none of phonetree's state but
# cost a tenth of a short scenario to rebuild, and more after each crash.
_ENGINES: dict[str, Engine] = {}
_OBSERVERS: dict[str, Engine] = {}
_CRASH_HOOKS: dict[Engine, Callable[[], None]] = {}  # engine -> the running Sim's armed crash


def _on_commit(connection: Any) -> None:
    hook = _CRASH_HOOKS.get(connection.engine)
    if hook is not None:
        hook()


def _crash_before_bare_commits() -> None:
    """A transaction straight on the driver (prepared.transaction, the webhook's bare unit of
    work in work.py) commits without SQLAlchemy's commit event: an armed crash dies there too.
    (Only the running scenario's phonetree engine commits that way; the observer never does.
    Older commits, which a regression seed is checked against, may have neither.)"""
    for module in (prepared, work):
        plain = getattr(module, "finish", None)
        if plain is None or getattr(plain, "crashes", False):
            continue

        def finish(bare: Any, commit: bool, _plain: Callable[..., None] = plain) -> None:
            if commit:
                for hook in list(_CRASH_HOOKS.values()):
                    hook()
            _plain(bare, commit)

        finish.crashes = True  # type: ignore[attr-defined]
        setattr(module, "finish", finish)


_crash_before_bare_commits()


def _shared_engine(url: str) -> Engine:
    engine = _ENGINES.get(url)
    if engine is None:
        if url in _MIGRATED:
            # A fresh process's get_engine, less the migration check (the schema is current: it
            # was migrated before the run), which costs more than a scenario's ticks.
            engine = phonetree_db.make_engine(url)
        else:
            engine = get_engine(url)
            _MIGRATED.add(url)
        event.listen(engine, "commit", _on_commit)
        _ENGINES[url] = engine
    else:
        engine.dispose()
    phonetree_db._engines[url] = engine
    return engine


def empty_postgres(url: str) -> str:
    """Empty a migrated PostgreSQL database for the next scenario, ids starting again at 1 (as in
    a database made from the template): one database for a whole run instead of one each."""
    from phonetree.models import Base

    url = normalise_url(url)
    engine = _OBSERVERS.get(url) or create_engine(url)
    _OBSERVERS[url] = engine
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    _MIGRATED.add(url)
    return url


def fresh_sqlite(directory: Path, name: str) -> str:
    """A new SQLite database, copied from one migrated once per directory (migrating each
    would take longer than the scenario)."""
    template = _TEMPLATES.get(str(directory))
    if template is None:
        template = directory / "template.db"
        get_engine(f"sqlite:///{template}")
        phonetree_db.dispose_all()
        _TEMPLATES[str(directory)] = template
    target = directory / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, target)
    url = normalise_url(f"sqlite:///{target}")
    _MIGRATED.add(url)
    return url


@dataclass
class Result:
    seed: int
    database: str
    steps: int
    violation: Violation | None
    story: str = ""
    truth: Truth | None = None
    crashes: int = 0
    errors: list[str] = field(default_factory=list)


class Sim:
    def __init__(self, scenario: Scenario, db_url: str, skip: frozenset[str] = frozenset()) -> None:
        self.scenario, self.url, self.skip = scenario, normalise_url(db_url), skip
        self.truth = Truth()
        self.real = scenario.start
        self.offset = timedelta(0)
        self.min_offset = timedelta(0)
        self.observer = _OBSERVERS.get(self.url) or create_engine(self.url)
        _OBSERVERS[self.url] = self.observer
        self.network = Network(scenario, self.truth, self.observer, lambda: self.real, self.clock,
                               self.delivered)
        self.events: list[tuple[datetime, int, str, Any]] = []
        self.seq = itertools.count()
        self.armed = False
        self.tick_token = 0
        self.down_until: datetime | None = None
        self.woken = False
        self.crashes = 0
        self.errors: list[str] = []
        self.decided: dict[tuple[str, int], str] = {}
        self.people = {p.key: p for p in scenario.people}
        self.by_phone: dict[str, Person] = {p.e164: p for p in scenario.people}
        self.member_ids: dict[tuple[str, str], int] = {}  # (group, person key) -> member id
        self.person_of: dict[int, str] = {}  # member id -> person key
        self.group_of: dict[int, str] = {}  # member id -> group name
        self.organisers: dict[str, set[int]] = {}
        self.plan_of: dict[int, Any] = {}  # plan id -> world.Plan
        self.last_tick_clock: datetime | None = None
        self.sids = itertools.count(1)
        self.rng = choice_rng(scenario.seed, "sim")
        self.hurry_rng = choice_rng(scenario.seed, "hurry")  # its own stream: see hurry_tick
        self.tick_at = scenario.start
        self.validator = RequestValidator(TOKEN)

    # -- clocks

    def clock(self) -> datetime:
        """What phonetree's clock says: real time plus the system clock's error."""
        return self.real + self.offset

    # -- the process

    def start_process(self) -> None:
        self.engine = _shared_engine(self.url)
        _CRASH_HOOKS[self.engine] = self._maybe_crash
        self.gateway = FaultGateway(self.network)
        # (Older commits' app took no account sid: checking a regression seed against the code
        # before its fix runs this same simulation there.)
        ours = {"account_sid": ACCOUNT} if "account_sid" in inspect.signature(WebhookApp).parameters else {}
        self.app = WebhookApp(self.engine, TOKEN, PUBLIC, on_change=self._wake, **ours)
        engine_module._last_purge = None  # a fresh process has never purged

    def _maybe_crash(self) -> None:
        if self.armed:
            self.armed = False
            raise SimCrash("crash just before a commit")

    def _wake(self) -> None:
        self.woken = True

    def crashed(self, where: str) -> None:
        self.crashes += 1
        self.note(f"phonetree CRASHED ({where}); a fresh process starts on the same database")
        phonetree_db.dispose_all()
        self.start_process()
        # The new process's first tick comes round within a tick interval (5 s), whatever was due.
        self.schedule_tick(self.real + timedelta(seconds=self.rng.uniform(0.5, 6)))

    def guarded(self, where: str, action: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, action()
        except SimCrash as crash:
            self.crashed(f"{where}: {crash}")
            return False, None
        except Exception as error:  # noqa: BLE001 - the runner would log it and go on; we report it
            import traceback

            self.errors.append(f"{where}: {type(error).__name__}: {error}\n" + traceback.format_exc(limit=6))
            self.note(f"phonetree RAISED {type(error).__name__} {where}: {str(error)[:200]}")
            return False, None

    def note(self, text: str) -> None:
        self.truth.notes.append(Note(self.real, self.clock(), text))

    # -- setting up

    def setup(self) -> None:
        self.start_process()
        with session_scope(self.engine) as session:
            for spec in self.scenario.groups:
                group = add_group(session, spec.name, ZONE, spec.kind)
                if spec.quiet:
                    update_group(session, group, quiet=spec.quiet)
                self.organisers[spec.name] = set()
                for membership in self.scenario.members_of(spec.name):
                    person = self.people[membership.person]
                    added = add_member(session, group, person.name, person.phone,
                                       roles=("organiser",) if membership.organiser else ())
                    member = added[0] if isinstance(added, tuple) else added
                    self.member_ids[(spec.name, person.key)] = member.id
                    self.person_of[member.id] = person.key
                    self.group_of[member.id] = spec.name
                    if membership.organiser:
                        self.organisers[spec.name].add(member.id)
                for plan in (p for p in self.scenario.plans if p.group == spec.name):
                    member = get_member(session, group, self.people[plan.person].name)
                    made, _warnings = add_plan(session, group, member, plan.at, "daily",
                                               [self.people[c].name for c in plan.contacts],
                                               window_s=plan.window_s, escalation_wait_s=plan.wait_s)
                    self.plan_of[made.id] = plan
        self.created_at = self.clock()
        self.note("groups set up: " + "; ".join(
            f"{g.name} ({g.kind}, quiet hours {g.quiet or 'default'}): " + ", ".join(
                self.people[m.person].name + (" [organiser]" if m.organiser else "")
                + (" (landline)" if self.people[m.person].landline else "")
                + (f" ({self.people[m.person].problem})" if self.people[m.person].problem else "")
                for m in self.scenario.members_of(g.name)) for g in self.scenario.groups)
            + ". Check-ins: " + "; ".join(
                f"{self.people[p.person].name} in {p.group} daily at {p.at}, window {p.window_s // 60} min, "
                f"then {', '.join(self.people[c].name for c in p.contacts)} ({p.wait_s // 60} min each)"
                for p in self.scenario.plans))

    def push(self, real: datetime, kind: str, payload: Any = None) -> None:
        heapq.heappush(self.events, (real, next(self.seq), kind, payload))

    # -- the run

    def run(self) -> Result:
        random.seed(f"dispatcher-jitter|{self.scenario.seed}")  # the dispatcher's backoff jitter
        self.checker = Checker(self)
        violation: Violation | None = None
        with freezegun.freeze_time(self.clock(), tick=False) as frozen:
            self.frozen = frozen
            self.setup()
            self.schedule_tick(self.real + timedelta(seconds=30))
            for fault in self.scenario.faults:
                self.push(fault.start, "fault", fault)
            for key, when, text, meaning in self.scenario.unprompted:
                self.push(when, "act", actors.Act(when, "sms", key, text=text, meaning=meaning))
            self.push(self.scenario.end, "end")
            while self.events:
                real, _, kind, payload = heapq.heappop(self.events)
                self.real = max(self.real, real)
                frozen.move_to(self.clock())
                if kind == "end":
                    violation = self.checker.check(final=True)
                    break
                self.step(kind, payload)
                self.truth.steps += 1
                violation = self.checker.check()
                if violation is None and self.errors:
                    violation = Violation("error", "phonetree raised an exception", "no exception",
                                          self.errors[0][-1500:])
                if violation is not None:
                    break
        _CRASH_HOOKS.pop(self.engine, None)
        self.checker.close()
        from tests.simulation.story import tell

        story = tell(self, violation) if violation else ""
        phonetree_db.dispose_all()
        self.observer.dispose()
        kind = "postgresql" if self.url.startswith("postgresql") else "sqlite"
        return Result(self.scenario.seed, kind, self.truth.steps, violation, story, self.truth,
                      self.crashes, self.errors)

    def is_down(self) -> bool:
        return self.down_until is not None and self.real < self.down_until

    def step(self, kind: str, payload: Any) -> None:
        if kind == "tick":
            if payload != self.tick_token:
                return  # superseded: a restarted process ticks on its own schedule
            if self.is_down():
                self.schedule_tick(self.down_until)  # type: ignore[arg-type]
                return
            at = self.clock()

            def ticking() -> Any:
                # An armed crash dies at the next commit. A tick used to begin with one (the
                # planner's probe, a write transaction that changed nothing); it now begins with a
                # read, and commits only what it does: so a crash still armed dies as the tick
                # starts, where it did, rather than waiting for a tick with something to write.
                self._maybe_crash()
                return tick(self.engine, self.gateway, at)

            ok, _ = self.guarded("in a tick", ticking)
            if ok:
                self.last_tick_clock = at if self.last_tick_clock is None else max(self.last_tick_clock, at)
                self.checker.after_tick(at)
                self.schedule_tick(self.next_tick())
            # (after a crash, `crashed` has already scheduled the new process's first tick)
        elif kind == "fault":
            self.fault(payload)
        elif kind == "act":
            if not payload.cancelled:
                self.act(payload)
        elif kind == "status":
            self.sms_status(*payload)
        elif kind == "up":
            self.note("phonetree is running again")
            self.schedule_tick(self.real + timedelta(seconds=self.rng.uniform(0.5, 6)))
        if kind in ("fault", "act", "status"):
            self.hurry_tick()

    def schedule_tick(self, real: datetime) -> None:
        """The one next tick (a later call replaces an earlier one)."""
        self.tick_token += 1
        self.tick_at = real
        self.push(real, "tick", self.tick_token)

    def hurry_tick(self) -> None:
        """After a webhook, a command or a clock jump: something it made (an ask that expires, a
        message held till later) may fall due before the tick planned, and a real service would
        tick within 5 s of then. (Its own RNG, so a scenario in which nothing is hurried runs as
        before.)"""
        if self.is_down():
            return
        soon = self.next_tick(self.hurry_rng)
        if soon < self.tick_at:
            self.schedule_tick(soon)

    def next_tick(self, rng: random.Random | None = None) -> datetime:
        """The next moment to tick: soon when something is due (a real service ticks every few
        seconds; ticking when things fall due is what matters), else within one to three hours.
        An idle tick only plans (36 h ahead, replanned 24 h ahead) and purges (hourly), so a few
        a day exercise them; each costs as much as a busy one, and they were most of a run."""
        rng = rng or self.rng
        idle = self.real + timedelta(minutes=rng.uniform(60, 180))
        with Session(self.observer) as session:
            hints = list(session.execute(_HINTS).one())
        # A hint already past was there for the tick just run, which left it (an ask still
        # unsent, a broken engine): ticking again at once would only spin.
        due = [h - self.offset for h in hints if h is not None and h - self.offset > self.real]
        # The end of a provider outage or 429 burst: what waited for it (a prompt whose day ends
        # soon, held asks) is due then, and a real service ticks within 5 s of it (seed 10101829:
        # the next tick was the idle one, 2 h on, and a prompt due at 23:55 was reported late).
        due += [f.end for f in self.scenario.faults if f.kind in ("outage", "burst") and f.end > self.real]
        if not due:
            return idle
        # The runner's tick and send jobs come round every 5 s (PHONETREE_TICK_SECONDS).
        soonest = min(due) + timedelta(seconds=rng.uniform(0.5, 6))
        return min(idle, max(soonest, self.real + timedelta(seconds=rng.uniform(0.5, 6))))

    def fault(self, fault: Any) -> None:
        if fault.kind == "outage":
            self.note(f"provider outage: every send answered HTTP {fault.status} for {fault.length}")
        elif fault.kind == "burst":
            self.note(f"provider rate limit: every send answered 429 for {fault.length}")
        elif fault.kind == "jump":
            self.offset += fault.delta
            self.min_offset = min(self.min_offset, self.offset)
            self.frozen.move_to(self.clock())
            self.note(f"the system clock jumped {'forward' if fault.delta > timedelta(0) else 'back'} "
                      f"{abs(fault.delta)} (now {self.offset} from real time)")
        elif fault.kind == "crash":
            self.armed = True
            self.note("(a crash is armed: the process dies at its next commit)")
        elif fault.kind == "down":
            self.down_until = fault.end
            self.note(f"phonetree STOPPED (machine off) for {fault.length}")
            phonetree_db.dispose_all()
            self.crashes += 1
            self.start_process()
            self.push(fault.end, "up")

    # -- the phone network: deliveries and what people do with them

    def delivered(self, delivery: Delivery) -> None:
        person = self.by_phone.get(delivery.to)
        if person is None:
            return
        if delivery.channel == "sms":
            rng = choice_rng(self.scenario.seed, "receipt", delivery.message_id, delivery.sid)
            later = delivery.real + timedelta(seconds=rng.uniform(1, 20))
            if person.problem == "phone_off":
                self.push(later, "status", (delivery, "undelivered", "30003"))
                return
            self.push(later, "status", (delivery, "delivered", ""))
            if rng.random() < 0.05:  # Twilio repeats a callback now and then
                self.push(later + timedelta(seconds=5), "status", (delivery, "delivered", ""))
            if rng.random() < 0.05:  # and sends them out of order
                self.push(later + timedelta(seconds=2), "status", (delivery, "sent", ""))
        elif person.problem == "phone_off":
            self.push(delivery.real + timedelta(seconds=30), "act",
                      actors.Act(delivery.real + timedelta(seconds=30), "call", person.key, delivery=delivery,
                                 digits="-", meaning="no_answer"))
            return
        for act in self.reactions(delivery, person):
            if act.kind == "sms" and delivery.template in actors.PROMPTS and self.said_lately(act):
                continue  # two prompts at once (one person in two groups) get one reply, not two
            self.push(act.real, "act", act)

    def said_lately(self, act: actors.Act) -> bool:
        """Whether this person is about to send, or has just sent, the same kind of reply."""
        pending = any(kind == "act" and not other.cancelled and other.person == act.person
                      and other.meaning == act.meaning and other.kind == "sms" for _, _, kind, other in self.events)
        recent = any(s.person == act.person and s.meaning == act.meaning and act.real - s.real < timedelta(minutes=10)
                     for s in self.truth.said)
        return pending or recent

    def reactions(self, delivery: Delivery, person: Person) -> list[actors.Act]:
        quiet = person.key in self.scenario.quiet_people
        if delivery.template in actors.PROMPTS and delivery.checkin_id is not None:
            with Session(self.observer) as session:
                window = session.scalar(select(CheckIn.window_s).where(CheckIn.id == delivery.checkin_id)) or 1800
            acts = actors.react_to_prompt(self.scenario.seed, delivery, person, quiet, window, self.decided,
                                          dict(self.scenario.scripted))
            self.truth.behaviours.add(f"prompt:{self.decided.get((person.key, delivery.checkin_id))}")
            return acts
        if delivery.template in actors.ASKS and delivery.task_id is not None:
            subject = self.people[self.person_of[delivery.subject_id]].name if delivery.subject_id else ""
            acts = actors.react_to_ask(self.scenario.seed, delivery, person, quiet, subject,
                                       delivery.template in actors.ORGANISER_ASKS, dict(self.scenario.scripted))
            self.truth.behaviours.add(f"ask:{acts[0].meaning if acts else 'nothing'}")
            return acts
        if delivery.template == "stand_down" and delivery.task_id is not None:
            # Told they needn't ring: most people then don't reply at all.
            rng = choice_rng(self.scenario.seed, "stood down", delivery.message_id)
            for _, _, kind, act in self.events:
                if kind == "act" and act.about_task == delivery.task_id and act.person == person.key:
                    act.cancelled = act.cancelled or rng.random() < 0.7
        if delivery.channel == "voice" and delivery.template not in actors.PROMPTS | actors.ASKS:
            # A spoken notice: answered, listened to, hung up.
            return [actors.Act(delivery.real + timedelta(seconds=20), "call", person.key, delivery=delivery,
                               digits="", meaning="listened")]
        return []

    # -- webhooks: signed, through the WSGI app, exactly as Twilio would call them

    def post(self, path: str, params: dict[str, str], query: str = "") -> str | None:
        """POST to the app; the status line, or None if phonetree wasn't there to answer."""
        if self.is_down():
            return None
        url = PUBLIC + path + (f"?{query}" if query else "")
        body = urlencode(params).encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080", "HTTP_X_TWILIO_SIGNATURE": self.validator.compute_signature(url, params),
        }
        captured: list[str] = []
        self.woken = False
        ok, _ = self.guarded(f"answering {path}", lambda: b"".join(self.app(environ, lambda s, h: captured.append(s))))
        if not ok:
            return None
        if captured and captured[0].startswith("403"):
            # Signed with our token, shaped as Twilio's: a refusal means the simulation is wrong.
            raise RuntimeError(f"the app refused the simulation's {path} request: {params}")
        if self.woken:  # the runner's wake(): send what the reply queued, now
            self.woken = False
            self.guarded("sending after a reply", self.send_now)
        return captured[0] if captured else None

    def send_now(self) -> None:
        """The runner's send pass, woken by a change. Most wake-ups (a delivery receipt, say)
        queue nothing; when the tick's own probe finds nothing due, the pass would claim
        nothing, so it is not run (it costs a read of the outage table and a claim transaction)."""
        now = self.clock()
        if engine_module.due(self.engine, now)["send"]:
            dispatcher.dispatch(self.engine, self.gateway, now)

    def sms_status(self, delivery: Delivery, status: str, code: str) -> None:
        params = {"MessageSid": delivery.sid, "MessageStatus": status, "AccountSid": ACCOUNT,
                  "From": OUR_NUMBER, "To": delivery.to}
        if code:
            params["ErrorCode"] = code
        self.post("/twilio/status/message", params, urlencode({"m": delivery.message_id}))

    def act(self, act: actors.Act) -> None:
        person = self.people[act.person]
        if act.kind == "resolve":
            self.resolve(act, person)
        elif act.kind == "call":
            self.call(act, person)
        else:
            self.text(act, person)

    def open_checkins(self, phone: str) -> dict[int, list[tuple[int, int]]]:
        """member id -> [(open check-in id, number of tasks on it)], for the members with this phone."""
        found: dict[int, list[tuple[int, int]]] = {}
        with Session(self.observer) as session:
            members = list(session.scalars(select(Member.id).where(Member.phone == phone)))
            for member_id in members:
                found[member_id] = [(c, session.scalar(select(func.count(Task.id)).where(Task.checkin_id == c)) or 0)
                                    for c in session.scalars(select(CheckIn.id).where(
                                        CheckIn.member_id == member_id, CheckIn.state.in_(OPEN_CHECKIN_STATES)))]
        return found

    def text(self, act: actors.Act, person: Person) -> None:
        text = act.text
        if act.meaning in ("done", "cant") and self.asks_held(person) > 1 and act.about_task is not None:
            with Session(self.observer) as session:
                subject = session.scalar(select(Task.subject_id).where(Task.id == act.about_task))
            if subject is not None:
                text = f"{text} {self.people[self.person_of[subject]].name}"  # say which
        sid = "SM" + f"{next(self.sids):032x}"
        said = Said(self.real, self.clock(), person.e164, person.key, text, act.meaning, "sms",
                    about_task=act.about_task, about_checkin=act.about_checkin, sid=sid)
        self.truth.said.append(said)
        if act.meaning == "stop":
            self.network.stopped.add(person.e164)  # the provider blocks it whatever phonetree does
        before = self.open_checkins(person.e164)
        status = self.post("/twilio/sms", {"MessageSid": sid, "AccountSid": ACCOUNT, "From": person.e164,
                                           "To": OUR_NUMBER, "Body": text, "NumSegments": "1"})
        said.accepted = bool(status and status.startswith("200"))
        if said.accepted and choice_rng(self.scenario.seed, "repeat", sid).random() < 0.05:
            # Twilio delivers the same webhook again now and then: the same MessageSid, no second effect.
            self.note(f"Twilio delivers {person.name}'s {text!r} again (same MessageSid)")
            self.post("/twilio/sms", {"MessageSid": sid, "AccountSid": ACCOUNT, "From": person.e164,
                                      "To": OUR_NUMBER, "Body": text, "NumSegments": "1"})
        said.why_not = "" if said.accepted else ("phonetree was down" if status is None and self.is_down()
                                                 else f"answered {status or 'nothing (crashed)'}")
        if said.accepted:
            self.truth.accepted_sids.add(sid)
            self.checker.after_reply(said, before)

    def asks_held(self, person: Person) -> int:
        recent = [d for d in self.truth.deliveries if d.to == person.e164 and d.template in actors.ASKS
                  and self.real - d.real < timedelta(hours=6)]
        return len({d.task_id for d in recent})

    def call(self, act: actors.Act, person: Person) -> None:
        delivery = act.delivery
        assert delivery is not None
        query = urlencode({"m": delivery.message_id})
        common = {"CallSid": delivery.sid, "AccountSid": ACCOUNT, "From": OUR_NUMBER, "To": delivery.to}
        if act.digits in ("-", "machine"):
            self.truth.unanswered_calls.add(delivery.message_id)
            status = {"-": "no-answer", "machine": "completed"}[act.digits]
            self.post("/twilio/voice/status", {**common, "CallStatus": status,
                                               "AnsweredBy": "machine_start" if act.digits == "machine" else ""}, query)
            return
        if act.meaning == "listened":
            self.post("/twilio/voice/status", {**common, "CallStatus": "completed", "AnsweredBy": "human"}, query)
            return
        before = self.open_checkins(person.e164) if delivery.template in actors.PROMPTS else {}
        meaning = {"1": "key_ok", "2": "key_help"}.get(act.digits, "silent") if delivery.template in actors.PROMPTS \
            else {"1": "key_done", "2": "key_cant"}.get(act.digits, "silent")
        said = Said(self.real, self.clock(), person.e164, person.key, act.digits or "(no key)", meaning, "voice",
                    about_task=act.about_task, about_checkin=act.about_checkin, sid=delivery.sid)
        self.truth.said.append(said)
        status = self.post("/twilio/voice/gather", {**common, "Digits": act.digits, "CallStatus": "in-progress"}, query)
        if not act.digits and status and status.startswith("200"):
            status = self.post("/twilio/voice/gather", {**common, "Digits": "", "CallStatus": "in-progress"},
                               urlencode({"m": delivery.message_id, "attempt": 2}))
        said.accepted = bool(status and status.startswith("200")) and bool(act.digits)
        said.why_not = "" if said.accepted else ("no key pressed" if not act.digits else "phonetree didn't answer")
        if said.accepted:
            self.checker.after_reply(said, before)
        self.post("/twilio/voice/status", {**common, "CallStatus": "completed", "AnsweredBy": "human"}, query)

    def resolve(self, act: actors.Act, person: Person) -> None:
        if self.is_down() or act.member_id is None:
            return
        member_id = act.member_id
        name = self.people[self.person_of[member_id]].name

        def run() -> bool:
            with session_scope(self.engine) as session:
                member = session.get(Member, member_id)
                assert member is not None
                try:
                    resolve_by_organiser(session, member, self.clock(), f"resolved by {person.name}")
                except PhonetreeError:
                    return False
            return True

        ok, done = self.guarded("in `phonetree resolve`", run)
        if ok and done:
            self.truth.resolves.append((self.real, self.clock(), member_id))
            self.note(f"{person.name} ran `phonetree resolve {self.group_of[member_id]} {name}`")
            self.guarded("sending after resolve", self.send_now)


def run_scenario(scenario: Scenario, db_url: str, skip: frozenset[str] = frozenset()) -> Result:
    return Sim(scenario, db_url, skip).run()
