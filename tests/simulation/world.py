"""A scenario: who is in which group, whose check-in is when, and what goes wrong when. It is
plain data made from a seed, so a failing seed can be shrunk by taking parts away (see
`shrink.py`) and the run itself draws every later choice from `choice_rng(seed, key)`, keyed by
what the choice is about, so removing one part does not reshuffle all the others."""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

ZONE = "Europe/London"
LONDON = ZoneInfo(ZONE)
UTC = timezone.utc

# Days the simulated day is drawn from: the two DST changes of 2026 weigh most.
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)
DAYS = [SPRING, SPRING, AUTUMN, AUTUMN, date(2026, 3, 28), date(2026, 10, 24), date(2026, 6, 15),
        date(2026, 12, 1), date(2026, 1, 7)]

NAMES = ["Pat", "Jo", "Sam", "Vera", "Margaret", "Ali", "Chris", "Dee", "Eve", "Fran", "Gus", "Hal",
         "Ivy", "Kit", "Lou", "Mo", "Ned", "Olu", "Ros", "Tam", "Una", "Wyn"]
# Used only once NAMES run out (three groups of eight), so adding them changed no earlier seed.
MORE_NAMES = ["Bea", "Cal", "Dot", "Ed", "Flo", "Gil", "Jas", "Len", "Max", "Nan", "Pip", "Rae", "Sid", "Viv"]
GROUPS = ["Alpha", "Beta", "Gamma"]
KINDS = ["rural", "family", "grandparents"]


def choice_rng(seed: int, *key: object) -> random.Random:
    """An RNG for one decision, stable whatever else the scenario holds."""
    return random.Random(f"{seed}|" + "|".join(map(str, key)))


@dataclass(frozen=True)
class Person:
    """One human with one phone. `problem`: not_in_use (the number is dead), no_texts (a mobile
    number that can't take SMS), phone_off (texts come back undelivered, 30003)."""

    key: str
    name: str
    phone: str  # as typed by the organiser
    e164: str
    landline: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class Membership:
    group: str
    person: str  # Person.key
    organiser: bool = False


@dataclass(frozen=True)
class Plan:
    group: str
    person: str
    at: str  # local HH:MM
    contacts: tuple[str, ...]  # person keys, in order
    window_s: int
    wait_s: int


@dataclass(frozen=True)
class GroupSpec:
    name: str
    kind: str
    quiet: str | None  # "off", "HH:MM-HH:MM", or None for the kind's default


@dataclass(frozen=True)
class Fault:
    """Something that goes wrong, in real time. kind: outage (the provider answers 5xx),
    burst (429s), down (phonetree isn't running), jump (the system clock moves by `delta`),
    crash (the process dies at the next database commit after `start`)."""

    kind: str
    start: datetime
    length: timedelta = timedelta(0)
    status: int = 503
    delta: timedelta = timedelta(0)

    @property
    def end(self) -> datetime:
        return self.start + self.length


@dataclass(frozen=True)
class Scenario:
    seed: int
    start: datetime  # real time the groups are set up (UTC)
    end: datetime
    groups: tuple[GroupSpec, ...]
    people: tuple[Person, ...]
    memberships: tuple[Membership, ...]
    plans: tuple[Plan, ...]
    faults: tuple[Fault, ...] = ()
    timeout_rate: float = 0.0  # per send: the provider's answer times out
    midsend_crash_rate: float = 0.0  # per send: the process dies after the provider took it
    quiet_people: frozenset[str] = field(default_factory=frozenset)  # never reply to anything
    # person key -> what they do with every check-in prompt (actors.prompt_behaviour's names);
    # for hand-written scenarios (tests/test_simulation.py), instead of a random choice.
    scripted: tuple[tuple[str, str], ...] = ()
    # Texts nobody prompted: (person key, real time, text, meaning) - a crisis at an odd hour.
    unprompted: tuple[tuple[str, datetime, str, str], ...] = ()

    def person(self, key: str) -> Person:
        return next(p for p in self.people if p.key == key)

    def members_of(self, group: str) -> list[Membership]:
        return [m for m in self.memberships if m.group == group]

    def without(self, **changes: object) -> "Scenario":
        return replace(self, **changes)  # type: ignore[arg-type]


