"""Gateways by name. Only twilio.py imports the twilio package, and only when chosen."""
from __future__ import annotations

from phonetree.config import Settings
from phonetree.errors import PhonetreeError
from phonetree.gateways.base import Gateway


def _outbox(settings: Settings) -> Gateway:
    from phonetree.gateways.outbox import OutboxGateway

    return OutboxGateway()


def _twilio(settings: Settings) -> Gateway:
    from phonetree.gateways.twilio import TwilioGateway

    return TwilioGateway.from_settings(settings)


GATEWAYS = {"outbox": _outbox, "twilio": _twilio}


def get_gateway(settings: Settings) -> Gateway:
    factory = GATEWAYS.get(settings.gateway)
    if factory is None:
        raise PhonetreeError(
            f'no gateway by the name "{settings.gateway}" (choose {" or ".join(GATEWAYS)}).'
        )
    return factory(settings)
