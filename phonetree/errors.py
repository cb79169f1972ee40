"""Errors the domain raises for the organiser to read; the CLI prints them as `Error: ...`."""


class PhonetreeError(Exception):
    """Bad input or a state the organiser can fix. The message says what to do."""
