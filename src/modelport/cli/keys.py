"""``modelport keys …``: hosted providers' API keys, encrypted at rest.

A key is read from a hidden prompt (or from stdin when piped), never from an argument:
an argument stays in the shell's history and shows in the process list.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from modelport import units as fmt
from modelport.cli._options import JsonOpt
from modelport.cli._output import Output

if TYPE_CHECKING:
    import datetime as dt

    from modelport.secrets import KeyInfo

__all__ = ["app"]

app = typer.Typer(
    help="Keep hosted providers' API keys, encrypted: set, list, rotate, remove.",
    no_args_is_help=True,
)

ProviderArg = Annotated[str, typer.Argument(help="The provider, e.g. openai or anthropic.")]
ExpiresOpt = Annotated[
    str | None,
    typer.Option("--expires", help="The key expires after this long, e.g. 90d (default: never)."),
]
# A key typed after the provider lands in ctx.args, to be refused without being echoed
# (click would repeat an unexpected extra argument in its error).
_TAKES_STRAYS = {"allow_extra_args": True}


def _refuse_argument(provider: str, ctx: typer.Context, command: str) -> None:
    from modelport.errors import InvalidValueError

    if ctx.args:
        raise InvalidValueError(
            "A key is never taken as an argument (it would stay in your shell history).",
            hint=f"Run `modelport keys {command} {provider}` and paste it at the prompt, "
            f"or pipe it in: `modelport keys {command} {provider} < key.txt`.",
        )


def _read_key(provider: str, command: str) -> str:
    """The key from a hidden prompt on a terminal, else from stdin, without surrounding
    whitespace."""
    from modelport.errors import InvalidValueError

    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        value = str(typer.prompt(f"{provider} API key", hide_input=True, confirmation_prompt=True))
    else:
        value = stdin.read() if stdin is not None else ""
    value = value.strip()
    if not value:
        raise InvalidValueError(
            "No key was given: stdin was empty.",
            hint=f"Pipe the key in (`modelport keys {command} {provider} < key.txt`) or run "
            "the command in a terminal to be prompted for it.",
        )
    return value


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _expires(info: KeyInfo) -> str:
    import datetime as dt

    if info.expires_at is None:
        return "never"
    day = info.expires_at.strftime("%Y-%m-%d")
    return f"{day} (expired)" if info.expires_at <= dt.datetime.now(dt.UTC) else day


@app.command("set", context_settings=_TAKES_STRAYS)
def set_(
    ctx: typer.Context,
    provider: ProviderArg,
    expires: ExpiresOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Store a provider's API key, read from a hidden prompt (or stdin when piped)."""
    from modelport.api import set_key

    _refuse_argument(provider, ctx, "set")
    info = set_key(provider, lambda: _read_key(provider, "set"), expires=expires)
    out = Output(json_mode=json_)
    until = f", expires {_when(info.expires_at)}" if info.expires_at else ""
    out.result(info, lambda: out.message(f"Stored the {provider} key {info.masked}{until}."))


@app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """The stored keys, masked: when each was set, expires, was last used and rotated."""
    from modelport.api import list_keys

    infos = list_keys()
    out = Output(json_mode=json_)

    def human() -> None:
        if not infos:
            out.message("No key is stored. Set one with `modelport keys set PROVIDER`.")
            return
        out.table(
            ["PROVIDER", "KEY", "SET", "EXPIRES", "LAST USED", "ROTATED"],
            [
                [
                    i.provider,
                    i.masked,
                    fmt.age(i.created_at),
                    _expires(i),
                    fmt.age(i.last_used),
                    fmt.age(i.rotated_at),
                ]
                for i in infos
            ],
        )

    out.result(infos, human)


@app.command("rm")
def rm(provider: ProviderArg, json_: JsonOpt = False) -> None:
    """Forget a provider's stored key."""
    from modelport.api import remove_key
    from modelport.errors import ModelportError

    if not remove_key(provider):
        raise ModelportError(
            f"No {provider} key is stored, so none was removed.",
            hint="`modelport keys list` shows the stored keys.",
        )
    out = Output(json_mode=json_)
    out.result(
        {"provider": provider, "removed": True},
        lambda: out.message(f"Removed the {provider} key."),
    )


@app.command(context_settings=_TAKES_STRAYS)
def rotate(
    ctx: typer.Context,
    provider: ProviderArg,
    grace: Annotated[
        str,
        typer.Option("--grace", help="How long the old key stays usable, e.g. 24h or 0s."),
    ] = "24h",
    expires: ExpiresOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Replace a stored key with a new one (read like `keys set`); the old one stays usable
    for the grace period."""
    from modelport.api import rotate_key

    _refuse_argument(provider, ctx, "rotate")
    info = rotate_key(provider, lambda: _read_key(provider, "rotate"), grace=grace, expires=expires)
    out = Output(json_mode=json_)

    def human() -> None:
        out.message(f"Rotated the {provider} key: now {info.masked}.")
        if info.previous_until is not None:
            out.message(f"The old key stays usable until {_when(info.previous_until)}.")
        else:
            out.message("The old key is no longer used.")

    out.result(info, human)


@app.command("data-key")
def data_key(json_: JsonOpt = False) -> None:
    """Print a new data key (base64 of 32 random bytes) for MODELPORT_SECRETS_KEY."""
    from modelport.api import data_key as new_key

    key = new_key()
    out = Output(json_mode=json_)
    # Printed bare so that `export MODELPORT_SECRETS_KEY=$(modelport keys data-key)` works.
    out.result({"data_key": key}, lambda: out.ids([key]))
