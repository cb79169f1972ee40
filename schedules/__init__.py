"""Recurrence, planning, the tick engine, the dispatcher and the runner."""
