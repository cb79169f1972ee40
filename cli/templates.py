"""`phonetree template ...`: view, change and preview a group's texts and spoken lines."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

from cli.app import App, cli, pass_app
from cli.options import group_argument
from phonetree import clock, directory
from phonetree.display_text import safe

F = TypeVar("F", bound=Callable[..., Any])


def wording_options(function: F) -> F:
    """`--channel` and `--language`: which of the group's wordings a template command is about."""
    function = click.option("--language", default="en", show_default=True,
                            help="Which language's wording (e.g. cy).")(function)
    return click.option("--channel", type=click.Choice(["sms", "voice"]), default="sms", show_default=True)(function)


@cli.group()
def template() -> None:
    """View, change and preview a group's texts and spoken lines.

    \b
    Example:
      phonetree template show Oakfield checkin
    """


@template.command("list")
@group_argument
@wording_options
@pass_app
def template_list(app: App, group_name: str, channel: str, language: str) -> None:
    """List the templates, with their segment counts and which the group has changed.

    \b
    Example:
      phonetree template list Oakfield --channel voice
    """
    from phonetree import templates

    with app.session() as session:
        g = directory.get_group(session, group_name)
        previews = [templates.preview(g, name, channel, language) for name in templates.all_names(channel)]
    for p in previews:
        size = f"{p.worst.segments} seg {p.worst.encoding}" if channel == "sms" else f"{len(p.sample)} chars"
        click.echo(f"{p.template:<20} {'own' if p.custom else 'default':<8} {size:<14} {safe(p.sample)}")


@template.command("show")
@group_argument
@click.argument("name", metavar="TEMPLATE")
@wording_options
@pass_app
def template_show(app: App, group_name: str, name: str, channel: str, language: str) -> None:
    """Show a template, a preview with sample names, and its SMS segment count.

    \b
    Example:
      phonetree template show Oakfield escalation
    """
    from phonetree import templates

    with app.session() as session:
        p = templates.preview(directory.get_group(session, group_name), name, channel, language)
    _print_preview(p)


def _print_preview(p: Any) -> None:
    click.echo(f"{p.channel} {p.template} ({'this group' if p.custom else 'default'}):")
    click.echo(f"  {safe(p.text)}")
    click.echo(f"Preview: {safe(p.sample)}")
    click.echo(f"{p.info.encoding}, {p.info.units} characters, {p.info.segments} segment(s); "
               f"with the longest names: {p.worst.segments} segment(s).")
    for warning in p.warnings:
        click.echo(f"Warning: {warning}", err=True)


@template.command("set")
@group_argument
@click.argument("name", metavar="TEMPLATE")
@click.argument("wording")
@wording_options
@pass_app
def template_set(app: App, group_name: str, name: str, wording: str, channel: str, language: str) -> None:
    """Change a template's wording for this group. Keep the {placeholders} it needs.

    \b
    Example:
      phonetree template set Oakfield checkin "Morning {name}! Reply OK if you're alright, or CALL for a chat."
    """
    from phonetree import templates

    with app.session() as session:
        g = directory.get_group(session, group_name)
        _, notes = templates.set_text(session, g, name, channel, wording, clock.now(), language)
        p = templates.preview(g, name, channel, language)
    _print_preview(p)
    for note in notes:
        if note not in p.warnings:
            click.echo(f"Note: {note}", err=True)


@template.command("reset")
@group_argument
@click.argument("name", metavar="TEMPLATE")
@wording_options
@pass_app
def template_reset(app: App, group_name: str, name: str, channel: str, language: str) -> None:
    """Go back to the default wording.

    \b
    Example:
      phonetree template reset Oakfield checkin
    """
    from phonetree import templates

    with app.session() as session:
        templates.reset(session, directory.get_group(session, group_name), name, channel, clock.now(), language)
    click.echo(f"{group_name} uses the default {channel} {name} again.")
