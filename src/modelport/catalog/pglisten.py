"""One thread per process that hears PostgreSQL's ``NOTIFY modelport_catalog``.

The triggers of revision 0004 send the ids a statement wrote or deleted (``*`` for a large
change) when its transaction commits; the thread hands them to a callback, which drops
what the process kept of them. A connection lost (PostgreSQL restarted, a network cut)
is opened again after a short wait, and the callback then hears ``None`` (anything may
have changed meanwhile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import URL

__all__ = ["CHANNEL", "CatalogListener"]

CHANNEL = "modelport_catalog"

log = logging.getLogger("modelport")


def conninfo(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy ``postgresql+psycopg`` URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class CatalogListener:
    """``LISTEN`` on its own connection; ``on_change(ids or None)`` for each burst."""

    #: How long one wait for notifications lasts (how soon ``stop`` is heard).
    POLL = 0.25
    #: Waits between attempts to connect again, growing to the last.
    BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0)

    def __init__(self, url: URL, on_change: Callable[[Sequence[str] | None], None]) -> None:
        self._conninfo = conninfo(url)
        self._on_change = on_change
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="modelport-catalog-listen", daemon=True
        )

    def start(self) -> CatalogListener:
        """Start listening (returns at once; ``listening`` is set once LISTEN holds)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        self._deliver(None)  # what changed while nobody listened is unknown
                    failures = 0
                    self.listening.set()
                    self._listen(conn)
            except psycopg.Error as e:
                self.listening.clear()
                wait = self.BACKOFF[min(failures, len(self.BACKOFF) - 1)]
                failures += 1
                if failures == 1:
                    log.info("Catalog notifications lost (%s); reconnecting.", e)
                self._stop.wait(wait)

    def _listen(self, conn: object) -> None:
        import psycopg

        assert isinstance(conn, psycopg.Connection)
        while not self._stop.is_set():
            ids: set[str] = set()
            everything = False
            for note in conn.notifies(timeout=self.POLL):
                if note.payload == "*":
                    everything = True
                else:
                    ids.update(note.payload.split("\n"))
            if everything:
                self._deliver(None)
            elif ids:
                self._deliver(sorted(ids))

    def _deliver(self, ids: Sequence[str] | None) -> None:
        try:
            self._on_change(ids)
        except Exception:  # a failing refresh must not end the listening
            log.exception("Refreshing the catalog after a change failed.")
