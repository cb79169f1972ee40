"""The `outbox` gateway: sends nothing. The message row already holds everything that would
have gone out, so recording it is all there is to do; `phonetree outbox` reads them back."""
from __future__ import annotations

from phonetree.gateways.base import Gateway, Outgoing


class OutboxGateway(Gateway):
    name = "outbox"

    def send_sms(self, out: Outgoing) -> str:
        return f"OB{out.message_id:032d}"

    def place_call(self, out: Outgoing) -> str:
        return f"OC{out.message_id:032d}"
