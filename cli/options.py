"""Options and arguments many commands share, so each is spelled (and helped) once."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

group_argument = click.argument("group_name", metavar="GROUP")
member_argument = click.argument("member_name", metavar="MEMBER")
rota_argument = click.argument("name", metavar="ROTA")


def json_option(help: str = "Print JSON.") -> Callable[[F], F]:
    """`--json`: machine-readable output on stdout and nothing else there."""
    return click.option("--json", "as_json", is_flag=True, help=help)