def _local(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def _check_in_time(rng: random.Random, quiet: str | None, kind: str, day: date) -> tuple[str, str | None]:
    """A local time outside the group's quiet hours (add_plan refuses others); around midnight
    and inside the DST hour when quiet hours are off."""
    if quiet == "off":
        if day in (SPRING, AUTUMN) and rng.random() < 0.6:
            return f"{rng.choice([0, 1, 1, 2])}:{rng.randrange(0, 60, 5):02d}".zfill(5), quiet
        hour = rng.choice([23, 23, 0, 0, 1, 9, 13, 18, 22])
        return f"{hour:02d}:{rng.randrange(0, 60, 5):02d}", quiet
    earliest = {"rural": 8, "family": 8, "grandparents": 9}[kind]
    latest = {"rural": 20, "family": 21, "grandparents": 19}[kind]
    hour = rng.randint(earliest, latest)
    return f"{hour:02d}:{rng.randrange(0, 60, 5):02d}", quiet


def make_scenario(seed: int) -> Scenario:
    rng = random.Random(seed)
    day = rng.choice(DAYS)
    names = iter(rng.sample(NAMES, len(NAMES)) + MORE_NAMES)
    mobiles = iter(range(100001, 199999, rng.randint(1, 37)))
    landlines = iter(range(500001, 500999, rng.randint(1, 7)))
    people: list[Person] = []

    def new_person(organiser: bool) -> Person:
        name = next(names)
        landline = not organiser and rng.random() < 0.12
        if landline:
            number = f"01522 {next(landlines)}"
            e164 = "+441522" + number.split()[1]
        else:
            number = f"07911 {next(mobiles)}"
            e164 = "+447911" + number.split()[1]
        problem = None
        if not organiser and not landline and rng.random() < 0.12:
            problem = rng.choice(["not_in_use", "no_texts", "phone_off"])
        person = Person(key=name.lower(), name=name, phone=number, e164=e164, landline=landline, problem=problem)
        people.append(person)
        return person

    groups: list[GroupSpec] = []
    memberships: list[Membership] = []
    plans: list[Plan] = []
    shared: Person | None = None
    for g in range(rng.choice([1, 1, 2, 2, 2, 3])):
        kind = rng.choice(KINDS)
        quiet = rng.choice([None, None, "off", "off", "22:30-07:00", "01:00-06:00"])
        if day in (SPRING, AUTUMN) and rng.random() < 0.5:
            quiet = "off"
        spec = GroupSpec(GROUPS[g], kind, quiet)
        groups.append(spec)
        size = rng.randint(3, 8)
        # An organiser whose phone works, so a person can always be alerted (a group whose every
        # organiser is unreachable can't keep the promise, and `checkin add` warns about it).
        organiser = new_person(organiser=True)
        member_list = [Membership(spec.name, organiser.key, organiser=True)]
        if rng.random() < 0.3:
            second = new_person(organiser=False)
            member_list.append(Membership(spec.name, second.key, organiser=True))
        while len(member_list) < size:
            if g > 0 and shared is None and rng.random() < 0.6:
                # The same person in two groups, with the same phone (issue 11 defect 2).
                first_group = [m for m in memberships if not m.organiser]
                if first_group:
                    chosen = rng.choice(first_group).person
                    shared = next(p for p in people if p.key == chosen)
                    member_list.append(Membership(spec.name, shared.key))
                    continue
            member_list.append(Membership(spec.name, new_person(organiser=False).key))
        memberships += member_list
        plain = [m.person for m in member_list if not m.organiser]
        subjects = rng.sample(plain, min(len(plain), rng.randint(1, 3)))
        if shared is not None and shared.key in plain and shared.key not in subjects:
            subjects.append(shared.key)
        for subject in subjects:
            others = [m.person for m in member_list if m.person != subject]
            contacts = tuple(rng.sample(others, min(len(others), rng.randint(1, 3))))
            at, _ = _check_in_time(rng, quiet, kind, day)
            window = rng.choice([10, 15, 30, 30, 60]) * 60
            wait = rng.choice([10, 15, 20, 30]) * 60
            plans.append(Plan(spec.name, subject, at, contacts, window, wait))
    # Shared person's plans: in both groups at the same time, often (the false-alarm case).
    if shared is not None:
        theirs = [p for p in plans if p.person == shared.key]
        quiet_of = {g.name: g.quiet for g in groups}
        if len(theirs) == 2 and rng.random() < 0.6 and (
                quiet_of[theirs[0].group] == quiet_of[theirs[1].group] == "off"
                or 10 <= int(theirs[0].at[:2]) <= 18):
            plans[plans.index(theirs[1])] = replace(theirs[1], at=theirs[0].at)

    # Set up the evening before, run to the small hours of the day after.
    start = _local(day - timedelta(days=1), f"{rng.randint(17, 22)}:{rng.randrange(0, 60, 5):02d}")
    end = _local(day + timedelta(days=1), "06:00")
    faults: list[Fault] = []
    span = (end - start).total_seconds()

    def moment() -> datetime:
        return start + timedelta(seconds=rng.uniform(0.05, 0.9) * span)

    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        faults.append(Fault("outage", moment(), timedelta(minutes=rng.choice([1, 3, 5, 10, 30, 90, 180])),
                            status=rng.choice([500, 503, 503])))
    for _ in range(rng.choice([0, 1, 2])):
        faults.append(Fault("burst", moment(), timedelta(seconds=rng.choice([10, 30, 90, 300])), status=429))
    if rng.random() < 0.25:
        faults.append(Fault("down", moment(), timedelta(hours=rng.choice([0.5, 1, 2, 4, 6]))))
    for _ in range(rng.choice([0, 0, 1, 2])):
        faults.append(Fault("jump", moment(), delta=timedelta(minutes=rng.choice([-90, -30, -10, -2, 3, 15, 45]))))
    for _ in range(rng.choice([0, 1, 2, 4])):
        faults.append(Fault("crash", moment()))
    faults.sort(key=lambda f: f.start)
    quiet_people = frozenset(p.key for p in people if rng.random() < 0.1)
    unprompted = []
    extra = choice_rng(seed, "unprompted")  # its own stream: seeds made before it are unchanged
    if extra.random() < 0.15:
        texter = extra.choice([p for p in people if not p.landline])
        when = start + timedelta(seconds=extra.uniform(0.05, 0.9) * span)
        unprompted.append((texter.key, when, *extra.choice([("HELP", "help"), ("call an ambulance", "distress"),
                                                              ("I've had a fall", "distress"), ("OK", "ok")])))
    return Scenario(
        seed=seed, start=start, end=end, groups=tuple(groups), people=tuple(people),
        memberships=tuple(memberships), plans=tuple(plans), faults=tuple(faults),
        timeout_rate=rng.choice([0.0, 0.0, 0.02, 0.05]), midsend_crash_rate=rng.choice([0.0, 0.0, 0.01, 0.03]),
        quiet_people=quiet_people, unprompted=tuple(unprompted),
    )
