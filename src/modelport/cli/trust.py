"""``modelport trust``: allow a PyTorch Hub repository's code to run."""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli._options import JsonOpt
from modelport.cli._output import Output

__all__ = ["register"]


def trust(
    repo: Annotated[
        str | None,
        typer.Argument(help="owner/repo on GitHub (or torch:owner/repo, or its github.com URL)."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Stop trusting it.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the trusted repositories.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Trust a PyTorch Hub repository: its hubconf.py may run when its models convert."""
    from modelport.errors import InvalidValueError
    from modelport.trust import trust as do_trust
    from modelport.trust import trusted, untrust

    out = Output(json_mode=json_)
    if list_ or repo is None:
        if repo is not None or remove:
            raise InvalidValueError("--list takes no repository.")
        sources = trusted()

        def human_list() -> None:
            if not sources:
                out.message(
                    "No repository is trusted. Trust one with `modelport trust owner/repo`."
                )
                return
            out.table(
                ["REPOSITORY", "TRUSTED SINCE"],
                [[s.name, s.added_at.strftime("%Y-%m-%d %H:%M")] for s in sources],
            )

        out.result([{"repo": s.name, "added_at": s.added_at} for s in sources], human_list)
        return
    if remove:
        name = repo
        was = untrust(repo)
        out.result(
            {"repo": name, "trusted": False, "was_trusted": was},
            lambda: out.message(
                f"{name} is no longer trusted." if was else f"{name} was not trusted."
            ),
        )
        return
    name = do_trust(repo)
    out.result(
        {"repo": name, "trusted": True},
        lambda: out.message(f"Trusted {name}: its hubconf.py may now run on conversion."),
    )


def register(app: typer.Typer) -> None:
    """Add this command to the app."""
    app.command()(trust)
