"""The tables. Rules (groups, members, plans) are what organisers set; items (check-ins, tasks)
are dated promises made from them; messages are what leaves; events record every transition.

Every time column is UTC. `UTCDateTime` stores naive UTC (SQLite has no zones) and hands back
aware datetimes, so arithmetic with `clock.now()` is always safe.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model maps one plain Table (DeclarativeBase says only FromClause): so the typed
    # `Model.__table__` has .c, .delete() and goes into insert()/update() for Core statements.
    __table__: ClassVar[Table]


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20), default="rural")
    default_channel: Mapped[str] = mapped_column(String(8), default="sms")
    window_s: Mapped[int] = mapped_column(Integer, default=30 * 60)
    escalation_wait_s: Mapped[int] = mapped_column(Integer, default=20 * 60)
    # Quiet hours as local "HH:MM"; routine prompts wait until they end.
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00")
    reminder: Mapped[bool] = mapped_column(Boolean, default=True)
    # The group's own wording, JSON {"sms:checkin": "..."}; None means all defaults.
    templates: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Days message bodies are kept (counts are kept for reports).
    retention_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    members: Mapped[list["Member"]] = relationship(back_populates="group", order_by="Member.id")


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("group_id", "name", name="uq_members_group_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    channel: Mapped[str] = mapped_column(String(8), default="sms")  # sms | voice
    # Texts use the group's wording in this language where written, else English.
    language: Mapped[str] = mapped_column(String(3), default="en", server_default="en")
    roles: Mapped[str] = mapped_column(String(60), default="peer")  # comma-separated
    paused_until: Mapped[date | None] = mapped_column(Date, nullable=True)  # last paused day, local
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_problem: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    group: Mapped[Group] = relationship(back_populates="members")

    @property
    def role_list(self) -> list[str]:
        return [r for r in self.roles.split(",") if r]

    def is_paused(self, local_day: date) -> bool:
        return self.paused_until is not None and local_day <= self.paused_until


class CheckInPlan(Base):
    """The rule: ring or text this member at this local time on these days."""

    __tablename__ = "checkin_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    at_time: Mapped[str] = mapped_column(String(5))  # local HH:MM
    days: Mapped[str] = mapped_column(String(40), default="daily")  # daily | weekdays | mon,wed
    window_s: Mapped[int] = mapped_column(Integer)
    escalation_wait_s: Mapped[int] = mapped_column(Integer)
    reminder_s: Mapped[int | None] = mapped_column(Integer, nullable=True)  # after the send
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Occurrences are materialised up to here; the planner carries on from it once it falls
    # below its low-water mark (indexed: every tick asks whether any plan's has). Changing a
    # plan's time or days applies only after here unless the change resets this to now and
    # drops the plan's still-scheduled check-ins (tests/test_planner.py, the edit tests).
    planned_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)

    member: Mapped[Member] = relationship(foreign_keys=[member_id])
    contacts: Mapped[list["PlanContact"]] = relationship(
        order_by="PlanContact.position", cascade="all, delete-orphan"
    )


class PlanContact(Base):
    __tablename__ = "plan_contacts"
    __table_args__ = (UniqueConstraint("plan_id", "position", name="uq_plan_contacts_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("checkin_plans.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))

    member: Mapped[Member] = relationship()


class CheckIn(Base):
    """One day's check-in for one member: the item whose life ARCHITECTURE.md draws.

    state: scheduled -> prompting -> sent -> answered
                                       \\-> escalating -> resolved | alerted -> resolved
           scheduled -> skipped (paused / opted out) | missed (the service was down all day)
    """

    __tablename__ = "checkins"
    __table_args__ = (
        UniqueConstraint("plan_id", "occurrence", name="uq_checkins_plan_occurrence"),
        Index("ix_checkins_state_due", "state", "due_at"),
        # A group's open or scheduled check-ins (status) without reading its history (0011).
        Index("ix_checkins_group_state_due", "group_id", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkin_plans.id", ondelete="CASCADE"), nullable=True
    )
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    # The local date (YYYY-MM-DD) for a planned one; "help:<id>" for a call asked for out of turn.
    occurrence: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Copied from the plan when planned, so a later edit doesn't change a check-in in flight.
    window_s: Mapped[int] = mapped_column(Integer)
    reminder_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    escalation_wait_s: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    window_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalation_step: Mapped[int] = mapped_column(Integer, default=-1)  # index of contact asked
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # When the member asked for a call (HELP) on this check-in; while set, only DONE, an
    # organiser's resolve or the member's own OK closes it.
    help_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    member: Mapped[Member] = relationship(foreign_keys=[member_id])
    # Many-to-one only (no Group.checkins): a group's rows go with it by ON DELETE CASCADE.
    group: Mapped[Group] = relationship()
    plan: Mapped[CheckInPlan | None] = relationship()
    tasks: Mapped[list["Task"]] = relationship(back_populates="checkin", order_by="Task.id")


class Task(Base):
    """Something a person has been asked to do and should answer DONE or CANT:
    ring a member who has not checked in (escalation), act on an end-of-chain alert (alert),
    make a rota call (call_prompt) or pass news down the tree (cascade)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_tasks_dedupe_key"),
        Index("ix_tasks_state_expires", "state", "expires_at"),
        Index("ix_tasks_assignee_state", "assignee_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # escalation | alert | call_prompt | cascade
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), nullable=True
    )
    checkin_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkins.id", ondelete="CASCADE"), nullable=True, index=True
    )
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("rota_rounds.id", ondelete="CASCADE"), nullable=True, index=True
    )
    cascade_id: Mapped[int | None] = mapped_column(
        ForeignKey("cascades.id", ondelete="CASCADE"), nullable=True, index=True
    )
    dedupe_key: Mapped[str] = mapped_column(String(120))
    # An organiser's alert sent again because nobody closed it: how many times before this one.
    repetition: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A rota call's place in its round: "paired" (the round's own call), "backup" (passed on by
    # a peer who couldn't) or "organiser" (nobody free was left); None for other kinds.
    call_role: Mapped[str | None] = mapped_column(String(10), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="asked")  # asked|done|cant|unreachable|no_answer|expired|stood_down
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    assignee: Mapped[Member] = relationship(foreign_keys=[assignee_id])
    subject: Mapped[Member | None] = relationship(foreign_keys=[subject_id])
    checkin: Mapped[CheckIn | None] = relationship(back_populates="tasks")
    group: Mapped[Group] = relationship()


# The partial index's condition; a query that is to use it must repeat it word for word (SQLite
# does not match a bound parameter against it).
ASK_ONLY = "purpose = 'ask'"


class Message(Base):
    """One outgoing SMS or call. Written before anything is sent; the dispatcher moves it on.

    state: queued -> sending -> sent -> delivered | failed ; queued -> suppressed (opted out)
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_messages_dedupe_key"),
        Index("ix_messages_state_priority", "state", "priority", "not_before"),
        Index("ix_messages_provider_sid", "provider_sid"),
        Index("ix_messages_group_created", "group_id", "created_at"),
        # The retention purge's: only rows whose text is still kept (migration 0009).
        Index("ix_messages_unpurged", "created_at", sqlite_where=text("body IS NOT NULL"),
              postgresql_where=text("body IS NOT NULL")),
        # Whether a task's ask is still waiting to go (tasks.expire_overdue): only asks (migration 0010).
        Index("ix_messages_task_ask", "task_id", sqlite_where=text(ASK_ONLY), postgresql_where=text(ASK_ONLY)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), nullable=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), nullable=True)
    checkin_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkins.id", ondelete="CASCADE"), nullable=True, index=True
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True)
    to_phone: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(8))  # sms | voice
    kind: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(24))  # key in texts.SMS / texts.VOICE
    priority: Mapped[int] = mapped_column(Integer)  # lower goes first
    body: Mapped[str | None] = mapped_column(Text, nullable=True)  # purged after retention
    dedupe_key: Mapped[str] = mapped_column(String(160))
    # What it is for, where something reads that: "ask" (asks someone to do a task; their wait
    # starts when it leaves), "later" (a second try after the phone was off), "redial" (a call
    # tried again); None for any other message.
    purpose: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The member it is about, if it carries their words or news of them to someone else (a
    # forwarded reply, a notice to the organisers): forgetting them removes it.
    about_member_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(12), default="queued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    # Not sent by then, it is pointless (a prompt for a day that has ended): reported instead.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Twilio's validity period: undelivered after this long, the carrier drops it.
    validity_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    gateway: Mapped[str | None] = mapped_column(String(16), nullable=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Inbound(Base):
    """A reply from a member (SMS text or keypress). Unknown senders are not recorded at all."""

    __tablename__ = "inbound"
    __table_args__ = (UniqueConstraint("provider_sid", name="uq_inbound_provider_sid"),
                      Index("ix_inbound_unpurged", "received_at", sqlite_where=text("body IS NOT NULL"),
                            postgresql_where=text("body IS NOT NULL")),
                      # Recent replies nobody could read (status), wherever the history is long (0011).
                      Index("ix_inbound_intent_received", "intent", "received_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    body: Mapped[str | None] = mapped_column(Text, nullable=True)  # purged after retention
    intent: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """A recorded transition: what reports count and what an organiser reads back."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_group_at", "group_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), nullable=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), nullable=True)
    checkin_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkins.id", ondelete="CASCADE"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(400), nullable=True)


class ProviderOutage(Base):
    """A stretch of time in which the gateway answered only with transient errors (5xx, 429,
    timeouts). Open while `ended_at` is NULL; `status` and `/health` read it."""

    __tablename__ = "provider_outages"

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class SendRate(Base):
    """The next free start time of one gateway's channel, shared by every worker of a PostgreSQL
    database (schedules/shared_rate.py): so N workers on one Twilio number send at its rate, not
    N times it. Seconds since the epoch on the database server's clock, the one clock every
    worker can read (never the app's clock, which tests freeze, nor a worker's monotonic one)."""

    __tablename__ = "send_rates"

    gateway: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    next_start: Mapped[float] = mapped_column(Float)


class WebhookReceipt(Base):
    """Seen (sid, event) pairs, so a repeated Twilio delivery has no second effect."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("sid", "event", name="uq_webhook_receipts_sid_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Rota(Base):
    """A peer call rota: who rings whom, round by round, on a cadence."""

    __tablename__ = "rotas"
    __table_args__ = (UniqueConstraint("group_id", "name", name="uq_rotas_group_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))  # pairs | ring
    cadence: Mapped[str] = mapped_column(String(12), default="weekly")  # weekly | fortnightly | daily
    on_day: Mapped[str] = mapped_column(String(3))  # mon..sun (the first round's weekday)
    at_time: Mapped[str] = mapped_column(String(5))  # local HH:MM
    start_date: Mapped[date] = mapped_column(Date)  # round 0's local date
    confirm_s: Mapped[int] = mapped_column(Integer)  # how long a caller has to reply DONE
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the first round not yet made falls due; NULL until the planner has worked it out.
    # Indexed: every tick asks whether any rota's comes within the horizon (schedules/planner.plan_rounds).
    # Anything that changes when a rota's rounds fall (its time, day, cadence, start, the
    # group's zone) must reset it to NULL, or the next round may be made too late.
    next_round_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)

    members: Mapped[list["RotaMember"]] = relationship(order_by="RotaMember.position",
                                                      cascade="all, delete-orphan")
    avoid: Mapped[list["RotaAvoid"]] = relationship(cascade="all, delete-orphan")
    group: Mapped[Group] = relationship()


class RotaMember(Base):
    """Membership of a rota over time: a member who leaves keeps their past rounds."""

    __tablename__ = "rota_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    rota_id: Mapped[int] = mapped_column(ForeignKey("rotas.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    left_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    member: Mapped[Member] = relationship()


class RotaAvoid(Base):
    """Two members who must never be paired."""

    __tablename__ = "rota_avoid"
    __table_args__ = (UniqueConstraint("rota_id", "member_a", "member_b", name="uq_rota_avoid_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rota_id: Mapped[int] = mapped_column(ForeignKey("rotas.id", ondelete="CASCADE"), index=True)
    member_a: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    member_b: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))


class RotaRound(Base):
    """One round of a rota, materialised when due; its calls are Tasks (kind call_prompt)."""

    __tablename__ = "rota_rounds"
    __table_args__ = (UniqueConstraint("rota_id", "number", name="uq_rota_rounds_number"),
                      Index("ix_rota_rounds_state_due", "state", "due_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    rota_id: Mapped[int] = mapped_column(ForeignKey("rotas.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    local_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12), default="scheduled")  # scheduled | prompted


class TreeLink(Base):
    """The group's telephone tree: who rings whom when news goes down it."""

    __tablename__ = "tree_links"
    __table_args__ = (UniqueConstraint("group_id", "member_id", name="uq_tree_links_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), nullable=True)
    position: Mapped[int] = mapped_column(Integer)


class Cascade(Base):
    """News sent down the tree."""

    __tablename__ = "cascades"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    originator_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # purged after retention
    by_voice: Mapped[bool] = mapped_column(Boolean, default=False)
    wait_s: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="running")  # running | complete | incomplete
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    group: Mapped[Group] = relationship()


class CascadeReach(Base):
    """Whether one member has been reached by a cascade, and through whom."""

    __tablename__ = "cascade_reach"
    __table_args__ = (UniqueConstraint("cascade_id", "member_id", name="uq_cascade_reach_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cascade_id: Mapped[int] = mapped_column(ForeignKey("cascades.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), nullable=True)
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
