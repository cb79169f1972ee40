"""The outside world's half of a send: a fault-injecting gateway and the phone network behind it.

`FaultGateway` is a real `Gateway` subclass, the seam the dispatcher uses. Its failures are made
by the Twilio adapter's own translation (`error_for_code`, `_translate`), so phonetree sees
exactly the errors the real gateway would raise: 5xx during an outage, 429 in a burst, a read
timeout (after which the message may or may not have left), 21211 for a dead number, 21614 for
a number that can't take texts, 21610 once the person has sent STOP. What really left is written
to the ground truth, never read back from phonetree's database.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from phonetree.gateways.base import Gateway, Outgoing
from phonetree.gateways.twilio import _translate, error_for_code
from phonetree.models import Message, Task
from tests.simulation.truth import Delivery, Truth
from tests.simulation.world import Scenario, choice_rng

if TYPE_CHECKING:
    from sqlalchemy import Engine


class SimCrash(BaseException):
    """The process dies here. A BaseException, so no `except Exception` in phonetree can
    swallow it: it unwinds like SIGKILL would, leaving uncommitted work uncommitted."""


class Network:
    """The provider and the phones. It outlives every phonetree process of a run."""

    def __init__(self, scenario: Scenario, truth: Truth, observer: "Engine",
                 real_now: Callable[[], datetime], clock_now: Callable[[], datetime],
                 on_delivery: Callable[[Delivery], None]) -> None:
        self.scenario, self.truth, self.observer = scenario, truth, observer
        self.real_now, self.clock_now, self.on_delivery = real_now, clock_now, on_delivery
        self.attempts: dict[int, int] = {}
        self.stopped: set[str] = set()  # numbers that sent STOP: the provider blocks SMS to them
        self.by_phone = {p.e164: p for p in scenario.people}

    def fault_now(self, kind: str) -> int | None:
        now = self.real_now()
        for fault in self.scenario.faults:
            if fault.kind == kind and fault.start <= now < fault.end:
                return fault.status
        return None

    def submit(self, out: Outgoing) -> str:
        attempt = self.attempts[out.message_id] = self.attempts.get(out.message_id, 0) + 1
        status = self.fault_now("outage")
        if status is not None:
            raise error_for_code(None, status, "Service Unavailable")
        if self.fault_now("burst") is not None:
            raise error_for_code(20429, 429, "Too Many Requests")
        person = self.by_phone.get(out.to)
        problem = person.problem if person else None
        if problem == "not_in_use":
            raise error_for_code(21217 if out.channel == "voice" else 21211, 400,
                                 f"The 'To' number {out.to} is not a valid phone number.")
        if out.channel == "sms" and (problem == "no_texts" or (person is not None and person.landline)):
            raise error_for_code(21614, 400, f"'To' number {out.to} is not a mobile number")
        if out.channel == "sms" and out.to in self.stopped:
            raise error_for_code(21610, 400, "Attempt to send to unsubscribed recipient")
        prefix = "CA" if out.channel == "voice" else "SM"
        sid = prefix + f"{out.message_id:016x}{attempt:016x}"
        rng = choice_rng(self.scenario.seed, "send", out.message_id, attempt)
        if rng.random() < self.scenario.timeout_rate:
            if rng.random() < 0.5:  # it left before the answer was lost
                self._delivered(out, sid, "timed out, but it had left")
            raise _translate(requests.ReadTimeout("Read timed out. (read timeout=10.0)"))
        if rng.random() < self.scenario.midsend_crash_rate:
            self._delivered(out, sid, "left; phonetree crashed before recording it")
            raise SimCrash("crash between the provider taking a message and phonetree marking it")
        self._delivered(out, sid, "accepted")
        return sid

    def _delivered(self, out: Outgoing, sid: str, how: str) -> None:
        person = self.by_phone.get(out.to)
        if how != "accepted":
            self.truth.allowed_repeats[out.message_id] = self.truth.allowed_repeats.get(out.message_id, 0) + 1
        with Session(self.observer) as session:
            row = session.execute(select(Message.template, Message.checkin_id, Message.task_id)
                                  .where(Message.id == out.message_id)).one()
            subject = session.scalar(select(Task.subject_id).where(Task.id == row.task_id)) if row.task_id else None
        delivery = Delivery(message_id=out.message_id, to=out.to, channel=out.channel, template=row.template,
                            kind=out.kind, checkin_id=row.checkin_id, task_id=row.task_id, subject_id=subject,
                            body=out.body, real=self.real_now(), clock=self.clock_now(), how=how, sid=sid,
                            reached=person is None or person.problem != "phone_off")
        self.truth.deliveries.append(delivery)
        self.on_delivery(delivery)


class FaultGateway(Gateway):
    """What phonetree is given as its gateway: a fresh one after every crash, the same network."""

    name = "sim"

    def __init__(self, network: Network) -> None:
        self.network = network

    def send_sms(self, out: Outgoing) -> str:
        return self.network.submit(out)

    def place_call(self, out: Outgoing) -> str:
        return self.network.submit(out)
