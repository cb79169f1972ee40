"""phonetree's command line: parse, call one domain function, print. No logic lives here.

`cli` is the root group (cli/app.py); each module below adds one group of commands to it."""
from __future__ import annotations

from cli.app import cli
from cli import cascades, checkins, groups, members, rotas, service, templates, views  # noqa: F401 - importing registers

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="phonetree")
