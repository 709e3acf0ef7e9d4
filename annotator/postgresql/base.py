"""Django's PostgreSQL backend with a health check that costs no round trip when nothing is wrong.

With ``CONN_HEALTH_CHECKS`` Django tests a kept connection before the first query of each request
or job by running ``SELECT 1``: one more round trip per request, about 5% of a gunicorn worker's
CPU on the annotators' hot path (next-task, submit) and more of PostgreSQL's. A connection that
died while idle has something to read on its socket: the server's "terminating connection" error
and end of file when PostgreSQL restarts or a backend is terminated, or a reset. So the check
first asks the socket, without waiting: nothing to read, the session idle (not in a transaction)
and the connection open means usable. Anything else (bytes waiting, a notification included) runs
Django's ``SELECT 1`` as before. A connection whose peer vanished without a word (a cable cut)
fails its first statement instead of the ``SELECT 1``; the request gets the 503 of
``DatabaseUnavailableMiddleware`` and the next one reconnects.

``settings`` sets ``ENGINE = "annotator.postgresql"`` for every ``postgres://`` URL.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


def idle_and_quiet(raw) -> bool:
    """True when the psycopg connection ``raw`` is open, idle and has nothing waiting on its socket."""
    if raw.closed or raw.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        readable, _, broken = select.select([raw.fileno()], [], [raw.fileno()], 0)
    except (OSError, ValueError):
        return False
    return not readable and not broken


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and idle_and_quiet(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
