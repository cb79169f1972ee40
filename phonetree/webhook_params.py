"""Which parameters Twilio sends to each of our webhooks, and the shape of its ids.

Twilio's signature covers the URL plus every name and value run together with nothing between
them, so a captured request can be re-split (`MessageSid=SMabc…` → `MessageSidS=Mabc…`, or
`MessageSid=SMabc…N` plus a made-up `umMedia=0`) and still verify. The signature alone therefore
doesn't prove the fields are Twilio's: a request is only acted on when every name is one Twilio
documents for that callback, no name is repeated, the sid has its exact shape (so it can be
deduplicated on) and AccountSid is our account.

Sources (Twilio docs, 2026): "Twilio's request to your incoming message Webhook URL" (messaging
webhook request), the Message resource's status callback parameters, "TwiML Voice: Twilio's
request" (voice request parameters, with the geographic Called*/Caller*/From*/To* fields),
<Gather>'s action parameters and the Call resource's StatusCallback parameters. Twilio says it
may add parameters without notice: a request refused for a new name is logged (names only) so
the list can be extended.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SID_SHAPES = {
    "message": re.compile(r"(SM|MM)[0-9a-fA-F]{32}"),
    "call": re.compile(r"CA[0-9a-fA-F]{32}"),
    "account": re.compile(r"AC[0-9a-fA-F]{32}"),
}

_GEO = {f"{side}{part}" for side in ("From", "To") for part in ("City", "State", "Zip", "Country")}
_VOICE_GEO = {f"{side}{part}" for side in ("Called", "Caller") for part in ("City", "State", "Zip", "Country")}

# Inbound SMS/MMS (and WhatsApp/RCS extras Twilio documents on the same page).
INBOUND_SMS = frozenset({
    "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "MessagingServiceSid", "From", "To", "Body",
    "NumMedia", "NumSegments", "ApiVersion", "SmsStatus", "OptOutType", "MessageType",
    "ProfileName", "WaId", "Forwarded", "FrequentlyForwarded", "ButtonText", "ButtonPayload",
    "Latitude", "Longitude", "Address", "Label", "ChannelMetadata",
    "ReferralBody", "ReferralHeadline", "ReferralSourceId", "ReferralSourceType", "ReferralSourceUrl",
    "ReferralMediaId", "ReferralMediaContentType", "ReferralMediaUrl", "ReferralNumMedia",
    "ReferralCtwaClid", "OriginalRepliedMessageSender", "OriginalRepliedMessageSid",
} | _GEO)
# Numbered media parameters: MediaUrl0, MediaContentType0, … (up to 10 items per MMS).
_NUMBERED = re.compile(r"(MediaUrl|MediaContentType)[0-9]{1,2}")

MESSAGE_STATUS = frozenset({
    "MessageSid", "SmsSid", "AccountSid", "MessagingServiceSid", "From", "To", "MessageStatus",
    "SmsStatus", "ErrorCode", "ErrorMessage", "ApiVersion", "RawDlrDoneDate", "ChannelToAddress",
    "ChannelPrefix", "ChannelInstallSid", "ChannelStatusMessage", "EventType", "Body", "NumMedia",
    "NumSegments",
} | _GEO)

# What every voice request carries (the TwiML fetch for a call, and so Gather and status too).
VOICE_REQUEST = frozenset({
    "CallSid", "AccountSid", "From", "To", "CallStatus", "ApiVersion", "Direction", "ForwardedFrom",
    "CallerName", "ParentCallSid", "CallToken", "Called", "Caller", "AnsweredBy",
    "MachineDetectionDuration", "StirVerstat", "StirPassportToken", "StirStatus",
} | _GEO | _VOICE_GEO)

GATHER_ACTION = VOICE_REQUEST | {"Digits", "FinishedOnKey", "SpeechResult", "Confidence", "msg"}

CALL_STATUS = VOICE_REQUEST | {
    "CallDuration", "Duration", "Timestamp", "CallbackSource", "SequenceNumber", "SipResponseCode",
    "RecordingUrl", "RecordingSid", "RecordingDuration", "ErrorCode", "ErrorMessage", "QueueTime",
}


@dataclass(frozen=True)
class Callback:
    """One kind of webhook: the names Twilio may send, and which sid identifies the event."""

    names: frozenset[str]
    sid_name: str
    sid_kind: str
    numbered_media: bool = False

    def knows(self, name: str) -> bool:
        return name in self.names or bool(self.numbered_media and _NUMBERED.fullmatch(name))


CALLBACKS = {
    "/twilio/sms": Callback(INBOUND_SMS, "MessageSid", "message", numbered_media=True),
    "/twilio/status/message": Callback(MESSAGE_STATUS, "MessageSid", "message"),
    "/twilio/voice/gather": Callback(GATHER_ACTION, "CallSid", "call"),
    "/twilio/voice/status": Callback(CALL_STATUS, "CallSid", "call"),
}


def refusal(path: str, multi: dict[str, list[str]], account_sid: str | None) -> str | None:
    """Why a correctly signed request is still not Twilio's own for `path`, or None if it is.
    The reason names no value (values are members' numbers and words)."""
    callback = CALLBACKS.get(path)
    if callback is None:
        return None  # a route without a known callback shape (added by tests or extensions)
    unknown = sorted(name for name in multi if not callback.knows(name))
    if unknown:
        shown = ", ".join(repr(name[:30]) for name in unknown[:3])
        return f"{len(unknown)} parameter name(s) Twilio doesn't send here ({shown})"
    repeated = sorted(name for name, values in multi.items() if len(values) > 1)
    if repeated:
        return f"repeated parameter(s) {', '.join(repr(n) for n in repeated[:3])}"
    sid = multi.get(callback.sid_name, [""])[0]
    if not SID_SHAPES[callback.sid_kind].fullmatch(sid):
        return f"{callback.sid_name} missing or not of Twilio's shape"
    for alias in ("SmsSid", "SmsMessageSid"):  # Twilio sends these as copies of MessageSid
        if alias in multi and callback.sid_kind == "message" and multi[alias][0] != sid:
            return f"{alias} differs from MessageSid"
    account = multi.get("AccountSid", [""])[0]
    if not SID_SHAPES["account"].fullmatch(account):
        return "AccountSid missing or not of Twilio's shape"
    if account_sid is None or account != account_sid:
        return "AccountSid is not this account's"
    return None
