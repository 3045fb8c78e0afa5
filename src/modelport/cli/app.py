"""The Typer app: global options and the command groups."""

from __future__ import annotations

import typer

from modelport import __version__
from modelport.cli import cache as cache_cmds
from modelport.cli import catalog as catalog_cmds
from modelport.cli import db as db_cmds
from modelport.cli import keys as keys_cmds
from modelport.cli import local as local_cmds
from modelport.cli import models as model_cmds
from modelport.cli import prompt as prompt_cmds
from modelport.cli import pull as pull_cmds
from modelport.cli import run as run_cmds
from modelport.cli import serve as serve_cmds
from modelport.cli import system as system_cmds
from modelport.cli import trust as trust_cmds
from modelport.cli import usage as usage_cmds

app = typer.Typer(
    name="modelport",
    help="Know, choose, pull, convert, run and serve machine-learning models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelport {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Know, choose, pull, convert, run and serve machine-learning models."""


pull_cmds.register(app)
run_cmds.register(app)
prompt_cmds.register(app)
local_cmds.register(app)
model_cmds.register(app)
system_cmds.register(app)
serve_cmds.register(app)
trust_cmds.register(app)
usage_cmds.register(app)
app.add_typer(catalog_cmds.app, name="catalog")
app.add_typer(cache_cmds.app, name="cache")
app.add_typer(keys_cmds.app, name="keys")
app.add_typer(db_cmds.app, name="db")
