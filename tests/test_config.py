"""Settings from the environment (phonetree/config.py)."""
from __future__ import annotations

import pytest

from phonetree.config import Settings
from phonetree.errors import PhonetreeError


@pytest.mark.parametrize(("rate", "threads"), [(10, 4), (100, 40), (1, 1), (0.5, 1), (1000, 100)])
def test_by_default_one_worker_has_enough_sending_threads_for_its_rate(monkeypatch, rate, threads):
    """Twilio takes 100-300 ms a message: one thread is 3-10 a second, so the default sizes the
    threads to the rate (at 400 ms a send), capped at 100."""
    monkeypatch.delenv("PHONETREE_SEND_THREADS", raising=False)
    monkeypatch.setenv("PHONETREE_MESSAGES_PER_SECOND", str(rate))
    assert Settings.from_env().sending_threads == threads


@pytest.mark.parametrize(("given", "threads"), [("1", 1), ("12", 12), ("auto", 4), (" 3 ", 3)])
def test_the_sending_threads_can_be_set(monkeypatch, given, threads):
    monkeypatch.delenv("PHONETREE_MESSAGES_PER_SECOND", raising=False)
    monkeypatch.setenv("PHONETREE_SEND_THREADS", given)
    assert Settings.from_env().sending_threads == threads


@pytest.mark.parametrize("given", ["0", "101", "-2", "four", "2.5"])
def test_a_bad_thread_count_is_a_clear_error(monkeypatch, given):
    monkeypatch.setenv("PHONETREE_SEND_THREADS", given)
    with pytest.raises(PhonetreeError, match="PHONETREE_SEND_THREADS is .*: give a whole number from 1 to 100, or auto"):
        Settings.from_env()


def test_a_bad_number_names_the_fix(monkeypatch):
    monkeypatch.setenv("PHONETREE_MESSAGES_PER_SECOND", "ten")
    with pytest.raises(PhonetreeError, match="not a valid number .*fix the environment variable"):
        Settings.from_env()
