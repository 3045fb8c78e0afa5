"""``modelport db …``: the database's schema: which revision it is at, upgrading it.

Every command upgrades the database when it first opens it; ``db upgrade`` does it at a
time of the operator's choosing (before starting many servers on one PostgreSQL, say).
"""

from __future__ import annotations

import typer

from modelport.cli._options import JsonOpt
from modelport.cli._output import Output

__all__ = ["app"]

app = typer.Typer(
    help="The database's schema: the revision it is at, upgrading it, the migrations.",
    no_args_is_help=True,
)


def _revision(revision: str | None) -> str:
    return "no revision" if revision is None else revision


@app.command()
def upgrade(json_: JsonOpt = False) -> None:
    """Upgrade the database to the newest schema.

    Any command that opens the database upgrades it too; this does it now, under the
    database's lock, and says from which revision to which.
    """
    from modelport.api import upgrade_database

    done = upgrade_database()
    out = Output(json_mode=json_)

    def human() -> None:
        if done.changed:
            out.message(f"Upgraded {done.database} from {_revision(done.before)} to {done.after}.")
        else:
            out.message(f"{done.database} is already at {done.after}, the newest schema.")

    out.result(done, human)


@app.command()
def current(json_: JsonOpt = False) -> None:
    """Which schema revision the database is at.

    Whether it is the newest this modelport has; reads the database without changing it.
    """
    from modelport.api import database_status

    status = database_status()
    out = Output(json_mode=json_)

    def human() -> None:
        if status.up_to_date:
            out.message(f"{status.database} is at revision {status.revision}, the newest schema.")
        elif status.revision is None:
            out.message(
                f"{status.database} has no schema revision yet (new, or made before "
                f"migrations); the newest is {status.head}. Run `modelport db upgrade` "
                "(any command that opens it upgrades it too)."
            )
        elif not status.known:
            out.message(
                f"{status.database} is at revision {status.revision}, which a newer modelport "
                f"wrote (this one knows up to {status.head})."
            )
        else:
            out.message(
                f"{status.database} is at revision {status.revision}; the newest is "
                f"{status.head}. Run `modelport db upgrade` (any command that opens it "
                "upgrades it too)."
            )

    out.result(status, human)


@app.command()
def history(json_: JsonOpt = False) -> None:
    """The migrations of the schema, oldest first."""
    from modelport.api import database_history

    revisions = database_history()
    out = Output(json_mode=json_)
    out.result(
        revisions,
        lambda: out.table(
            ["REVISION", "FOLLOWS", "CHANGE"],
            [
                [r.id + (" (head)" if r.head else ""), r.down_revision or "", r.message]
                for r in revisions
            ],
        ),
    )
