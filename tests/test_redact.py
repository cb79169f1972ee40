"""Secrets (database passwords, the auth token, URL credentials) never reach output or logs."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli import cli
from phonetree import redact

ROOT = Path(__file__).parent.parent


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_error_line_hides_the_database_password() -> None:
    url = f"postgresql://u:s3cretpw@127.0.0.1:{closed_port()}/x"
    result = CliRunner().invoke(cli, ["-v", "--db", url, "group", "list"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert "s3cretpw" not in result.output + result.stderr
    error = [line for line in lines if line.startswith("Error:")]
    assert len(error) == 1 and "postgresql://u:***@127.0.0.1" in error[0]


def test_run_with_the_database_down_logs_no_password(tmp_path: Path) -> None:
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHONETREE_", "TWILIO_"))}
    env |= {"PHONETREE_DATABASE_URL": f"postgresql+psycopg://organiser:s3cret%40pw@127.0.0.1:{port}/tree"
                                      "?sslpassword=keyphrase99",
            "TWILIO_AUTH_TOKEN": "tok3n0123456789abcdef"}
    for _ in range(2):  # every start while the database is down
        done = subprocess.run([sys.executable, "-m", "cli", "-v", "run", "--port", "0"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        for secret in ("s3cret", "s3cret%40pw", "s3cret@pw", "keyphrase99", "tok3n0123456789abcdef"):
            assert secret not in out
        # -v logs which database, without the credentials.
        assert f"INFO phonetree: database postgresql+psycopg://organiser:***@127.0.0.1:{port}/tree" in out
        assert sum(line.startswith("Error:") for line in done.stderr.splitlines()) == 1


def test_log_filter_hides_secrets_in_messages_and_tracebacks() -> None:
    redact.register("tok3n-registered-secret")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(redact.RedactingFilter())
    log = logging.getLogger("test_redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("connecting to %s", "postgresql://bob:hunter22@db/x")
        log.warning("heartbeat https://user:pingpass@hc.example/ping?token=abc123&x=1 failed")
        try:
            raise RuntimeError("auth failed with tok3n-registered-secret; dsn password=pa55word host=db")
        except RuntimeError:
            log.exception("tick failed")
    finally:
        log.removeHandler(handler)
    joined = "\n".join(records)
    for secret in ("hunter22", "pingpass", "abc123", "tok3n-registered-secret", "pa55word"):
        assert secret not in joined
    assert "postgresql://bob:***@db/x" in joined and "token=***" in joined and "x=1" in joined
    assert "RuntimeError" in joined  # the traceback is kept, only the secret goes


def test_url_for_display() -> None:
    assert redact.url("postgresql://u:p%40ss@h:5/d?sslmode=require&password=zz") == \
        "postgresql://u:***@h:5/d?password=***&sslmode=require"
    assert redact.url("https://u:pw@hc-ping.example/abc?token=t") == "https://u:***@hc-ping.example/abc?token=***"
    assert redact.url("sqlite:///phonetree.db") == "sqlite:///phonetree.db"


def test_a_heartbeat_ping_url_is_a_secret(monkeypatch) -> None:
    from phonetree.config import Settings

    monkeypatch.setenv("PHONETREE_HEARTBEAT_URL", "https://hc-ping.example/5f1d2c3b-aaaa-4bbb-8ccc-0123456789ab")
    Settings.from_env()
    shown = redact.text("heartbeat to https://hc-ping.example/5f1d2c3b-aaaa-4bbb-8ccc-0123456789ab failed")
    assert "5f1d2c3b" not in shown and "https://hc-ping.example/***" in shown
