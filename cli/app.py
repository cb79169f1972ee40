"""What every command shares: the `App` (settings, the database), the root `phonetree` group,
and one way of showing errors."""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Any, Iterator, NoReturn

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cli.params import DomainValue
from phonetree import redact
from phonetree.config import Settings
from phonetree.db import get_engine, session_scope
from phonetree.display_text import safe, safe_json
from phonetree.errors import PhonetreeError


class App:
    """What every command needs: settings, and the database opened on first use."""

    def __init__(self, settings: Settings, verbose: bool = False) -> None:
        self.settings = settings
        self.verbose = verbose
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            logging.getLogger("phonetree").info("database %s", redact.url(self.settings.database_url))
            try:
                self._engine = get_engine(self.settings.database_url, self.settings.database_key)
            except PhonetreeError:
                raise
            except Exception as error:  # noqa: BLE001 - shown as one line, not a traceback
                raise PhonetreeError(f"can't open the database {redact.url(self.settings.database_url)!r}: "
                                     f"{redact.text(str(error).splitlines()[0])}")
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
            yield session


def one_line(message: str) -> str:
    """An error is one line whatever was typed: a newline in an argument is shown escaped."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


class PhonetreeGroup(click.Group):
    """Every error, ours or click's, is one line on stderr starting `Error:`."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("Error: stopped.", err=True)
            sys.exit(1)
        except click.UsageError as error:
            if isinstance(error, click.BadParameter) and error.param is not None \
                    and isinstance(error.param.type, DomainValue):
                refuse(error.message)  # a bad time or duration reads as the domain says it
            hint = f" (see: phonetree {error.ctx.command_path.partition(' ')[2]} --help)".replace("  ", " ") \
                if error.ctx else ""
            click.echo(f"Error: {one_line(error.format_message())}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as error:
            refuse(error.format_message(), error.exit_code)
        except PhonetreeError as error:  # from any command: the session has already rolled back
            refuse(str(error))


def refuse(message: str, exit_code: int = 1) -> NoReturn:
    """A domain refusal: one line, no raw control characters, no secret, then exit."""
    click.echo(f"Error: {one_line(safe(redact.text(message)))}", err=True)
    sys.exit(exit_code)


def emit_json(data: Any) -> None:
    # Values exactly as stored, but no raw control or bidi character (see display_text.safe_json).
    click.echo(safe_json(data, indent=2))


pass_app = click.make_pass_decorator(App)


@click.group(cls=PhonetreeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "database_url", metavar="URL", help="Database URL (env PHONETREE_DATABASE_URL; "
              "default sqlite:///phonetree.db).")
@click.option("--gateway", metavar="NAME", help="outbox (record only, the default) or twilio "
              "(env PHONETREE_GATEWAY).")
@click.option("-v", "--verbose", is_flag=True, help="Log what the service does.")
@click.version_option("0.1.0", prog_name="phonetree")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, gateway: str | None, verbose: bool) -> None:
    """phonetree: daily check-ins and telephone trees for peer-support groups, by SMS and voice.

    \b
    Example:
      phonetree group add Oakfield --timezone Europe/London --kind grandparents
      phonetree member add Oakfield Vera --phone "01522 500001"
      phonetree member add Oakfield Jo --phone "07911 100002" --role organiser
      phonetree checkin add Oakfield Vera --at 10:00 --escalate-to Jo
      phonetree run
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install_on_root()
    ctx.obj = App(Settings.from_env(database_url=database_url, gateway=gateway), verbose)
