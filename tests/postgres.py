"""A real PostgreSQL server for the tests: initdb and pg_ctl in a temporary folder, on
127.0.0.1 at a free port, stopped and removed at the end of the session.

PostgreSQL refuses to run as root; as root (CI, this machine) every server command runs
as the ``postgres`` user when there is one, else as ``nobody``, in a folder of its own
under the system's temporary directory (pytest's folders are private to root).

Where PostgreSQL is not installed the tests that need it skip, except in CI
(``CI=true``), where they fail: CI installs Debian's ``postgresql`` package.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

#: The server's own time zone is far from UTC, so that a query that leans on the
#: session's zone instead of UTC gives a wrong day here.
SERVER_TIME_ZONE = "Pacific/Kiritimati"  # UTC+14
USER = "modelport"


def binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    # Debian keeps them off PATH, one folder per major version: take the newest.
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def missing_reason() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None."""
    if binaries() is None:
        return "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'modelport[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (None: as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("Running as root, and neither a postgres nor a nobody account exists.")


class PostgresServer:
    """One PostgreSQL cluster: start, make a database per test, stop."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.account = _run_as()
        # Not under pytest's tmp_path: as root that folder is closed to the server's user.
        self.root = Path(tempfile.mkdtemp(prefix="modelport-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self.account is not None:
            extra = {
                "user": self.account.pw_uid,
                "group": self.account.pw_gid,
                "extra_groups": [],
            }
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"}
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            env=env,
            cwd=self.root,
            timeout=120,
            **extra,
        )

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        for _attempt in range(3):  # another program may take the port first
            self.port = _free_port()
            done = self._start()
            if done.returncode == 0:
                return
        raise RuntimeError(f"PostgreSQL did not start: {done.stderr}\n{self.server_log()}")

    def _start(self) -> subprocess.CompletedProcess[str]:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off "
            f"-c timezone={SERVER_TIME_ZONE} -c max_connections=200"
        )
        return self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )

    def shut_down(self) -> None:
        """Stop the server as an administrator would for a restart: every session ends."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def start_again(self) -> None:
        """Start a server stopped by ``shut_down`` on the same port, with its data."""
        done = self._start()
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start again: {done.stderr}")

    def server_log(self) -> str:
        """The server's log so far (for a failing test's report)."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of a database of this server."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
