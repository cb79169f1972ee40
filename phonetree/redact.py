"""Secrets out of every message and log line: database passwords, the Twilio auth token, the
database key, credentials in any URL (the heartbeat's included) and `password=`/`token=` style
query parameters. The settings register the secrets they hold; `text` replaces them wherever
they turn up (a driver's error may quote a DSN back), and `RedactingFilter` does it to log records."""
from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

HIDDEN = "***"

# A query parameter or a `key=value` in a DSN whose value is a secret.
_SECRET_NAMES = r"(?:password|passwd|pwd|pass|secret|token|auth_token|authtoken|api_key|apikey|key|sslpassword)"
_SECRET_PARAM = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_SECRET_NAMES})(\s*=\s*)('[^']*'|\"[^\"]*\"|[^&\s;,'\"]+)")
# user:password@ in any URL (scheme://user:password@host).
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^/\s:@]*):([^@\s/]*)@")

_secrets: set[str] = set()
_lock = threading.Lock()
_SHORTEST = 4  # a secret shorter than this would blank ordinary words: left to the patterns


def register(*secrets: str | None) -> None:
    """Remember values that must never be shown (a token, a password, a key)."""
    with _lock:
        for secret in secrets:
            if secret and len(secret) >= _SHORTEST:
                _secrets.add(secret)
                # A password also turns up %-encoded inside the URL it came from.
                _secrets.add(quote(secret, safe=""))


def register_url(url: str | None, secret_path: bool = False) -> None:
    """The password and secret query parameters of a URL; with `secret_path` (a ping URL such
    as Healthchecks.io's, whose long path segment is what lets anyone ping it) that too."""
    if not url:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.password:
        register(unquote(parts.password), parts.password)
    if secret_path:
        register(*(segment for segment in parts.path.split("/") if len(segment) >= 16))
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if re.fullmatch(_SECRET_NAMES, name, re.IGNORECASE):
            register(value)


def text(message: str) -> str:
    """`message` with every known secret and every credential-shaped fragment hidden."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in message:
            message = message.replace(secret, HIDDEN)
    message = _USERINFO.sub(lambda m: f"{m.group(1)}:{HIDDEN}@", message)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", message)


def url(value: str) -> str:
    """A URL fit to print: the password and secret query parameters hidden, the rest kept so
    the organiser can see which database or host is meant."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(value)
        shown = parsed.set(query={k: (HIDDEN if re.fullmatch(_SECRET_NAMES, k, re.IGNORECASE) else v)
                                  for k, v in parsed.query.items()})
        return text(shown.render_as_string(hide_password=True))
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL: treat it as a web address
        pass
    try:
        parts = urlsplit(value)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", f":{HIDDEN}@", 1)
        query = urlencode([(k, HIDDEN if re.fullmatch(_SECRET_NAMES, k, re.IGNORECASE) else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        return text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))
    except ValueError:
        return text(value)


class RedactingFilter(logging.Filter):
    """Put on a handler: every record it writes, message and traceback, goes through `text`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: show what there is
            message = str(record.msg)
        record.msg, record.args = text(message), None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = text(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = text(record.stack_info)
        return True


def install_on_root() -> None:
    """Every handler of the root logger redacts (those added later by basicConfig included, as
    this is called after it)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
